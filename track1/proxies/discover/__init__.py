"""Automatic proxy discovery: training-free proxies as small programs over per-layer
network statistics, found by regularised evolution against a split of ground truth.

- ``stats``: one forward and backward of a network at initialisation on one small batch
  gives, per conv / linear layer, a row of statistics of its weight, weight gradient,
  activation and activation gradient (``STAT_NAMES``); computed once per arch and cached.
- ``program``: a program picks two statistics, applies a unary operation to each,
  combines them with a binary one, applies a last unary one and aggregates over layers;
  it evaluates on thousands of cached archs at once and prints as a readable formula.
- ``evolve``: regularised (aging) evolution over programs with a diversity rule (a child
  that ranks the search archs like a living member is rejected) and the best ever kept.
- ``blend``: the best pair of the evolution's most telling distinct programs, joined after
  aggregation, then extended greedily by more terms while each pays its way.

The NAS-Bench-201 driver (``track1.bench.discover``) chooses the disjoint search and
held-out splits; ground truth is read only there, and only the search split's drives
the search.
"""

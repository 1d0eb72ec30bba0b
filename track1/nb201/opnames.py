"""The NAS-Bench-201 space's vocabulary as plain tuples: candidate op names, cell edges
and the RD-NAS authors' 4-op subset.

Why a module of their own: it imports nothing, so the bench protocols (and through them
``python -m track1 bench-nb201 --help``) can name ops without loading torch.
``track1.nb201.network`` and ``track1.nb201.space`` take their values from here.
"""
from __future__ import annotations

#: candidate ops, in the index order an arch tuple uses
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to_node, from_node) of the 6 edges, in the order of the string form
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: the candidate ops of the authors' one-shot NB201 network (PicoNAS comments ``none`` out):
#: 4 ** 6 = 4,096 archs, the space the RD-NAS paper's Kendall figures are measured on
PAPER_OPS: tuple[str, ...] = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

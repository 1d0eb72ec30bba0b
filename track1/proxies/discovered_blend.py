"""The discovered blend: programs found by ``python -m track1 discover-proxy --blends
--probes 2`` (``track1.proxies.discover.blend``), joined as ``first + weight * second +
...``, scored like any other proxy (the ``discovered`` proxy's statistics averaged over two
probes, its program this blend).

Its ground truth was NAS-Bench-201's (search split only): a NB201 ranking figure with this
proxy as teacher must say so beside it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies import discovered

NAME = "discovered_blend"

#: the committed blend and its provenance (docs/results/discover-proxy-*-probes2-*)
PROGRAM: dict[str, Any] = {
    "first": {"a": "numel", "unary_a": "square", "b": "wg_abs", "unary_b": "log",
              "binary": "div", "unary_out": "square", "aggregate": "logsum"},
    "second": {"a": "a_isotropy", "unary_a": "square", "b": "wg_cos", "unary_b": "log",
               "binary": "div", "unary_out": "square", "aggregate": "logsum"},
    "weight": 4.0,
    "more": [
        {"program": {"a": "a_mineig", "unary_a": "square", "b": "ad_abs", "unary_b": "log",
                     "binary": "div", "unary_out": "id", "aggregate": "logsum"},
         "weight": 1.0},
        {"program": {"a": "a_mineig", "unary_a": "square", "b": "wg_abs", "unary_b": "log",
                     "binary": "div", "unary_out": "id", "aggregate": "logsum"},
         "weight": 0.5},
    ],
}
#: [log(sum over layers of square(square(numel) / log(wg_abs)))]
#:     + 4 x [log(sum over layers of square(square(a_isotropy) / log(wg_cos)))]
#:     + 1 x [log(sum over layers of |square(a_mineig) / log(ad_abs)|)]
#:     + 0.5 x [log(sum over layers of |square(a_mineig) / log(wg_abs)|)]
#: on the statistics averaged over two probes (``stats.probe_stats``), as it was found
PROBES = 2
SOURCE = ("discover-proxy --blends --probes 2 (up to 4 programs) on NAS-Bench-201 CIFAR-10: "
          "1,000 search archs (fitness Kendall vs valid 0.804; the best pair 0.777, the best "
          "single program 0.719), held-out 4,000 archs Kendall 0.791 valid / 0.790 test (FLOPs "
          "there 0.530 / 0.571); "
          "docs/results/discover-proxy-nb201-1000search-4000heldout-probes2-blend4-2core-cpu")


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """The blend's value on the network's per-layer statistics for ``inputs`` (split into
    ``PROBES`` shares: the protocol gives it 16 images per probe)."""
    return discovered.score(model, inputs, targets, seed=seed, program=PROGRAM, probes=PROBES,
                            **options)

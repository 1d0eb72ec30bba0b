"""The discovered blend: programs found by ``python -m track1 discover-proxy --blends``
(``track1.proxies.discover.blend``), joined as ``first + weight * second + ...``, scored
like any other proxy (the ``discovered`` proxy's statistics, its program this blend).

Its ground truth was NAS-Bench-201's (search split only): a NB201 ranking figure with this
proxy as teacher must say so beside it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies import discovered

NAME = "discovered_blend"

#: the committed blend and its provenance (docs/results/discover-proxy-*-blend4-*)
PROGRAM: dict[str, Any] = {
    "first": {"a": "numel", "unary_a": "square", "b": "wg_abs", "unary_b": "log",
              "binary": "div", "unary_out": "abs", "aggregate": "logsum"},
    "second": {"a": "a_mineig", "unary_a": "neg", "b": "spatial", "unary_b": "square",
               "binary": "div", "unary_out": "abs", "aggregate": "logsum"},
    "weight": 1.0,
    "more": [
        {"program": {"a": "a_isotropy", "unary_a": "square", "b": "d_mean", "unary_b": "neg",
                     "binary": "div", "unary_out": "square", "aggregate": "logsum"},
         "weight": 1.0},
        {"program": {"a": "a_mineig", "unary_a": "square", "b": "wg_abs", "unary_b": "log",
                     "binary": "div", "unary_out": "id", "aggregate": "logsum"},
         "weight": 0.25},
    ],
}
#: [log(sum over layers of |square(numel) / log(wg_abs)|)]
#:     + 1 x [log(sum over layers of |neg(a_mineig) / square(spatial)|)]
#:     + 1 x [log(sum over layers of square(square(a_isotropy) / neg(d_mean)))]
#:     + 0.25 x [log(sum over layers of |square(a_mineig) / log(wg_abs)|)]
SOURCE = ("discover-proxy --blends (up to 4 programs) on NAS-Bench-201 CIFAR-10: 1,000 search "
          "archs (fitness Kendall vs valid 0.782; the best pair 0.770, the best single "
          "program 0.713), held-out 4,000 archs Kendall 0.775 valid / 0.780 test (FLOPs there "
          "0.530 / 0.571); docs/results/discover-proxy-nb201-1000search-4000heldout-blend4-2core-cpu")


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """The blend's value on the network's per-layer statistics for ``inputs``."""
    return discovered.score(model, inputs, targets, seed=seed, program=PROGRAM, **options)

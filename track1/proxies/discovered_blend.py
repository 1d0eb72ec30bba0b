"""The discovered blend: two programs found by ``python -m track1 discover-proxy --blends``
(``track1.proxies.discover.blend``), joined as ``first + weight * second``, scored like
any other proxy (the ``discovered`` proxy's statistics, its program this blend).

Its ground truth was NAS-Bench-201's (search split only): a NB201 ranking figure with this
proxy as teacher must say so beside it.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies import discovered

NAME = "discovered_blend"

#: the committed blend and its provenance (docs/results/discover-proxy-*-blend-*)
PROGRAM: dict[str, Any] = {
    "first": {"a": "numel", "unary_a": "square", "b": "wg_abs", "unary_b": "log",
              "binary": "div", "unary_out": "abs", "aggregate": "logsum"},
    "second": {"a": "a_mineig", "unary_a": "neg", "b": "spatial", "unary_b": "square",
               "binary": "div", "unary_out": "abs", "aggregate": "logsum"},
    "weight": 1.0,
}
#: [log(sum over layers of |square(numel) / log(wg_abs)|)]
#:     + 1 x [log(sum over layers of |neg(a_mineig) / square(spatial)|)]
SOURCE = ("discover-proxy --blends on NAS-Bench-201 CIFAR-10: 1,000 search archs (fitness "
          "Kendall vs valid 0.770; the best single program 0.713), held-out 4,000 archs "
          "Kendall 0.765 valid / 0.767 test (FLOPs there 0.530 / 0.571); "
          "docs/results/discover-proxy-nb201-1000search-4000heldout-blend-2core-cpu")


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """The blend's value on the network's per-layer statistics for ``inputs``."""
    return discovered.score(model, inputs, targets, seed=seed, program=PROGRAM, **options)

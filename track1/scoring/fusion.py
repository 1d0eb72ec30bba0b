"""Fusing rankings: a weighted mean of ranks of the supernet's score and zero-cost proxies.

Why: at small training budgets a supernet ranks worse than its own teacher (the FLOPs
teacher reaches Kendall 0.54 where the supernets reach 0.21-0.23 on the same NB201 archs),
while a proxy knows nothing the supernet learnt; the two err differently, so their ranks
averaged may beat both. Ranks, not raw values, because the units differ (accuracy in
percent, FLOPs in billions, SynFlow in log-space tens).

    fused = fuse({"supernet": accs, "flops": flops}, {"flops": 0.3})   # supernet: 0.7

A weight tuned on ground truth is tuned on one split of the archs and reported on the
other (``tune_weight``), never on the archs it is reported on.
"""
from __future__ import annotations

import random
from typing import Callable, Mapping, Sequence

from track1.infra.ranks import below_in, ranks

#: the name of the supernet's own scores in a fusion
SUPERNET = "supernet"
#: the weights ``tune_weight`` tries for the proxy side
WEIGHT_GRID = tuple(i / 20 for i in range(21))


def parse_fuse(text: str) -> dict[str, float]:
    """``"flops:0.3,synflow:0.1"`` -> ``{"flops": 0.3, "synflow": 0.1}``; the supernet takes
    what is left (at least 0). ``ValueError`` naming the item and the rule."""
    out: dict[str, float] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, sep, value = item.partition(":")
        try:
            weight = float(value) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if not name or not 0.0 <= weight <= 1.0:
            raise ValueError(f"--fuse item {item!r}: expected NAME:WEIGHT with a weight in "
                             "[0, 1] (e.g. flops:0.3)")
        if name in out or name == SUPERNET:
            raise ValueError(f"--fuse item {item!r}: {name!r} appears twice or is the supernet")
        out[name] = weight
    if sum(out.values()) > 1.0 + 1e-9:
        raise ValueError(f"--fuse {text!r}: the weights add up to {sum(out.values()):g}, "
                         "more than 1")
    return out


def fuse(scores: Mapping[str, Sequence[float]], weights: Mapping[str, float]) -> list[float]:
    """The weighted mean of each score's ranks (higher = better for every score);
    ``scores[SUPERNET]`` takes ``1 - sum(weights)``."""
    full = {SUPERNET: max(0.0, 1.0 - sum(weights.values())), **weights}
    rank_of = {name: ranks(scores[name]) for name, w in full.items() if w > 0}
    n = len(next(iter(scores.values())))
    return [sum(full[name] * r[i] for name, r in rank_of.items()) for i in range(n)]


class ReferenceFusion:
    """``fuse`` for one arch at a time: the weighted mean of its ranks among a fixed
    reference set of archs (``reference[name]``: each score's values there), so search
    can compare archs scored at different times (``track1 search --fuse``)."""

    def __init__(self, weights: Mapping[str, float],
                 reference: Mapping[str, Sequence[float]]) -> None:
        self.weights = {SUPERNET: max(0.0, 1.0 - sum(weights.values())), **weights}
        missing = [n for n, w in self.weights.items() if w > 0 and n not in reference]
        if missing:
            raise ValueError(f"ReferenceFusion: no reference values for {missing}")
        self.reference = {n: sorted(reference[n]) for n, w in self.weights.items() if w > 0}

    def __call__(self, scores: Mapping[str, float]) -> float:
        """The weighted mean of ``scores``' ranks among the (sorted) reference values."""
        return sum(self.weights[n] * below_in(scores[n], ref) / len(ref)
                   for n, ref in self.reference.items())


def split_archs(n: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A seeded half of ``n`` archs to tune on, and the other half to report on."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return sorted(idx[:n // 2]), sorted(idx[n // 2:])


def tune_weight(supernet: Sequence[float], proxy: Sequence[float], truth: Sequence[float],
                metric: Callable[[Sequence[float], Sequence[float]], float],
                seed: int = 0, grid: Sequence[float] = WEIGHT_GRID) -> dict[str, float]:
    """The proxy weight that ranks best on a seeded half of the archs (``metric`` against
    ``truth``: ground truth, used to tune on that half only), and on the OTHER half the
    supernet alone, the proxy alone and the fusion at that weight."""
    tune, test = split_archs(len(supernet), seed)

    def on(idx: list[int], w: float) -> float:
        fused = fuse({SUPERNET: [supernet[i] for i in idx], "proxy": [proxy[i] for i in idx]},
                     {"proxy": w})
        return metric(fused, [truth[i] for i in idx])
    best = max(grid, key=lambda w: (on(tune, w), -abs(w - 0.5)))
    return {"weight": best, "tuned_on": len(tune), "reported_on": len(test),
            "supernet": on(test, 0.0), "proxy": on(test, 1.0), "fused": on(test, best),
            "fused_tune": on(tune, best)}

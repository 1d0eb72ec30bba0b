"""Rank-correlation metrics between predicted and true scores.

One library module so that the evaluator's rank report, the NAS-Bench-201 bench and
the tests all compute the same numbers. Kendall is tau-b (ties handled), as
``scipy.stats.kendalltau`` defines it; Spearman is Pearson on average ranks.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats


def finite_below(values: Sequence[float]) -> list[float]:
    """-inf (NASWOT of a dead net) -> just below the smallest finite value: the same
    ranks, and a value the correlations accept."""
    finite = [v for v in values if math.isfinite(v)]
    low = (min(finite) - 1.0) if finite else 0.0
    return [v if math.isfinite(v) else low for v in values]


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"need equally long score lists, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError("need at least 2 pairs for a correlation")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite numbers")
    return a, b


def _nan_if_constant(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a == a[0]) or np.all(b == b[0]))


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall tau-b (NaN when either side is constant)."""
    a, b = _pair(x, y)
    if _nan_if_constant(a, b):
        return math.nan
    return float(stats.kendalltau(a, b).statistic)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho: Pearson correlation of average ranks."""
    a, b = _pair(x, y)
    if _nan_if_constant(a, b):
        return math.nan
    return pearson(stats.rankdata(a), stats.rankdata(b))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's linear correlation coefficient."""
    a, b = _pair(x, y)
    if _nan_if_constant(a, b):
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    return float(np.clip((a @ b) / math.sqrt((a @ a) * (b @ b)), -1.0, 1.0))


def top_k_precision(pred: Sequence[float], truth: Sequence[float], k: int) -> float:
    """Share of the true top-``k`` (highest) that the prediction also puts in its top-``k``."""
    a, b = _pair(pred, truth)
    k = int(k)
    if not 1 <= k <= a.size:
        raise ValueError(f"k must be in 1..{a.size}, got {k}")
    top_pred = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_true = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_pred & top_true) / k


def concordant_pair_ratio(pred: Sequence[float], truth: Sequence[float]) -> float:
    """RD-NAS's CPR: share of pairs (untied in truth) ordered the same way by ``pred``."""
    a, b = _pair(pred, truth)
    i, j = np.triu_indices(a.size, 1)
    db, da = np.sign(b[i] - b[j]), np.sign(a[i] - a[j])
    keep = db != 0
    if not keep.any():
        return math.nan
    return float((da[keep] == db[keep]).mean())


def rank_metrics(pred: Sequence[float], truth: Sequence[float], top: float | None = None,
                 undefined: float = math.nan) -> dict[str, float]:
    """The one rank-metrics function: ``{"kendall", "spearman", "pearson", "n"}`` and,
    with ``top`` (a share, e.g. 0.1), ``"top10_precision"``: how many of the predicted
    best ``top`` share are in the true best. A correlation that is undefined (a constant
    side) is ``undefined`` (NaN; the NAS-Bench-201 bench's tables write 0)."""
    out: dict[str, float] = {"n": len(pred)}
    for key, fn in (("kendall", kendall), ("spearman", spearman), ("pearson", pearson)):
        v = fn(pred, truth)
        out[key] = v if math.isfinite(v) else undefined
    if top is not None:
        k = max(1, int(round(top * len(pred))))
        out[f"top{int(round(top * 100))}_precision"] = top_k_precision(pred, truth, k)
    return out


def tie_broken(primary: Sequence[float], secondary: Sequence[float]) -> list[float]:
    """Ranks (0-based, ties averaged) of ``primary`` with its ties broken by
    ``secondary`` (both higher = better): top-1 accuracy on a few thousand images ties
    often, the loss beside it almost never."""
    keys = list(zip((float(v) for v in primary), (float(v) for v in secondary)))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0.0] * len(keys)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and keys[order[j + 1]] == keys[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks

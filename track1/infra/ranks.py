"""Rank arithmetic every floor shares: average ranks with ties, and one value's rank among
a fixed reference.

Why here, at the bottom: the teacher (``nas``), AZ-NAS's aggregation (``proxies``) and
fusion at scoring time (``scoring``) all rank values the same way, ties sharing their
average rank. Kept in one place so the three cannot drift apart, and below all of them so
none imports another floor-mate's module for it. Pure Python, no torch.

    average_ranks([3.0, 1.0, 3.0])  ->  [1.5, 0.0, 1.5]
    ranks([3.0, 1.0, 3.0])          ->  [0.75, 0.0, 0.75]
    rank_among(2.0, [1.0, 3.0])     ->  0.5     (as ranks([1.0, 3.0, 2.0])[-1])
"""
from __future__ import annotations

import bisect
from typing import Sequence


def average_ranks(values: Sequence[float]) -> list[float]:
    """0-based ascending ranks, ties sharing their average rank."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    out = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks in [0, 1] (0 the lowest, 1 the highest; ties share their average rank)."""
    scale = max(len(values) - 1, 1)
    return [r / scale for r in average_ranks(values)]


def mean_ranks(columns: Sequence[Sequence[float]]) -> list[float]:
    """Per item, the mean of its ``average_ranks`` in each column: an equal-weight mix of
    several scores of the same items (the proxy tools' ``a+b`` mixes)."""
    per_column = [average_ranks(c) for c in columns]
    return [sum(r[i] for r in per_column) / len(per_column) for i in range(len(per_column[0]))]


def below_in(value: float, sorted_reference: Sequence[float]) -> float:
    """How many of ``sorted_reference`` (ascending) lie below ``value``, ties counted half:
    ``value``'s 0-based average rank among the reference and itself."""
    below = bisect.bisect_left(sorted_reference, value)
    return below + 0.5 * (bisect.bisect_right(sorted_reference, value) - below)


def rank_among(value: float, reference: Sequence[float]) -> float:
    """The rank in [0, 1] of ``value`` among ``reference`` and itself, exactly as ``ranks``
    gives it over ``[*reference, value]`` (ties share their average rank): a per-arch
    score that does not move as other archs are scored."""
    if not reference:
        raise ValueError("rank_among: an empty reference")
    return below_in(value, sorted(reference)) / len(reference)

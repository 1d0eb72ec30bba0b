"""The second stage of discovery: the best blend of two evolved programs.

Evolution over single programs leaves an archive of the programs it evaluated whose
ranking told most (largest |Kendall|: an inverse ranking serves with a negative weight),
with their scores of the search archs. A blend ``first + weight * second`` of two of them
can rank better than either, when they see different things (most end in a log, so a
blend is a weighted product of two views). Evolving blends directly searches the square
of the program space and did not get past one program's fitness in 10,000 cycles; pairing
the archive exhaustively does: the programs are already good, and only their joining is
searched. Diversity first: among programs that rank the search archs alike or inversely
(|Spearman| at or above ``similar``) only the first is paired.

Then, optionally, more terms: ``extend`` adds to the best pair, one at a time, the pool
program and weight that raise the search fitness most, while a term adds at least
``MIN_GAIN`` (forward stagewise selection; each term is one more choice fitted on the
search split, so the gain asked of it keeps the blend from chasing that split's noise).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from track1.proxies.discover.defaults import BLEND_TERMS, MIN_GAIN
from track1.proxies.discover.evolve import Member, spearman
from track1.proxies.discover.program import WEIGHTS, Blend


def distinct(archive: Sequence[Member], size: int, similar: float = 0.97) -> list[Member]:
    """Up to ``size`` of ``archive`` (most telling first), none ranking like (or inversely
    to) one before it."""
    chosen: list[Member] = []
    for m in archive:
        if all(abs(spearman(m.ranks, c.ranks)) < similar for c in chosen):
            chosen.append(m)
        if len(chosen) >= size:
            break
    return chosen


def _joined(base: np.ndarray, scores: np.ndarray, weight: float) -> np.ndarray:
    """``base + weight * scores``, -inf where not finite (as ``evaluate_any``)."""
    with np.errstate(all="ignore"):
        s = base + weight * scores
    return np.where(np.isfinite(s), s, -np.inf)


def _fittest_term(base: np.ndarray, pool: Sequence[Member], skip: set[int],
                  fitness: Callable[[np.ndarray], float], weights: Sequence[float]
                  ) -> tuple[int, float, float] | None:
    """The pool index, weight and fitness of the best ``base + w * pool[j]``."""
    best: tuple[int, float, float] | None = None
    for j, m in enumerate(pool):
        if j in skip or m.scores is None:
            continue
        for w in weights:
            s = _joined(base, m.scores, w)
            if not np.isfinite(s).any():
                continue
            f = float(fitness(s))
            if np.isfinite(f) and (best is None or f > best[2]):
                best = (j, float(w), f)
    return best


def best_blend(archive: Sequence[Member], fitness: Callable[[np.ndarray], float], *,
               size: int = 60, similar: float = 0.97, weights: Sequence[float] = WEIGHTS,
               terms: int = BLEND_TERMS, min_gain: float = MIN_GAIN
               ) -> tuple[Blend, float] | None:
    """The fittest blend of two distinct archived programs and its fitness (None with
    fewer than two), every ordered pair and weight tried; then, up to ``terms`` programs
    in all, the greedy extension (``extend``)."""
    pool = distinct(archive, size, similar)
    best: tuple[Blend, float, tuple[int, int]] | None = None
    for i, a in enumerate(pool):
        if a.scores is None:
            continue
        found = _fittest_term(_joined(0.0, a.scores, 1.0), pool, {i}, fitness, weights)
        if found is not None and (best is None or found[2] > best[1]):
            j, w, f = found
            best = (Blend(a.program, pool[j].program, w), f, (i, j))
    if best is None:
        return None
    blend, fit, (i, j) = best
    scores = _joined(_joined(0.0, pool[i].scores, 1.0), pool[j].scores, blend.weight)
    return extend(blend, fit, scores, pool, {i, j}, fitness, terms=terms,
                  min_gain=min_gain, weights=weights)


def extend(blend: Blend, fit: float, scores: np.ndarray, pool: Sequence[Member],
           used: set[int], fitness: Callable[[np.ndarray], float], *, terms: int,
           min_gain: float = MIN_GAIN, weights: Sequence[float] = WEIGHTS
           ) -> tuple[Blend, float]:
    """Add to ``blend`` (fitness ``fit``, search scores ``scores``; ``used``: the pool
    indices it holds) the pool program and weight that raise the fitness most, one at a
    time, up to ``terms`` programs in all, while each adds at least ``min_gain``."""
    used = set(used)
    while len(blend.terms) < terms:
        found = _fittest_term(scores, pool, used, fitness, weights)
        if found is None or found[2] < fit + min_gain:
            break
        j, w, fit = found
        used.add(j)
        scores = _joined(scores, pool[j].scores, w)
        blend = Blend(blend.first, blend.second, blend.weight,
                      (*blend.more, (pool[j].program, w)))
    return blend, fit

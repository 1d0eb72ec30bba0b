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
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

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


def best_blend(archive: Sequence[Member], fitness: Callable[[np.ndarray], float], *,
               size: int = 60, similar: float = 0.97,
               weights: Sequence[float] = WEIGHTS) -> tuple[Blend, float] | None:
    """The fittest blend of two distinct archived programs and its fitness (None with
    fewer than two), every ordered pair and weight tried."""
    pool = distinct(archive, size, similar)
    best: tuple[Blend, float] | None = None
    for i, a in enumerate(pool):
        for j, b in enumerate(pool):
            if i == j or a.scores is None or b.scores is None:
                continue
            for w in weights:
                with np.errstate(all="ignore"):
                    s = a.scores + w * b.scores
                s = np.where(np.isfinite(s), s, -np.inf)
                if not np.isfinite(s).any():
                    continue
                f = float(fitness(s))
                if np.isfinite(f) and (best is None or f > best[1]):
                    best = (Blend(a.program, b.program, float(w)), f)
    return best

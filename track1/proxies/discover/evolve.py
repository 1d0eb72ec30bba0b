"""Regularised (aging) evolution over proxy programs (Real et al., AAAI 2019), with a
diversity rule and the best program ever kept.

Each cycle samples ``sample`` living programs, mutates the fittest, and the child
replaces the oldest. Diversity: a child whose ranking of the search archs agrees with
a living program's at Spearman >= ``diversity`` brings nothing new; it is redrawn (at
most ``retries`` times, then accepted) and the rejections are counted. The fitness is
whatever ``fitness(scores)`` says (the driver: Kendall against the search split).
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import rankdata

from track1.proxies.discover.program import Program, evaluate, mutate, random_program


@dataclass
class Member:
    program: Program
    fitness: float
    ranks: np.ndarray = field(repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)


@dataclass
class EvolutionResult:
    best: Member
    history: list[dict]
    evaluated: int
    rejected_similar: int
    #: the distinct programs evaluated with the largest |fitness| (at most ``archive``; an
    #: inverse ranking serves a blend as well, with a negative weight), largest first,
    #: with their scores of the search archs: what ``blend.best_blend`` pairs
    archive: list[Member] = field(default_factory=list)


def spearman(r1: np.ndarray, r2: np.ndarray) -> float:
    """Spearman of two rank vectors (Pearson of the ranks); 1 when one is constant."""
    a, b = r1 - r1.mean(), r2 - r2.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else 1.0


def evolve(stats: np.ndarray, mask: np.ndarray, fitness: Callable[[np.ndarray], float], *,
           population: int = 50, sample: int = 10, cycles: int = 2000, seed: int = 0,
           diversity: float = 0.99, retries: int = 20, archive: int = 0,
           progress: Callable[[int, float], None] | None = None) -> EvolutionResult:
    """Evolve programs on the padded search set ``stats`` / ``mask``; keep the ``archive``
    programs seen with the largest |fitness|, with their scores."""
    if not 2 <= sample <= population:
        raise ValueError(f"evolution needs 2 <= sample <= population; got {sample}, {population}")
    if not 0.0 < diversity <= 1.0:
        raise ValueError(f"diversity is a Spearman threshold in (0, 1]; got {diversity}")
    rng = random.Random(seed)
    alive: deque[Member] = deque()
    history: list[dict] = []
    best: Member | None = None
    evaluated = rejected = 0
    kept: dict[Program, Member] = {}

    def make(program: Program) -> Member:
        nonlocal evaluated, kept
        evaluated += 1
        scores = evaluate(program, stats, mask)
        constant = not np.isfinite(scores).any() or np.nanstd(np.where(
            np.isfinite(scores), scores, np.nan)) == 0
        f = -1.0 if constant else float(fitness(scores))
        m = Member(program, f if np.isfinite(f) else -1.0, rankdata(scores))
        if archive and m.fitness > -1.0:
            kept[program] = Member(m.program, m.fitness, m.ranks, scores)
            if len(kept) > 2 * archive:   # prune to the most telling, bounded memory
                kept = dict(sorted(kept.items(), key=lambda kv: -abs(kv[1].fitness))[:archive])
        return m

    def similar(m: Member) -> bool:
        return any(spearman(m.ranks, o.ranks) >= diversity for o in alive)

    def draw(propose: Callable[[], Program]) -> Member:
        """A proposed child, redrawn while it ranks like a living member (bounded)."""
        nonlocal rejected
        child = make(propose())
        for _ in range(retries):
            if not similar(child):
                break
            rejected += 1
            child = make(propose())
        return child

    def admit(m: Member) -> None:
        nonlocal best
        alive.append(m)
        if best is None or m.fitness > best.fitness:
            best = m

    while len(alive) < population:
        admit(draw(lambda: random_program(rng)))
    for cycle in range(cycles):
        parent = max(rng.sample(list(alive), sample), key=lambda m: m.fitness)
        child = draw(lambda: mutate(parent.program, rng))
        alive.popleft()
        admit(child)
        assert best is not None
        history.append({"cycle": cycle + 1, "fitness": child.fitness, "best": best.fitness})
        if progress is not None:
            progress(cycle + 1, best.fitness)
    assert best is not None
    telling = sorted(kept.values(), key=lambda m: -abs(m.fitness))[:archive]
    return EvolutionResult(best, history, evaluated, rejected, telling)

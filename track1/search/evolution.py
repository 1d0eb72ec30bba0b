"""Architecture search over a space's genome: regularised evolution and random search.

Both run on any space that exposes a genome (``gene_choices()``, ``genes(arch)``,
``from_genes(genes)``; the ResNet-48 and NAS-Bench-201 spaces do) under cost bounds
(``Bounds``: min and/or max FLOPs and params, from ``space.cost``). Fitness is a callable
that scores a batch of archs; search asks for one batch per generation, so an engine that
scores many archs at once (prefix sharing) sees them together.

Regularised evolution (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019), batched by generation: a population of ``population``
archs; each generation makes ``population`` children, each the mutation of a tournament
winner or (with ``crossover_prob``) the uniform crossover of two; after scoring, the
children join the population and the oldest members leave (aging, not the worst). Random
search draws the same number of archs uniformly within the bounds: the baseline at equal
cost. Every decision comes from ``random.Random(seed)`` and the fitness values, so a rerun
with a cache of earlier scores replays the same search without scoring anything twice.
"""
from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

from track1.infra.errors import UserError

#: fitness of a batch of archs (same order), higher is better
Fitness = Callable[[Sequence[Hashable]], Sequence[float]]
#: called after each generation's batch: (generation, [(arch, fitness), ...])
OnGeneration = Callable[[int, list[tuple[Hashable, float]]], None]

#: draws per arch before the bounds are declared unsatisfiable
MAX_DRAWS = 20_000


class SearchError(UserError, ValueError):
    """Bad search input: bounds no arch meets, a space without a genome, bad sizes."""


@dataclass(frozen=True)
class Bounds:
    """Inclusive cost bounds; None leaves that side open."""

    min_flops: float | None = None
    max_flops: float | None = None
    min_params: float | None = None
    max_params: float | None = None

    def check(self) -> None:
        for name in ("flops", "params"):
            lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            for side, v in (("min", lo), ("max", hi)):
                if v is not None and (not math.isfinite(v) or v < 0):
                    raise SearchError(f"--{side}-{name} must be a finite number >= 0, got {v}")
            if lo is not None and hi is not None and lo > hi:
                raise SearchError(f"--min-{name} {lo:g} is above --max-{name} {hi:g}")

    def admits(self, cost: dict[str, float]) -> bool:
        f, p = cost["flops"], cost["params"]
        return ((self.min_flops is None or f >= self.min_flops)
                and (self.max_flops is None or f <= self.max_flops)
                and (self.min_params is None or p >= self.min_params)
                and (self.max_params is None or p <= self.max_params))

    def describe(self) -> str:
        parts = []
        for name in ("flops", "params"):
            lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if lo is not None or hi is not None:
                parts.append(f"{name} in [{'-' if lo is None else f'{lo:.4g}'}, "
                             f"{'-' if hi is None else f'{hi:.4g}'}]")
        return ", ".join(parts) or "no cost bounds"


def check_genome(space: Any) -> None:
    if not all(callable(getattr(space, m, None)) for m in ("gene_choices", "genes", "from_genes")):
        raise SearchError(f"the {getattr(space, 'name', space)!r} space has no genome "
                          "(gene_choices/genes/from_genes): it cannot be searched")


class Candidates:
    """Draws archs within ``bounds``: uniform samples, mutations and crossovers."""

    def __init__(self, space: Any, bounds: Bounds, rng: random.Random,
                 mutate_prob: float = 0.1) -> None:
        check_genome(space)
        bounds.check()
        self.space, self.bounds, self.rng = space, bounds, rng
        self.choices = space.gene_choices()
        self.mutate_prob = mutate_prob
        self._admits: dict[Hashable, bool] = {}

    def admits(self, arch: Hashable) -> bool:
        if arch not in self._admits:
            self._admits[arch] = self.bounds.admits(self.space.cost(arch))
        return self._admits[arch]

    def _first(self, draw: Callable[[], Hashable], avoid: set, what: str) -> Hashable:
        """The first draw within bounds and outside ``avoid`` (or, after many draws, the
        first within bounds at all)."""
        fallback = None
        for _ in range(MAX_DRAWS):
            arch = draw()
            if not self.admits(arch):
                continue
            if arch not in avoid:
                return arch
            fallback = arch if fallback is None else fallback
        if fallback is not None:
            return fallback
        raise SearchError(f"no {what} within {self.bounds.describe()} after {MAX_DRAWS:,} "
                          f"draws: the bounds are too tight for this space (smallest arch: "
                          f"{self._cost_text(self.space.smallest())}, largest: "
                          f"{self._cost_text(self.space.largest())})")

    def _cost_text(self, arch: Hashable) -> str:
        c = self.space.cost(arch)
        return f"{c['flops']:.4g} FLOPs, {c['params']:.4g} params"

    def sample(self, avoid: set) -> Hashable:
        return self._first(lambda: self.space.sample(self.rng), avoid, "random arch")

    def mutate(self, parent: Hashable, avoid: set) -> Hashable:
        def draw() -> Hashable:
            genes = list(self.space.genes(parent))
            changed = False
            while not changed:  # at least one gene moves
                for i, options in enumerate(self.choices):
                    if len(options) > 1 and self.rng.random() < self.mutate_prob:
                        genes[i] = self.rng.choice([o for o in options if o != genes[i]])
                        changed = True
            return self.space.from_genes(tuple(genes))
        return self._first(draw, avoid, "mutation")

    def crossover(self, a: Hashable, b: Hashable, avoid: set, tries: int = 100) -> Hashable:
        """A uniform crossover of ``a`` and ``b`` not in ``avoid``; parents that differ in
        few genes have few children, so after ``tries`` draws it mutates ``a`` instead."""
        ga, gb = self.space.genes(a), self.space.genes(b)
        for _ in range(tries):
            child = self.space.from_genes(tuple(x if self.rng.random() < 0.5 else y
                                                for x, y in zip(ga, gb)))
            if child not in avoid and self.admits(child):
                return child
        return self.mutate(a, avoid)


def _score(fitness: Fitness, archs: list[Hashable], generation: int,
           on_generation: OnGeneration | None) -> list[tuple[Hashable, float]]:
    scored = list(zip(archs, (float(v) for v in fitness(archs))))
    if on_generation is not None:
        on_generation(generation, scored)
    return scored


def regularized_evolution(space: Any, fitness: Fitness, *, population: int, generations: int,
                          bounds: Bounds = Bounds(), seed: int = 0, tournament: int | None = None,
                          mutate_prob: float = 0.1, crossover_prob: float = 0.0,
                          batch: int = 1, on_generation: OnGeneration | None = None
                          ) -> list[tuple[Hashable, float]]:
    """Aging (regularized) evolution as Real et al. (AAAI 2019) publish it: a population of
    ``population`` random archs, then one child per cycle: the best of ``tournament``
    members drawn from the population (without replacement) is mutated, the child joins
    the population and its OLDEST member leaves, whatever its fitness, so each member lives
    ``population`` cycles. ``generations`` sets the budget: ``population * (generations +
    1)`` archs in all, as random search's. ``batch`` children are drawn from the population
    as it stands and scored together (prefix sharing pays); each then takes its cycle in
    order (joins, the oldest leaves): ``batch`` 1 is the published sequential algorithm.
    ``crossover_prob`` (0 as published) makes that share of children by uniform crossover
    of two tournament winners. Every ``(arch, fitness)`` scored is returned in order (batch
    ``i`` is reported as generation ``i``); all within ``bounds``."""
    if population < 2 or generations < 0 or batch < 1:
        raise SearchError(f"evolution needs --population >= 2, --generations >= 0 and a batch "
                          f">= 1, got {population}, {generations} and {batch}")
    rng = random.Random(seed)
    pick = Candidates(space, bounds, rng, mutate_prob)
    size = min(tournament or max(2, population // 4), population)
    seen: set = set()
    first: list[Hashable] = []
    for _ in range(population):
        first.append(pick.sample(seen))
        seen.add(first[-1])
    history = _score(fitness, first, 0, on_generation)
    alive = deque(history)              # the population, oldest on the left
    cycles, generation = population * generations, 0
    while cycles > 0:
        generation += 1
        children: list[Hashable] = []
        for _ in range(min(batch, cycles)):
            a = tournament_winner(alive, size, rng)
            b = tournament_winner(alive, size, rng) if rng.random() < crossover_prob else a
            child = pick.crossover(a, b, seen) if b != a else pick.mutate(a, seen)
            seen.add(child)
            children.append(child)
        scored = _score(fitness, children, generation, on_generation)
        history += scored
        for member in scored:           # one cycle each: the child joins, the oldest leaves
            alive.append(member)
            alive.popleft()
        cycles -= len(children)
    return history


def tournament_winner(alive: deque, size: int, rng: random.Random) -> Hashable:
    """The fittest of ``size`` members drawn without replacement from the population."""
    return max(rng.sample(list(alive), size), key=lambda t: t[1])[0]


def random_search(space: Any, fitness: Fitness, *, samples: int, batch: int,
                  bounds: Bounds = Bounds(), seed: int = 0,
                  on_generation: OnGeneration | None = None) -> list[tuple[Hashable, float]]:
    """``samples`` distinct archs drawn uniformly within ``bounds``, scored ``batch`` at a
    time (batch i is reported as generation i)."""
    if samples < 1 or batch < 1:
        raise SearchError(f"random search needs samples >= 1 and batch >= 1, got {samples}, "
                          f"{batch}")
    rng = random.Random(seed)
    pick = Candidates(space, bounds, rng)
    seen: set = set()
    history: list[tuple[Hashable, float]] = []
    for generation, lo in enumerate(range(0, samples, batch)):
        archs = []
        for _ in range(min(batch, samples - lo)):
            archs.append(pick.sample(seen))
            seen.add(archs[-1])
        history += _score(fitness, archs, generation, on_generation)
    return history


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower cost, higher
    fitness), ordered by cost: ``points`` are ``(cost, fitness)``."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front

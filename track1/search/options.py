"""Options of ``track1 search`` and their defaults: a module that imports no torch, so
``track1 search --help`` shows them at once. The defaults are a small budget that
finishes on a CPU in minutes (8 x 4 = 32 archs on the embedded data)."""
from __future__ import annotations

from dataclasses import dataclass, field

from track1.scoring.options import ScoringOptions
from track1.search.evolution import Bounds

METHODS = ("evolution", "random")
#: what search maximises: minus the mean cross-entropy on the held-out images (the
#: default: on NAS-Bench-201 at the paper's 12,000 steps it ranked better than top-1 in 7
#: of 8 supernets, and the scorer repeats it far better; docs/results/NOTES.md), or top-1
FITNESS = ("neg_loss", "acc")


@dataclass
class SearchOptions(ScoringOptions):
    """``ScoringOptions`` and the search's own."""

    out: str | None = None
    method: str = "evolution"
    fitness: str = "neg_loss"
    population: int = 8
    generations: int = 3
    tournament: int | None = None
    mutate_prob: float = 0.1
    crossover_prob: float = 0.0          # 0: mutation only, as Real et al. publish it
    batch: int = 1                       # children scored together (1: the published sequential order)
    seed: int = 0
    bounds: Bounds = field(default_factory=Bounds)
    top_k: int = 10
    plot: bool = True
    fuse_reference: int = 64             # --fuse: archs every arch is ranked against

    @property
    def budget(self) -> int:
        """Archs scored: the first population and one population per generation."""
        return self.population * (self.generations + 1)

"""The margin subnet sampler (RD-NAS): pairs of subnets far enough apart to rank.

A pair of near-identical subnets carries no ranking signal (their losses differ by
noise), so the sampler redraws ``b`` until ``space.distance(a, b) >= threshold``. The
space's own ``distance`` is used (Hamming over code[5:] for the PGONAS reference, group
distance for RD-NAS), and every draw comes from ``space.sample``, so samples stay in the
space (for Track 1, the tied space). All randomness comes from one ``random.Random``
owned by the sampler: seeding it identically on every DDP rank gives identical archs,
and its state goes into checkpoints so a resumed run draws the same archs.
"""
from __future__ import annotations

import random
from typing import Any, Hashable

from track1.nas.space import SearchSpace


class MarginSampler:
    """Draws random archs, margin pairs and margin chains from ``space``.

    ``threshold`` 0 disables the margin (plain random pairs). After ``max_tries``
    failed redraws the farthest candidate seen is returned (and counted in
    ``fallbacks``), so a threshold above the space's diameter cannot hang training.
    """

    def __init__(self, space: SearchSpace, threshold: float = 0.0, seed: int = 0,
                 max_tries: int = 100) -> None:
        if threshold < 0:
            raise ValueError(f"margin threshold must be >= 0, got {threshold}")
        self.space = space
        self.threshold = float(threshold)
        self.max_tries = int(max_tries)
        self.rng = random.Random(seed)
        self.draws = 0
        self.fallbacks = 0

    def sample(self) -> Hashable:
        """One uniformly random arch."""
        return self.space.sample(self.rng)

    def partner(self, a: Hashable) -> Hashable:
        """An arch at distance >= threshold from ``a`` (or the farthest of max_tries)."""
        best, best_d = None, -1.0
        for _ in range(self.max_tries):
            b = self.space.sample(self.rng)
            d = self.space.distance(a, b)
            if d >= self.threshold and b != a:
                self.draws += 1
                return b
            if d > best_d:
                best, best_d = b, d
        self.draws += 1
        self.fallbacks += 1
        return best

    def pair(self) -> tuple[Hashable, Hashable]:
        a = self.sample()
        return a, self.partner(a)

    def pairs(self, m: int) -> list[tuple[Hashable, Hashable]]:
        return [self.pair() for _ in range(m)]

    def chain(self, k: int) -> list[Hashable]:
        """``k`` archs where each is at least ``threshold`` from the previous one, so
        consecutive members form margin pairs (used by the reuse mode and groups)."""
        if k <= 0:
            return []
        out = [self.sample()]
        while len(out) < k:
            out.append(self.partner(out[-1]))
        return out

    # ---------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss], "threshold": self.threshold,
                "draws": self.draws, "fallbacks": self.fallbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((int(version), tuple(int(v) for v in internal), gauss))
        self.draws = int(state.get("draws", 0))
        self.fallbacks = int(state.get("fallbacks", 0))

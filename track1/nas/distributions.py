"""Which archs the random slots of a training step draw: views of a space with another
``sample``.

The margin sampler (``track1.nas.sampler``) draws every random subnet through
``space.sample(rng)``; wrapping the space changes the distribution and nothing else (codes,
costs, distances, the sandwich's largest and smallest stay the space's):

- ``uniform``: the space's own draw (the default);
- ``list``: uniformly among the archs of a list file, e.g. the official Track 1 list
  (the 2nd-place team trained on the subnets that would be scored);
- ``flops_balanced``: a FLOPs band first, uniformly among ``bins`` equal-width bands of
  the space's FLOPs range, then an arch inside it (so every FLOPs level gets the same
  share of steps, where uniform sampling crowds the middle of the range; AttentiveNAS
  samples a FLOPs target first in the same spirit);
- ``size_biased``: the largest by FLOPs of ``bias`` uniform draws (the 1st-place team
  biased training toward large subnets).

Every draw comes from the sampler's own ``random.Random``, so runs stay seedable and
resumable; the bands come from a fixed seeded pool, the same on every rank and restart.
"""
from __future__ import annotations

import bisect
import random
from typing import Any, Hashable, Sequence

SAMPLER_KINDS = ("uniform", "list", "flops_balanced", "size_biased")
#: draws per banded sample before falling back to the last draw (bands of a pool are
#: each hit with probability ~1/bins by a uniform draw)
MAX_BAND_DRAWS = 1000


class _SpaceView:
    """Delegates everything but ``sample`` to the wrapped space."""

    def __init__(self, space: Any) -> None:
        self.space = space
        self.name = space.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.space, name)


class ListSpace(_SpaceView):
    """Samples uniformly among ``archs`` (archs of ``space``)."""

    def __init__(self, space: Any, archs: Sequence[Hashable]) -> None:
        super().__init__(space)
        if not archs:
            raise ValueError("a list sampler needs at least one arch")
        self.archs = list(archs)

    def sample(self, rng: random.Random) -> Hashable:
        return self.archs[rng.randrange(len(self.archs))]


class FlopsBalancedSpace(_SpaceView):
    """Samples one of ``bins`` equal-width FLOPs bands uniformly (bands over the FLOPs range
    of a seeded pool of archs; empty bands dropped), then a uniform arch inside it: by
    rejection from the space, or a pool arch of that band when rejection takes too long
    (a band at the range's ends may hold a tiny share of the space)."""

    def __init__(self, space: Any, bins: int = 10, pool: int = 4000, seed: int = 0) -> None:
        super().__init__(space)
        if bins < 2:
            raise ValueError(f"flops_balanced needs bins >= 2, got {bins}")
        rng = random.Random(seed)
        archs = [space.sample(rng) for _ in range(pool)]
        flops = [space.cost(a)["flops"] for a in archs]
        lo, hi = min(flops), max(flops)
        #: inner band edges: band i holds FLOPs in [edges[i-1], edges[i])
        self.edges = [lo + (hi - lo) * i / bins for i in range(1, bins)]
        members: dict[int, list] = {}
        for a, f in zip(archs, flops):
            members.setdefault(bisect.bisect_right(self.edges, f), []).append(a)
        self.bands = sorted(members)
        self.members = members

    def band(self, arch: Hashable) -> int:
        return bisect.bisect_right(self.edges, self.space.cost(arch)["flops"])

    def sample(self, rng: random.Random) -> Hashable:
        target = self.bands[rng.randrange(len(self.bands))]
        for _ in range(MAX_BAND_DRAWS):
            arch = self.space.sample(rng)
            if self.band(arch) == target:
                return arch
        pool = self.members[target]
        return pool[rng.randrange(len(pool))]


class OneArchSpace(_SpaceView):
    """Samples only ``arch``: stand-alone training (``track1 train-subnet``), where every
    step trains the same path."""

    def __init__(self, space: Any, arch: Hashable) -> None:
        super().__init__(space)
        self.arch = arch

    def sample(self, rng: random.Random) -> Hashable:
        return self.arch

    def distance(self, a: Hashable, b: Hashable) -> float:
        return 0.0 if a == b else self.space.distance(a, b)


class SizeBiasedSpace(_SpaceView):
    """The largest by FLOPs of ``bias`` uniform draws."""

    def __init__(self, space: Any, bias: int = 2) -> None:
        super().__init__(space)
        if bias < 1:
            raise ValueError(f"size_biased needs bias >= 1, got {bias}")
        self.bias = bias

    def sample(self, rng: random.Random) -> Hashable:
        draws = [self.space.sample(rng) for _ in range(self.bias)]
        return max(draws, key=lambda a: self.space.cost(a)["flops"])


def sampling_space(space: Any, kind: str, *, archs: Sequence[Hashable] = (), bins: int = 10,
                   bias: int = 2, seed: int = 0) -> Any:
    """``space`` as the training sampler of ``kind`` should see it."""
    if kind == "uniform":
        return space
    if kind == "list":
        return ListSpace(space, archs)
    if kind == "flops_balanced":
        return FlopsBalancedSpace(space, bins=bins, seed=seed)
    if kind == "size_biased":
        return SizeBiasedSpace(space, bias=bias)
    raise ValueError(f"unknown sampler kind {kind!r}; choose from {SAMPLER_KINDS}")

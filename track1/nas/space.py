"""The search-space interface shared by the Track 1 space and NAS-Bench-201.

Everything above the space (samplers, ranking losses, trainer, evaluator, bench) talks
to a space only through this protocol, and to a supernet only through
``SupernetProtocol``. An arch is an immutable, hashable value owned by its space; its
string ``code`` is the canonical, round-trippable form used in files.
"""
from __future__ import annotations

import random
from typing import Hashable, Protocol, Sequence, TypeVar, runtime_checkable

from torch import nn

Arch = TypeVar("Arch", bound=Hashable)


@runtime_checkable
class SearchSpace(Protocol[Arch]):
    """A discrete architecture space: sampling, codes, distances and costs."""

    name: str

    def largest(self) -> Arch:
        """The arch with every choice at its maximum (sandwich rule's top)."""

    def smallest(self) -> Arch:
        """The arch with every choice at its minimum (sandwich rule's bottom)."""

    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random arch, drawn from ``rng`` only (so it is seedable)."""

    def encode(self, arch: Arch) -> str:
        """The arch's canonical string code."""

    def decode(self, code: str) -> Arch:
        """Parse and validate a code; raise ``ValueError`` naming what is wrong."""

    def distance(self, a: Arch, b: Arch) -> float:
        """The distance the margin sampler thresholds (RD-NAS group distance)."""

    def cost(self, arch: Arch) -> dict[str, float]:
        """Cheap analytic costs, at least ``flops`` and ``params``."""

    def build(self, arch: Arch, num_classes: int, **options) -> nn.Module:
        """A freshly initialised standalone network of ``arch`` (for zero-cost proxies).

        It maps images to logits and has ``forward_features(x)``, the pre-pooling map.
        """


@runtime_checkable
class SupernetProtocol(Protocol[Arch]):
    """A weight-sharing network whose active path is one arch of its space."""

    space: SearchSpace

    def set_arch(self, arch: Arch) -> None:
        """Make ``arch`` the active subnet for the following forward passes."""

    def extract(self, arch: Arch) -> nn.Module:
        """A standalone ``nn.Module`` of ``arch`` with the shared weights copied."""


def sample_distinct(space: SearchSpace, rng: random.Random, n: int,
                    exclude: Sequence[Hashable] = ()) -> list:
    """Draw ``n`` archs that differ from each other and from ``exclude``.

    Falls back to allowing repeats after many failed draws, so tiny spaces cannot hang.
    """
    seen = set(exclude)
    out = []
    for _ in range(n * 50):
        if len(out) == n:
            break
        arch = space.sample(rng)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    while len(out) < n:
        out.append(space.sample(rng))
    return out


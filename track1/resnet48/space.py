"""The Track 1 ResNet-48 space as a ``SearchSpace``: sampling, codes, distances, costs, builds."""
from __future__ import annotations

import random

from track1.resnet48.arch import (DISTANCES, ResNetArch, decode, encode, largest_arch, random_arch,
                                  smallest_arch)
from track1.resnet48.costs import count_costs
from track1.resnet48.official import OFFICIAL_LIST, SUBMISSION_NAME
from track1.resnet48.static import StaticResNet


class ResNet48Space:
    """``SearchSpace`` implementation for the Track 1 ResNet-48 space."""

    name = "track1_resnet48"
    #: the list ``evaluate`` scores by default, and the file name its full answer takes
    official_list = OFFICIAL_LIST
    submission_name = SUBMISSION_NAME

    def __init__(self, distance: str = "hamming", tied: bool = True) -> None:
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose from {sorted(DISTANCES)}")
        self.distance_name = distance
        self.tied = tied

    def largest(self) -> ResNetArch:
        return largest_arch()

    def smallest(self) -> ResNetArch:
        return smallest_arch()

    def sample(self, rng: random.Random) -> ResNetArch:
        return random_arch(rng)

    def encode(self, arch: ResNetArch) -> str:
        return encode(arch)

    def decode(self, code: str) -> ResNetArch:
        return decode(code, tied=self.tied)

    def distance(self, a: ResNetArch, b: ResNetArch) -> float:
        return float(DISTANCES[self.distance_name](a, b))

    def cost(self, arch: ResNetArch) -> dict[str, float]:
        return count_costs(arch)

    def build(self, arch: ResNetArch, num_classes: int = 1000, activation: str = "relu",
              residual: bool = True):
        """A fresh ``StaticResNet`` of ``arch``; ``residual=False`` drops the identity
        and projection shortcuts (Zen-NAS's official scoring network)."""
        return StaticResNet(arch, num_classes=num_classes, activation=activation,
                            residual=residual)

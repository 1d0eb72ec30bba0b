"""The Track 1 ResNet-48 space as a ``SearchSpace``: sampling, codes, distances, costs, builds."""
from __future__ import annotations

import random

from track1.resnet48.arch import (DISTANCES, MAX_DEPTHS, MIN_DEPTHS, WIDTH_CODES, ResNetArch,
                                  build_arch, decode, encode, largest_arch, random_arch,
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

    # ------------------------------------------------------------------ genome
    # Search (``track1.search``) sees an arch as genes with finite choices: 4 depths,
    # 4 stage output width codes (stage 1's is the stem), and a conv1 width code for every
    # block slot (23). A slot past its stage's depth keeps a latent gene that mutation may
    # change and a deeper child may switch on, as in once-for-all's evolution.
    def gene_choices(self) -> list[tuple[int, ...]]:
        depths = [tuple(range(lo, hi + 1)) for lo, hi in zip(MIN_DEPTHS, MAX_DEPTHS)]
        return depths + [tuple(WIDTH_CODES)] * (len(MAX_DEPTHS) + sum(MAX_DEPTHS))

    def genes(self, arch: ResNetArch) -> tuple[int, ...]:
        if not self.tied:
            raise ValueError("the genome covers the tied space only")
        outs = [stage[0][1] for stage in arch.blocks]
        conv1 = [arch.blocks[s][j][0] if j < arch.depths[s] else WIDTH_CODES[0]
                 for s in range(len(MAX_DEPTHS)) for j in range(MAX_DEPTHS[s])]
        return tuple(arch.depths) + tuple(outs) + tuple(conv1)

    def from_genes(self, genes: tuple[int, ...]) -> ResNetArch:
        n = len(MAX_DEPTHS)
        depths, outs, conv1 = genes[:n], genes[n:2 * n], genes[2 * n:]
        per_stage, lo = [], 0
        for d in MAX_DEPTHS:
            per_stage.append(tuple(conv1[lo:lo + d]))
            lo += d
        return build_arch(tuple(depths), tuple(outs), tuple(per_stage))

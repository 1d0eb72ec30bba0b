"""Few-shot supernets (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021).

One weight-sharing supernet makes every arch share every weight; few-shot NAS splits the
space on a few decisions (genes of the space's genome: an NB201 edge's op, a ResNet-48
stage's depth) into K parts, copies the trained one-shot supernet into K sub-supernets and
trains each only on its part, so archs that differ in a split decision stop sharing
weights. An arch is then scored by the sub-supernet of its part.

- ``PartSpace``: the view of a space that samples only one part (the split genes fixed),
  with the sandwich's largest and smallest moved into the part; the trainer uses it for a
  part's run (config ``part``).
- ``FewShotSupernet``: the K sub-supernets as one module with the supernet interface
  (``space``, ``set_arch``, ``forward``, ``extract``): ``set_arch`` activates the part's
  sub-supernet. A checkpoint of it (config ``fewshot: {genes}``) loads through
  ``track1.registry.load_supernet`` like any other, so ``evaluate``, ``search`` and the
  bench score few-shot and one-shot supernets alike.
"""
from __future__ import annotations

import itertools
import random
from typing import Any, Callable, Hashable, Sequence

import torch
from torch import nn


def check_split(space: Any, genes: Sequence[int]) -> tuple[int, ...]:
    """The split genes, validated against the space's genome."""
    if not all(callable(getattr(space, m, None)) for m in ("gene_choices", "genes", "from_genes")):
        raise ValueError(f"the {space.name!r} space has no genome: it cannot be split")
    n = len(space.gene_choices())
    genes = tuple(int(g) for g in genes)
    if not genes or len(set(genes)) != len(genes) or not all(0 <= g < n for g in genes):
        raise ValueError(f"split genes must be distinct indices in [0, {n}), got {list(genes)}")
    return genes


def parts_of(space: Any, genes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every part of a split: the value combinations of the split genes."""
    choices = space.gene_choices()
    return list(itertools.product(*(choices[g] for g in genes)))


def part_of(space: Any, genes: Sequence[int], arch: Hashable) -> tuple[int, ...]:
    g = space.genes(arch)
    return tuple(g[i] for i in genes)


def part_key(values: Sequence[int]) -> str:
    """A module-name-safe key of a part: ``p2_5``."""
    return "p" + "_".join(str(v) for v in values)


def _with(space: Any, arch: Hashable, genes: Sequence[int], values: Sequence[int]) -> Hashable:
    g = list(space.genes(arch))
    for i, v in zip(genes, values):
        g[i] = v
    return space.from_genes(tuple(g))


class PartSpace:
    """``space`` restricted to one part: draws uniformly inside it (the split genes set),
    and its largest/smallest are the space's with the split genes set."""

    def __init__(self, space: Any, genes: Sequence[int], values: Sequence[int]) -> None:
        self.space = space
        self.name = space.name
        self.genes = check_split(space, genes)
        self.values = tuple(int(v) for v in values)
        choices = space.gene_choices()
        if len(self.values) != len(self.genes) or \
                any(v not in choices[g] for g, v in zip(self.genes, self.values)):
            raise ValueError(f"part values {list(self.values)} do not fit the split genes "
                             f"{list(self.genes)} (choices {[choices[g] for g in self.genes]})")

    def sample(self, rng: random.Random) -> Hashable:
        return _with(self.space, self.space.sample(rng), self.genes, self.values)

    def largest(self) -> Hashable:
        return _with(self.space, self.space.largest(), self.genes, self.values)

    def smallest(self) -> Hashable:
        return _with(self.space, self.space.smallest(), self.genes, self.values)

    def contains(self, arch: Hashable) -> bool:
        return part_of(self.space, self.genes, arch) == self.values

    def __getattr__(self, name: str) -> Any:
        return getattr(self.space, name)


class FewShotSupernet(nn.Module):
    """K sub-supernets of one space, one per part of a split; the active arch picks one."""

    def __init__(self, build: Callable[[], nn.Module], genes: Sequence[int]) -> None:
        super().__init__()
        first = build()
        self.space = first.space
        self.genes = check_split(self.space, genes)
        self.parts = nn.ModuleDict()
        for i, values in enumerate(parts_of(self.space, self.genes)):
            self.parts[part_key(values)] = first if i == 0 else build()
        self.num_classes = getattr(first, "num_classes", None)
        self._active = part_key(parts_of(self.space, self.genes)[0])
        self.arch = None

    @classmethod
    def from_parts(cls, build: Callable[[], nn.Module], genes: Sequence[int],
                   states: dict[tuple[int, ...], dict[str, torch.Tensor]]) -> "FewShotSupernet":
        """The few-shot supernet of trained part state dicts (``{values: state_dict}``);
        every part of the split must be there."""
        net = cls(build, genes)
        missing = [v for v in parts_of(net.space, net.genes) if v not in states]
        if missing:
            raise ValueError(f"{len(missing)} part(s) of the split have no weights, e.g. "
                             f"{list(missing[0])}")
        for values, state in states.items():
            net.parts[part_key(values)].load_state_dict(state)
        return net

    def part(self, arch: Hashable) -> nn.Module:
        return self.parts[part_key(part_of(self.space, self.genes, arch))]

    def set_arch(self, arch: Hashable) -> None:
        if isinstance(arch, str):
            arch = self.space.decode(arch)
        self._active = part_key(part_of(self.space, self.genes, arch))
        self.parts[self._active].set_arch(arch)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.parts[self._active](x)

    def extract(self, arch: Hashable | None = None) -> nn.Module:
        arch = self.arch if arch is None else arch
        if isinstance(arch, str):
            arch = self.space.decode(arch)
        return self.part(arch).extract(arch)

"""Single-path weight-sharing supernet of NAS-Bench-201 (docs/REFERENCE.md §6).

Every cell edge holds all five candidate ops; the active arch picks one per edge and
only that op runs (``none`` contributes nothing), so one step costs about what the
standalone arch costs. Each op keeps its own BN, as in the SPOS / RD-NAS NB201 setup.
All cells share the active arch, as NAS-Bench-201 does.

    net = NB201Supernet()
    net.set_arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    logits = net(images)
    static = net.extract(net.arch)       # NB201Network with the shared weights copied
"""
from __future__ import annotations

import random
import re
from typing import Sequence, Union

import torch
from torch import nn

from track1.nas.spaces import register_space
from track1.nb201.network import OPS, NB201Body, NB201Network, make_op, sum_nodes
from track1.nb201.space import NB201Arch, NB201Space, decode

ArchLike = Union[NB201Arch, Sequence[int], str]


def _as_arch(arch: ArchLike) -> NB201Arch:
    if isinstance(arch, str):
        return decode(arch)
    arch = tuple(int(o) for o in arch)
    if len(arch) != 6 or not all(0 <= o < len(OPS) for o in arch):
        raise ValueError(f"NAS-Bench-201 arch must be 6 op indices in 0..{len(OPS) - 1}, "
                         f"got {arch}")
    return arch  # type: ignore[return-value]


class MixedCell(nn.Module):
    """A cell whose every edge holds all candidate ops; ``owner.arch`` picks one each."""

    def __init__(self, channels: int, owner: "NB201Supernet", affine: bool = True) -> None:
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(make_op(name, channels, affine) for name in OPS)
                                   for _ in range(6))
        # a plain (non-module) reference: the supernet holds the one active arch
        self._owner = [owner]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = self._owner[0].arch
        return sum_nodes(x, ops, lambda e, t: self.edges[e][ops[e]](t))


@register_space("nb201", space=NB201Space, static=NB201Network,
                about="NAS-Bench-201: 4-node cells, 6 edges x 5 ops (or a subset)")
class NB201Supernet(NB201Body):
    """Weight-sharing NB201 network; ``set_arch`` chooses the active path."""

    def __init__(self, num_classes: int = 10, C: int = 16, N: int = 5,
                 activation: str = "relu", ops: Sequence[str] | None = None,
                 bn_affine: bool = True, dropout: float = 0.0) -> None:
        if activation != "relu":  # the trainer's default model config names one
            raise ValueError(f"NAS-Bench-201 networks use ReLU only, got activation={activation!r}")
        super().__init__(lambda c: MixedCell(c, self, bn_affine), num_classes, C, N, bn_affine,
                         dropout)
        # every edge still holds all 5 ops (``none`` has no weights, so a 4-op supernet's
        # state_dict is the 5-op one's); ``ops`` limits what the space samples and decodes
        self.space = NB201Space(C=C, N=N, ops=ops)
        self.arch: NB201Arch = self.space.largest()

    def set_arch(self, arch: ArchLike) -> None:
        self.arch = _as_arch(arch)

    def sample_largest(self) -> NB201Arch:
        self.set_arch(self.space.largest())
        return self.arch

    def sample_smallest(self) -> NB201Arch:
        self.set_arch(self.space.smallest())
        return self.arch

    def sample_random(self, rng: random.Random) -> NB201Arch:
        self.set_arch(self.space.sample(rng))
        return self.arch

    def fast_step(self, optimizer, cfg, sampler, teacher=None, **options):
        """The static-graph training step of this supernet (``track1.nb201.fast``): the
        trainer's ``engine: fast``."""
        from track1.nb201.fast import FastNB201Step
        return FastNB201Step(self, optimizer, cfg, sampler, teacher, **options)

    def extract(self, arch: ArchLike | None = None) -> NB201Network:
        """A standalone ``NB201Network`` of ``arch`` (default: the active one) carrying
        the supernet's weights and BN statistics for exactly the ops it uses."""
        arch = self.arch if arch is None else _as_arch(arch)
        static = NB201Network(arch, num_classes=self.num_classes, C=self.C, N=self.N,
                              bn_affine=self.bn_affine, dropout=self.dropout_p)
        source = self.state_dict()
        target = {}
        edge_key = re.compile(r"^(cells\.\d+\.edges\.)(\d+)\.(.*)$")
        for key in static.state_dict():
            m = edge_key.match(key)
            target[key] = source[f"{m[1]}{m[2]}.{arch[int(m[2])]}.{m[3]}" if m else key]
        static.load_state_dict(target)
        return static.to(next(self.parameters()).device)

"""A third search space in a few lines, registered from outside the package: three conv
layers of width 4 or 8. The worked example of docs/ADDING_A_SPACE.md, and the proof that
train, evaluate, search and export need nothing of a space but what it registers."""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from track1.nas.spaces import register_space
from track1.ops.dynamic_ops import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear

WIDTHS = (4, 8)
LAYERS = 3


class ToySpace:
    """An arch is one width index per layer; its code the indices as digits, e.g. ``"101"``."""

    name = "toy"
    official_list = None          # evaluate then needs --archs

    def largest(self):
        return (1,) * LAYERS

    def smallest(self):
        return (0,) * LAYERS

    def sample(self, rng: random.Random):
        return tuple(rng.randrange(len(WIDTHS)) for _ in range(LAYERS))

    def encode(self, arch) -> str:
        return "".join(str(i) for i in arch)

    def decode(self, code: str):
        if not isinstance(code, str) or len(code) != LAYERS or set(code) - {"0", "1"}:
            raise ValueError(f"toy arch {code!r}: expected {LAYERS} digits, each 0 or 1")
        return tuple(int(c) for c in code)

    def distance(self, a, b) -> float:
        return float(sum(x != y for x, y in zip(a, b)))

    def cost(self, arch) -> dict[str, float]:
        widths = [3] + [WIDTHS[i] for i in arch]
        convs = sum(9 * a * b for a, b in zip(widths, widths[1:]))
        return {"flops": float(convs * 32 * 32), "params": float(convs + widths[-1] * 10)}

    def build(self, arch, num_classes: int = 10, **options) -> nn.Module:
        return ToyNet(arch, num_classes)

    # search's genome: one gene per layer
    def gene_choices(self):
        return [tuple(range(len(WIDTHS)))] * LAYERS

    def genes(self, arch):
        return tuple(arch)

    def from_genes(self, genes):
        return tuple(genes)


class ToyNet(nn.Module):
    """One arch as plain layers (what export writes)."""

    def __init__(self, arch, num_classes: int = 10) -> None:
        super().__init__()
        widths = [3] + [WIDTHS[i] for i in arch]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 1, 1, bias=False)
                                   for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in widths[1:])
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.relu(bn(conv(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean((2, 3)))


@register_space("toy", space=ToySpace, static=ToyNet, about="three conv layers, width 4 or 8")
class ToySupernet(nn.Module):
    """Full-width weights; the active arch slices each layer's output channels."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        widths = [3] + [max(WIDTHS)] * LAYERS
        self.convs = nn.ModuleList(DynamicConv2d(a, b, 3, 1, 1) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(DynamicBatchNorm2d(b) for b in widths[1:])
        self.fc = DynamicLinear(widths[-1], num_classes)
        self.space = ToySpace()
        self.set_arch(self.space.largest())

    def set_arch(self, arch) -> None:
        arch = self.space.decode(arch) if isinstance(arch, str) else tuple(arch)
        self.arch = arch
        for conv, i in zip(self.convs, arch):
            conv.active_out_channels = WIDTHS[i]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.relu(bn(conv(x)))
        return self.fc(x.mean((2, 3)))

    def extract(self, arch) -> ToyNet:
        """``arch`` as a ``ToyNet`` with the shared weights (and BN statistics) copied."""
        arch = self.space.decode(arch) if isinstance(arch, str) else tuple(arch)
        net = ToyNet(arch, self.fc.out_features)
        c_in = 3
        with torch.no_grad():
            for src, bn, dst, dbn, i in zip(self.convs, self.bns, net.convs, net.bns, arch):
                c = WIDTHS[i]
                dst.weight.copy_(src.weight[:c, :c_in])
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(dbn, name).copy_(getattr(bn, name)[:c])
                c_in = c
            net.fc.weight.copy_(self.fc.weight[:, :c_in])
            net.fc.bias.copy_(self.fc.bias)
        return net

"""A single Track 1 subnet as plain layers: ``nn.Conv2d`` / ``nn.BatchNorm2d`` at the arch's
exact widths, so it runs anywhere (fvcore, export, deployment) with no knowledge of the supernet.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import nn

from track1.ops.dynamic_ops import make_activation
from track1.resnet48.arch import STRIDES, ResNetArch, decode

ArchLike = Union[ResNetArch, str]


class StaticBasicBlock(nn.Module):
    """The plain-layer twin of ``ElasticBasicBlock`` at fixed widths.

    ``residual=False`` removes the shortcut altogether (used by Zen-score's variant
    that scores the plain conv chain).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int,
                 activation: str, residual: bool = True) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if residual and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))
        self.act = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if not self.residual:
            return self.act(out)
        return self.act(out + (x if self.shortcut is None else self.shortcut(x)))


class StaticResNet(nn.Module):
    """A single Track 1 subnet as a plain network (any well-formed arch, tied or not)."""

    def __init__(self, arch: ArchLike, num_classes: int = 1000, activation: str = "relu",
                 residual: bool = True) -> None:
        super().__init__()
        arch = decode(arch, tied=False) if isinstance(arch, str) else arch
        self.arch = arch
        c = arch.stem_channels
        self.stem_conv = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        self.stem_bn = nn.BatchNorm2d(c)
        self.stem_relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for s, widths in enumerate(arch.block_channels()):
            blocks = []
            for j, (mid, out) in enumerate(widths):
                blocks.append(StaticBasicBlock(c, mid, out, STRIDES[s] if j == 0 else 1, activation,
                                               residual))
                c = out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def feature_blocks(self) -> list[nn.Module]:
        """The stem (after its max-pool) and every block, in order: the modules whose
        outputs are the network's successive features (what AZ-NAS measures)."""
        return [self.maxpool, *(block for stage in self.stages for block in stage)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.maxpool(self.stem_relu(self.stem_bn(self.stem_conv(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))

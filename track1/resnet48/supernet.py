"""The elastic ResNet-48 supernet of Track 1 and its static export.

Elastic width: every conv slices a channel prefix of its full-size weight. Elastic
depth: a stage runs its first d blocks. One API covers every subnet::

    net = ResNet48Supernet(num_classes=10)
    net.set_arch("1252233313000000223212122253130000000000006515000000")
    logits = net(images)                      # the active subnet
    static = net.extract(net.arch)            # a StaticResNet, weights copied

``StaticResNet`` is built from plain ``nn.Conv2d`` / ``nn.BatchNorm2d`` layers at the
arch's exact widths, so it runs anywhere (fvcore, export, deployment) with no
knowledge of the supernet.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from track1.nas.spaces import register_space
from track1.ops.dynamic_ops import (DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, drop_path,
                                    make_activation)
from track1.resnet48.arch import (BASE_WIDTHS, MAX_DEPTHS, STEM_BASE_WIDTH, STRIDES, ArchCodeError,
                                  ResNetArch, decode, encode)
from track1.resnet48.pdparams import init_from_pdparams
from track1.resnet48.space import ResNet48Space
from track1.resnet48.static import ArchLike, StaticResNet


def _as_arch(arch: ArchLike) -> ResNetArch:
    return decode(arch) if isinstance(arch, str) else arch


class ElasticBasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + shortcut, -> outer activation."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int,
                 activation: str, drop_path: float = 0.0) -> None:
        super().__init__()
        self.drop_path = float(drop_path)
        self.conv1 = DynamicConv2d(in_channels, mid_channels, 3, stride, 1)
        self.bn1 = DynamicBatchNorm2d(mid_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = DynamicConv2d(mid_channels, out_channels, 3, 1, 1)
        self.bn2 = DynamicBatchNorm2d(out_channels)
        self.has_projection = stride != 1 or in_channels != out_channels
        if self.has_projection:
            self.shortcut = nn.Sequential(DynamicConv2d(in_channels, out_channels, 1, stride),
                                          DynamicBatchNorm2d(out_channels))
        self.act = make_activation(activation)

    def set_widths(self, mid: int, out: int) -> None:
        self.conv1.active_out_channels = mid
        self.conv2.active_out_channels = out
        if self.has_projection:
            self.shortcut[0].active_out_channels = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = drop_path(self.bn2(self.conv2(out)), self.drop_path, self.training)
        return self.act(out + (self.shortcut(x) if self.has_projection else x))


@register_space("track1_resnet48", space=ResNet48Space, static=StaticResNet,
                about="CVPR 2022 Track 1: ResNet-48, elastic depth and width")
class ResNet48Supernet(nn.Module):
    """Weight-sharing supernet over the Track 1 space (``SupernetProtocol``)."""

    def __init__(self, num_classes: int = 1000, activation: str = "relu",
                 drop_path: float = 0.0) -> None:
        """``drop_path``: stochastic depth on every residual branch while training (off by
        default: the PGONAS study found it cost about 2 points of correlation)."""
        super().__init__()
        if not 0.0 <= float(drop_path) < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path!r}")
        self.space = ResNet48Space()
        self.num_classes = num_classes
        self.activation = activation
        self.stem_conv = DynamicConv2d(3, STEM_BASE_WIDTH, 7, 2, 3)
        self.stem_bn = DynamicBatchNorm2d(STEM_BASE_WIDTH)
        self.stem_relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], STEM_BASE_WIDTH
        for base, depth, stride in zip(BASE_WIDTHS, MAX_DEPTHS, STRIDES):
            stages.append(nn.ModuleList(
                ElasticBasicBlock(cin if j == 0 else base, base, base, stride if j == 0 else 1,
                                  activation, drop_path) for j in range(depth)))
            cin = base
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = DynamicLinear(BASE_WIDTHS[-1], num_classes)
        self._init_weights()
        self.active_depths: list[int] = list(MAX_DEPTHS)
        self.arch: ResNetArch = self.space.largest()
        self.set_arch(self.arch)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ subnet API
    def set_arch(self, arch: ArchLike) -> None:
        """Activate ``arch`` (a ``ResNetArch`` or its code) for following forwards."""
        arch = _as_arch(arch)
        self.stem_conv.active_out_channels = arch.stem_channels
        cin = arch.stem_channels
        for s, (stage, widths) in enumerate(zip(self.stages, arch.block_channels())):
            for j, (mid, out) in enumerate(widths):
                block = stage[j]
                if not block.has_projection and cin != out:
                    raise ArchCodeError(
                        f"arch {encode(arch)} changes width inside stage {s + 1} (block {j + 1}: "
                        f"{cin} -> {out} channels) where the supernet has an identity shortcut; "
                        "the supernet covers the tied space only (conv2 codes equal in a stage, "
                        "stage 1's equal to the stem code)")
                block.set_widths(mid, out)
                cin = out
        self.active_depths = list(arch.depths)
        self.arch = arch

    def sample_largest(self) -> ResNetArch:
        arch = self.space.largest()
        self.set_arch(arch)
        return arch

    def sample_smallest(self) -> ResNetArch:
        arch = self.space.smallest()
        self.set_arch(arch)
        return arch

    def sample_random(self, rng) -> ResNetArch:
        arch = self.space.sample(rng)
        self.set_arch(arch)
        return arch

    # --------------------------------------------------------------------- forward
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The active subnet's pre-pooling feature map."""
        x = self.maxpool(self.stem_relu(self.stem_bn(self.stem_conv(x))))
        for stage, depth in zip(self.stages, self.active_depths):
            for block in stage[:depth]:
                x = block(x)
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))

    def load_pdparams(self, path: str | os.PathLike, include_head: bool = True) -> dict[str, list]:
        """Copy the organisers' Paddle checkpoint (``.pdparams``) into this supernet (``--init-from``);
        the report lists matched, unmatched, missing and shape-mismatched tensors."""
        return init_from_pdparams(self, path, include_head=include_head)

    # ---------------------------------------------------------------- re-ordering
    @torch.no_grad()
    def reorder_channels(self) -> None:
        """Permute channels by L1 importance so a narrower subnet keeps the most important
        ones (once-for-all's ``re_organize_middle_weights``; the 1st and 3rd Track 1 teams
        did it before training from the organisers' weights). The largest subnet computes
        the same function afterwards (up to float rounding).

        - inside a block: conv1's output channels (conv1 rows, bn1, conv2 columns), ranked
          by the L1 norm of conv2's weights reading each;
        - along each residual stream (the stem with stage 1, whose first block has an
          identity shortcut; then each later stage): the output channels of every conv
          writing the stream (stem, conv2 of every block, the projection) with their BNs,
          and the input channels of every conv reading it (conv1 and projection of the
          next blocks, the classifier), ranked by the summed L1 norm of the writers' rows.
        """
        def take(bn: nn.BatchNorm2d, perm: torch.Tensor) -> None:
            for name in ("weight", "bias", "running_mean", "running_var"):
                t = getattr(bn, name)
                t.copy_(t[perm])

        for stage in self.stages:
            for block in stage:
                perm = block.conv2.weight.abs().sum((0, 2, 3)).argsort(descending=True)
                block.conv1.weight.copy_(block.conv1.weight[perm])
                take(block.bn1, perm)
                block.conv2.weight.copy_(block.conv2.weight[:, perm])
        # residual streams: (writers: (conv, bn) pairs, readers: convs/linear reading it)
        streams = [([(self.stem_conv, self.stem_bn)], [])]
        for s, stage in enumerate(self.stages):
            if s > 0:
                streams.append(([], []))
            writers, readers = streams[-1]
            for j, block in enumerate(stage):
                writers.append((block.conv2, block.bn2))
                if block.has_projection:
                    writers.append((block.shortcut[0], block.shortcut[1]))
                    streams[-2][1].append(block.shortcut[0])
                (streams[-2] if j == 0 and s > 0 else streams[-1])[1].append(block.conv1)
        streams[-1][1].append(self.fc)
        for writers, readers in streams:
            importance = sum(conv.weight.abs().flatten(1).sum(1) for conv, _ in writers)
            perm = importance.argsort(descending=True)
            for conv, bn in writers:
                conv.weight.copy_(conv.weight[perm])
                take(bn, perm)
            for layer in readers:
                layer.weight.copy_(layer.weight[:, perm])

    # ------------------------------------------------------------------ segments
    # What exact prefix sharing needs (``track1.scoring.prefix``): the arch as a chain of
    # segments whose output depends only on the segments before it, then ``forward_head``.
    def segment_keys(self, arch: ArchLike) -> list[tuple]:
        """The forward-order segments of ``arch`` as hashable keys: stem, then every block."""
        return segment_keys(_as_arch(arch))

    def segment(self, key: tuple) -> nn.Module:
        """The module that runs segment ``key``, set to that segment's widths."""
        if key[0] == "stem":
            self.stem_conv.active_out_channels = key[1]
            return nn.Sequential(self.stem_conv, self.stem_bn, self.stem_relu, self.maxpool)
        s, j, mid, out = key
        block = self.stages[s][j]
        block.set_widths(mid, out)
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # ---------------------------------------------------------------------- export
    def extract(self, arch: ArchLike | None = None) -> "StaticResNet":
        """A standalone ``StaticResNet`` of ``arch`` (default: the active one) with the
        shared weights, BN statistics and activation parameters copied."""
        arch = self.arch if arch is None else _as_arch(arch)
        previous = self.arch
        self.set_arch(arch)  # validates arch against the supernet
        self.set_arch(previous)
        # Built on the meta device (no wasted random init), materialised where the supernet
        # lives; every parameter and buffer is then overwritten from the shared weights.
        with torch.device("meta"):
            static = StaticResNet(arch, num_classes=self.num_classes, activation=self.activation)
        static = static.to_empty(device=self.fc.weight.device)
        with torch.no_grad():
            _copy_conv(static.stem_conv, self.stem_conv)
            _copy_bn(static.stem_bn, self.stem_bn)
            for s, stage in enumerate(static.stages):
                for j, block in enumerate(stage):
                    src = self.stages[s][j]
                    for name in ("conv1", "conv2"):
                        _copy_conv(getattr(block, name), getattr(src, name))
                    for name in ("bn1", "bn2"):
                        _copy_bn(getattr(block, name), getattr(src, name))
                    if block.shortcut is not None:
                        _copy_conv(block.shortcut[0], src.shortcut[0])
                        _copy_bn(block.shortcut[1], src.shortcut[1])
                    block.act.load_state_dict(src.act.state_dict())
            static.fc.weight.copy_(self.fc.weight[:, : static.fc.in_features])
            static.fc.bias.copy_(self.fc.bias)
        return static.train(self.training)


def _copy_conv(dst: nn.Conv2d, src: nn.Conv2d) -> None:
    dst.weight.copy_(src.weight[: dst.out_channels, : dst.in_channels])


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
    c = dst.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[:c])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
    dst.momentum, dst.eps = src.momentum, src.eps


def segment_keys(arch: ResNetArch) -> list[tuple]:
    """The forward-order layers of ``arch`` as hashable keys: ``("stem", width)``, then
    ``(stage, block, mid, out)`` for every block. Archs sorted by these keys put those that
    share the most leading layers next to each other."""
    keys: list[tuple] = [("stem", arch.stem_channels)]
    for s, widths in enumerate(arch.block_channels()):
        for j, (mid, out) in enumerate(widths):
            keys.append((s, j, mid, out))
    return keys

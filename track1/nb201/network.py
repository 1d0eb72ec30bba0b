"""NAS-Bench-201 operations, cell and standalone network (docs/REFERENCE.md §6).

Layout (Dong & Yang, ICLR 2020): conv3x3 stem + BN, three stages of ``N`` cells at
``C``, ``2C``, ``4C`` channels joined by residual reduction blocks, then BN-ReLU,
global pooling and a linear classifier. A cell is a 4-node DAG; node ``i`` is the sum
of one op applied to each earlier node, and node 3 is the cell's output.

Module names are shared with ``NB201Supernet`` except inside a cell edge, so weights
copy between them by name (see ``NB201Supernet.extract``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# OPS: candidate ops in arch-tuple index order; EDGES: (to_node, from_node) of the 6 edges
from track1.nb201.opnames import EDGES, OPS

NONE, SKIP, POOL = OPS.index("none"), OPS.index("skip_connect"), OPS.index("avg_pool_3x3")


class ReLUConvBN(nn.Module):
    """ReLU -> conv -> BN; the ReLU is not in-place because a node feeds several edges.
    ``affine=False`` is the authors' one-shot setting (BN without gamma and beta)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                                nn.BatchNorm2d(c_out, affine=affine))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` op. Cells skip it when summing; calling it gives zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int, affine: bool = True) -> nn.Module:
    """One candidate op at ``channels`` in and out (stride 1: cells never reduce)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0, affine)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1, affine)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}; choose from {list(OPS)}")


def sum_nodes(x: torch.Tensor, ops: Sequence[int], apply) -> torch.Tensor:
    """Run a cell's DAG: ``apply(edge, tensor)`` runs edge ``edge``'s op. ``none`` edges
    are skipped (not multiplied by zero), so a node fed only by ``none`` is zeros."""
    nodes = [x]
    for to in range(1, 4):
        total = None
        for e, (dst, src) in enumerate(EDGES):
            if dst != to or ops[e] == NONE:
                continue
            y = apply(e, nodes[src])
            total = y if total is None else total + y
        nodes.append(torch.zeros_like(x) if total is None else total)
    return nodes[3]


class Cell(nn.Module):
    """A fixed cell: one op module per edge."""

    def __init__(self, ops: Sequence[int], channels: int, affine: bool = True) -> None:
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(make_op(OPS[o], channels, affine) for o in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum_nodes(x, self.ops, lambda e, t: self.edges[e](t))


class ResBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ReLUConvBN 3x3 (first strided) plus an
    avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1, affine)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def stage_layout(C: int, N: int) -> list[tuple[str, int, int]]:
    """(kind, c_in, c_out) of every block after the stem: cells and reductions."""
    layout = []
    for s, c in enumerate((C, 2 * C, 4 * C)):
        if s:
            layout.append(("reduce", c // 2, c))
        layout += [("cell", c, c)] * N
    return layout


class NB201Body(nn.Module):
    """Everything but the cells' insides; ``make_cell(channels)`` supplies those.

    ``bn_affine=False`` drops gamma/beta from the BNs of cells and reduction blocks, and
    ``dropout`` (e.g. 0.1) acts before the classifier: both as in the RD-NAS authors'
    one-shot network (stem and last BN keep their affine parameters there too).
    """

    def __init__(self, make_cell, num_classes: int, C: int, N: int, bn_affine: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.C, self.N, self.num_classes = C, N, num_classes
        self.bn_affine, self.dropout_p = bool(bn_affine), float(dropout)
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.cells = nn.ModuleList(make_cell(c_out) if kind == "cell"
                                   else ResBlock(c_in, c_out, self.bn_affine)
                                   for kind, c_in, c_out in stage_layout(C, N))
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(self.dropout_p)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pooling feature map (what Zen-score measures)."""
        x = self.stem(x)
        for block in self.cells:
            x = block(x)
        return self.lastact(x)

    def feature_blocks(self) -> list[nn.Module]:
        """The stem and every cell or reduction block, in order: the modules whose outputs
        are the network's successive features (what AZ-NAS measures)."""
        return [self.stem, *self.cells]

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class NB201Network(NB201Body):
    """A standalone NAS-Bench-201 network of one arch (a tuple of 6 op indices)."""

    def __init__(self, arch: Sequence[int], num_classes: int = 10, C: int = 16, N: int = 5,
                 bn_affine: bool = True, dropout: float = 0.0) -> None:
        ops = tuple(arch)
        super().__init__(lambda c: Cell(ops, c, bn_affine), num_classes, C, N, bn_affine, dropout)
        self.arch = ops

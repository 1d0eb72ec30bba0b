"""Thin dynamic ops in the once-for-all manner.

Each op keeps its full-size weights and, at forward time, uses the prefix of channels
that its ``active_out_channels`` names (input channels follow the incoming tensor).
The supernet sets ``active_out_channels`` when an arch is activated; no flag is global.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from track1.ops.tiny_map_conv import DenseMatrixCache, conv2d_dense, use_dense_form


class DynamicConv2d(nn.Conv2d):
    """``nn.Conv2d`` that runs on the first ``in`` input and ``active_out_channels``
    output channels of its weight (``in`` taken from the input tensor)."""

    #: run convs on 1x1 / 2x2 maps as one matrix product (``tiny_map_conv``, same result
    #: up to float rounding); a benchmark turns it off per module to time the plain path
    tiny_map_dense: bool = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.active_out_channels = out_channels
        self.dense_cache = DenseMatrixCache()  # scoring: a subnet's chunks share one matrix

    def active_weight(self, in_channels: int) -> torch.Tensor:
        return self.weight[: self.active_out_channels, :in_channels]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.active_weight(x.shape[1])
        k, (h, w) = self.kernel_size[0], x.shape[-2:]
        if self.tiny_map_dense and use_dense_form(h, w, k, self.groups, self.dilation[0]):
            return conv2d_dense(x, weight, self.stride[0], self.padding[0], self.dense_cache)
        return F.conv2d(x, weight, None, self.stride, self.padding)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` over the first C channels, C taken from the input.

    Running statistics of the active prefix are read and (in training mode) updated
    in place; ``momentum=None`` gives the exact cumulative average, as PyTorch's own
    batch norm does.
    """

    def reset_running_stats(self) -> None:
        super().reset_running_stats()
        self._note_host_count(0)

    def _note_host_count(self, count: int) -> None:
        """Remember ``num_batches_tracked`` on the host, keyed by the buffer's storage and
        version counter: any other write to it (``load_state_dict``, a restore, ...)
        bumps the version and makes the host copy stale, so it is never trusted wrongly."""
        nbt = self.num_batches_tracked
        self._host_count = None if nbt is None else (count, nbt.data_ptr(), nbt._version)

    def _cumulative_factor(self) -> float:
        """1 / batches seen, for ``momentum=None`` (exact cumulative averaging). Reading the
        count from a CUDA buffer would synchronise the device once per BN layer and batch;
        the host copy avoids that whenever it is current (always, right after a reset)."""
        nbt = self.num_batches_tracked
        known = getattr(self, "_host_count", None)
        if known is not None and known[1:] == (nbt.data_ptr(), nbt._version - 1):
            count = known[0] + 1
        else:
            count = int(nbt)
        self._note_host_count(count)
        return 1.0 / count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = self._cumulative_factor()
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c], self.bias[:c], use_batch_stats, factor, self.eps)


class DynamicLinear(nn.Linear):
    """``nn.Linear`` over the first ``in`` input features (taken from the input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[:, : x.shape[1]], self.bias)


ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "prelu": lambda: nn.PReLU(num_parameters=1),
    "mish": lambda: nn.Mish(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
}


def make_activation(name: str) -> nn.Module:
    """The outer (post-residual) activation; the reference study swapped only this one."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth on a residual branch: in training, each sample's branch is zeroed
    with probability ``p`` and the kept ones are scaled by ``1 / (1 - p)``; identity in
    evaluation or at ``p == 0``."""
    if not training or p <= 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep

"""FLOPs proxy: conv + linear multiply-adds of one image at the input's resolution.

Counted with forward hooks from the tensors that actually flow, so it is exact for any
``nn.Module`` (a static subnet, an NB201 cell network, or a supernet with an active
arch whose convs slice their weights). BN, activations, pooling and adds count 0; on
NAS-Bench-201 this equals ``NB201Space.cost(arch)["flops"]`` and on Track 1 it equals
the ``macs`` column of ``track1.resnet48.costs``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

NAME = "flops"


def count_macs(model: nn.Module, inputs: torch.Tensor) -> int:
    """Multiply-adds of one forward of ``inputs[:1]`` (eval mode, no grad, model unchanged)."""
    total = 0

    def conv_hook(m: nn.Conv2d, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        c_in = inp[0].shape[1]
        total += out[0].numel() * (c_in // m.groups) * math.prod(m.kernel_size)

    def linear_hook(m: nn.Linear, inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * inp[0].shape[-1]

    handles = []
    modes = {m: m.training for m in model.modules()}
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    try:
        model.eval()
        with torch.no_grad():
            model(inputs[:1])
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    return total


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """More compute = predicted better (a strong baseline on both spaces)."""
    if options:
        raise TypeError(f"flops.score got unknown options {sorted(options)}")
    return float(count_macs(model, inputs))

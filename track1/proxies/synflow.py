"""SynFlow (Tanaka et al., NeurIPS 2020) as a zero-cost proxy: data-free synaptic flow.

On a copy of the model in float64: every parameter is replaced by its absolute value and
every BN becomes a fixed positive affine map (running mean 0, variance 1, eval mode), so
the network is a positive, sign-free function; R = sum of the logits of an all-ones
image; score = sum over conv / linear weights of theta * dR/dtheta. Returned as its
natural log (the raw value spans hundreds of orders of magnitude across a space; the
order, which is all a proxy gives, is the same).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from track1.proxies.grad_norm import weight_layers

NAME = "synflow"


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """Data-free: ``inputs`` give only the image shape (one all-ones image is used)."""
    if options:
        raise TypeError(f"synflow.score got unknown options {sorted(options)}")
    net = copy.deepcopy(model).to(device=inputs.device, dtype=torch.float64).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    x = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    net(x).sum().backward()
    total = 0.0
    for m in weight_layers(net):
        if m.weight.grad is not None:
            total += (m.weight.detach() * m.weight.grad).sum().item()
    return math.log(total) if total > 0 else float("-inf")

"""NASWOT (Mellor et al., ICML 2021): how differently a network at initialisation
partitions a batch of images.

Each ReLU gives every image a binary code (which units are active). The kernel
K[i, j] = sum over units of [c_i == c_j] (= c_i.c_j + (1-c_i).(1-c_j)) counts agreeing
units; score = log |det K|. Distinct codes make K well conditioned and the score
high; a network that maps all images to the same code gets -inf. Needs ``nn.ReLU``
modules (both spaces' networks use them) and real images: use a data batch.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies.borrow import borrowed

NAME = "naswot"


@torch.no_grad()
def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, train_bn: bool = True, **options: Any) -> float:
    """log|det K| over all ReLU outputs for ``inputs`` (one forward of the borrowed model;
    ``train_bn`` normalises with batch statistics, as a freshly built network does)."""
    if options:
        raise TypeError(f"naswot.score got unknown options {sorted(options)}")
    if inputs.shape[0] < 2:
        raise ValueError("naswot needs a batch of at least 2 images")
    n = inputs.shape[0]
    kernel = torch.zeros(n, n, dtype=torch.float64, device=inputs.device)

    def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        code = (out.detach().reshape(n, -1) > 0).to(torch.float64)
        kernel.add_(code @ code.t() + (1 - code) @ (1 - code).t())

    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError("naswot needs nn.ReLU modules in the model; found none")
    with borrowed(model, inputs.device, train=train_bn) as net:
        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        try:
            net(inputs)
        finally:
            for h in handles:
                h.remove()
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else float("-inf")

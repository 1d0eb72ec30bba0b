"""Params proxy: the number of trainable parameters (PyTorch's count: weights, biases,
BN affine; running statistics excluded). On a supernet it counts every candidate's
weights, so score the extracted subnet (``supernet.extract(arch)``) instead."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

NAME = "params"


def score(model: nn.Module, inputs: torch.Tensor | None = None,
          targets: torch.Tensor | None = None, *, seed: int | None = None,
          **options: Any) -> float:
    """Bigger = predicted better; ``inputs`` are not needed."""
    if options:
        raise TypeError(f"params.score got unknown options {sorted(options)}")
    return float(sum(p.numel() for p in model.parameters()))

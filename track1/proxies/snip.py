"""SNIP (Lee et al., ICLR 2019) as a zero-cost proxy: the connection sensitivity
sum |theta * dL/dtheta| over conv / linear weights on one batch, at initialisation."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies.grad_norm import sum_over_weight_grads

NAME = "snip"


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """Summed saliency |w * g| of the cross-entropy loss (train-mode BN, model copied)."""
    if options:
        raise TypeError(f"snip.score got unknown options {sorted(options)}")
    return sum_over_weight_grads(model, inputs, targets, seed, lambda w, g: (w * g).abs().sum())

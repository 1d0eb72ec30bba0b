"""SNIP (Lee et al., ICLR 2019) as a zero-cost proxy: the connection sensitivity
sum |theta * dL/dtheta| over conv / linear weights on one batch, at initialisation."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from track1.proxies.grad_norm import labels_for, scoring_copy, weight_layers

NAME = "snip"


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """Summed saliency |w * g| of the cross-entropy loss (train-mode BN, model copied)."""
    if options:
        raise TypeError(f"snip.score got unknown options {sorted(options)}")
    net = scoring_copy(model, inputs)
    y = labels_for(net, inputs, targets, seed)
    F.cross_entropy(net(inputs), y).backward()
    total = 0.0
    for m in weight_layers(net):
        if m.weight.grad is not None:
            total += (m.weight.detach() * m.weight.grad).abs().sum().item()
    return float(total)

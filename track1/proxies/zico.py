"""ZiCo (Li et al., ICLR 2023): the inverse coefficient of variation of the gradients.

The cross-entropy gradient of every conv / linear weight is taken on ``batches`` equal
parts of the batch (the authors: two batches); per weight, the mean of its absolute
values over the parts divided by their standard deviation says how consistently the
images push it. Per layer the ratios of the weights whose gradients vary (std > 0) are
summed and the log taken; the score sums the logs over layers (a layer whose sum is 0
is left out, as in the authors' code). Train-mode BN, on a copy of the model.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from track1.proxies.grad_norm import labels_for, scoring_copy, weight_layers

NAME = "zico"


def zico_of_gradients(per_layer: list[list[torch.Tensor]]) -> float:
    """The score from each layer's flattened gradients, one per part of the batch."""
    total = 0.0
    for grads in per_layer:
        if len(grads) < 2:
            continue  # one part: no spread, every std is 0 (the authors add nothing)
        g = torch.stack(grads).to(torch.float64)
        std = g.std(dim=0, unbiased=False)
        varied = std != 0
        ratio_sum = float((g.abs().mean(dim=0)[varied] / std[varied]).sum())
        if ratio_sum != 0.0:
            total += math.log(ratio_sum)
    return total


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, batches: int = 2, **options: Any) -> float:
    """ZiCo over ``batches`` equal parts of ``inputs`` (labels: ``targets``, else drawn
    from ``seed``)."""
    if options:
        raise TypeError(f"zico.score got unknown options {sorted(options)}")
    if batches < 2 or inputs.shape[0] < batches:
        raise ValueError(f"zico needs at least 2 parts of at least 1 image each: "
                         f"batches={batches}, images={inputs.shape[0]}")
    net = scoring_copy(model, inputs)
    y = labels_for(net, inputs, targets, seed)
    layers = weight_layers(net)
    per_layer: list[list[torch.Tensor]] = [[] for _ in layers]
    for xb, yb in zip(inputs.chunk(batches), y.chunk(batches)):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(xb), yb).backward()
        for grads, m in zip(per_layer, layers):
            if m.weight.grad is not None:
                grads.append(m.weight.grad.detach().flatten().clone())
    return zico_of_gradients(per_layer)

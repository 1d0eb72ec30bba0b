"""Grad-norm proxy (Abdelfattah et al., ICLR 2021): the sum over conv / linear layers
of the L2 norm of the loss gradient on one batch, at initialisation.

Also home of the helpers the gradient proxies (SNIP, GraSP, grad-norm) share: a
private copy of the model in train mode (so BN statistics, weights and ``.grad`` of the
caller's model never change) and labels (random, from ``seed``, when none are given).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn
import torch.nn.functional as F

NAME = "grad_norm"


def scoring_copy(model: nn.Module, inputs: torch.Tensor, train: bool = True) -> nn.Module:
    """A deep copy on ``inputs``' device, gradients cleared and enabled."""
    net = copy.deepcopy(model).to(inputs.device).train(train)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net


def labels_for(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None,
               seed: int | None) -> torch.Tensor:
    """``targets`` if given, else uniform random class labels drawn from ``seed``."""
    if targets is not None:
        return targets.to(inputs.device)
    with torch.no_grad():
        num_classes = net.eval()(inputs[:1]).shape[-1]
    net.train()
    g = torch.Generator().manual_seed(0 if seed is None else int(seed))
    return torch.randint(0, num_classes, (inputs.shape[0],), generator=g).to(inputs.device)


def weight_layers(net: nn.Module) -> list[nn.Module]:
    """The conv and linear layers, whose weights the gradient proxies score."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def sum_over_weight_grads(model: nn.Module, inputs: torch.Tensor,
                          targets: torch.Tensor | None, seed: int | None,
                          per_layer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """Backpropagate the cross-entropy of one batch through a scoring copy (train-mode
    BN), then sum ``per_layer(weight, grad)`` over the conv and linear layers."""
    net = scoring_copy(model, inputs)
    y = labels_for(net, inputs, targets, seed)
    F.cross_entropy(net(inputs), y).backward()
    total = 0.0
    for m in weight_layers(net):
        if m.weight.grad is not None:
            total += per_layer(m.weight.detach(), m.weight.grad).item()
    return float(total)


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, **options: Any) -> float:
    """Sum of per-layer gradient L2 norms of the cross-entropy loss (train-mode BN)."""
    if options:
        raise TypeError(f"grad_norm.score got unknown options {sorted(options)}")
    return sum_over_weight_grads(model, inputs, targets, seed, lambda w, g: g.norm())

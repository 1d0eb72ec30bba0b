"""GraSP (Wang et al., ICLR 2020) as a zero-cost proxy: -sum theta * (H g) over conv /
linear weights, where g is the loss gradient and H the Hessian, via one
Hessian-vector product (double backward). Higher = the loss's gradient flow is better
preserved, following the zero-cost-proxies convention."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from track1.proxies.grad_norm import labels_for, scoring_copy, weight_layers

NAME = "grasp"


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, temperature: float = 1.0, **options: Any) -> float:
    """One batch, train-mode BN, model copied; ``temperature`` divides the logits."""
    if options:
        raise TypeError(f"grasp.score got unknown options {sorted(options)}")
    net = scoring_copy(model, inputs)
    y = labels_for(net, inputs, targets, seed)
    layers = weight_layers(net)
    weights = [m.weight for m in layers]
    # g: the plain gradient (a constant vector); unused weights (inactive supernet ops) drop out
    grads = torch.autograd.grad(F.cross_entropy(net(inputs) / temperature, y), weights,
                                allow_unused=True)
    used = [(w, g.detach()) for w, g in zip(weights, grads) if g is not None]
    if not used:
        raise ValueError("grasp: the model has no conv/linear weight on the loss's path")
    ws = [w for w, _ in used]
    grads_f = torch.autograd.grad(F.cross_entropy(net(inputs) / temperature, y), ws,
                                  create_graph=True)
    z = sum((g * gf).sum() for (_, g), gf in zip(used, grads_f))
    hg = torch.autograd.grad(z, ws, allow_unused=True)
    total = 0.0
    for w, h in zip(ws, hg):
        if h is not None:
            total += (-w.detach() * h).sum().item()
    return float(total)

"""Zen-score (Zen-NAS, Lin et al. 2021): a data-free expressivity proxy.

Every conv / linear weight is re-drawn from N(0, 1), every BN gets gamma 1, beta 0 and
runs in train mode; with x, eps ~ N(0, 1) the score is::

    log( mean_batch sum |f(x) - f(x + gamma * eps)| ) + sum_BN log sqrt(mean(var_BN))

where f is the pre-pooling feature map (``forward_features``) and var_BN the batch
variance each BN saw in the perturbed forward (momentum 1.0 makes the running variance
equal to it, as Zen-NAS reads it). BN rescales each layer, so the second term puts back
the gain the normalisation removed. The network is deep-copied: the caller's weights are
never touched. Seeds make a score reproducible; ``zen_score`` derives one per arch.
"""
from __future__ import annotations

import copy
import hashlib
import math
from typing import Any

import torch
from torch import nn

NAME = "zen"


def arch_seed(code: str, seed: int = 0) -> int:
    """A stable 63-bit seed from an arch code (Python's ``hash`` changes per process)."""
    digest = hashlib.sha256(f"{seed}:{code}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def gaussian_init(net: nn.Module, generator: torch.Generator) -> None:
    """Weights N(0, 1) (Zen-NAS, SWAP), biases 0, BN affine 1 and 0, its running statistics
    reset to follow the next forward."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator,
                                       device=m.weight.device, dtype=m.weight.dtype))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.weight is not None:
                m.weight.fill_(1.0)
                m.bias.zero_()
            m.momentum = 1.0          # running_var := this forward's batch variance
            m.track_running_stats = True
            if m.running_var is None:
                m.running_mean = torch.zeros(m.num_features, device=m.weight.device)
                m.running_var = torch.ones(m.num_features, device=m.weight.device)
                m.num_batches_tracked = torch.tensor(0, device=m.weight.device)
            m.reset_running_stats()


@torch.no_grad()
def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, mixup_gamma: float = 1e-2, repeats: int = 1,
          **options: Any) -> float:
    """Zen-score of ``model``; ``inputs`` only give shape, dtype and device (Zen is
    data-free). ``repeats`` averages independent draws (weights, x, eps)."""
    if options:
        raise TypeError(f"zen.score got unknown options {sorted(options)}")
    return score_in_place(copy.deepcopy(model).to(inputs.device), inputs, seed=seed,
                          mixup_gamma=mixup_gamma, repeats=repeats)


@torch.no_grad()
def score_in_place(net: nn.Module, inputs: torch.Tensor, *, seed: int | None = None,
                   mixup_gamma: float = 1e-2, repeats: int = 1) -> float:
    """``score`` on ``net`` itself, which it re-initialises: for a network built only
    to be scored (no copy, and no need for the weights it was built with)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    device = inputs.device
    generator = torch.Generator(device=device)
    generator.manual_seed(0 if seed is None else int(seed))
    net = net.to(device).train()
    values = []
    for _ in range(repeats):
        gaussian_init(net, generator)
        x = torch.randn(inputs.shape, generator=generator, device=device)
        eps = torch.randn(inputs.shape, generator=generator, device=device)
        f1 = net.forward_features(x)
        f2 = net.forward_features(x + mixup_gamma * eps)
        delta = (f1 - f2).abs().flatten(1).sum(1).mean().item()
        if not delta > 0:  # the features ignore the input: the worst possible network
            values.append(-math.inf)
            continue
        bn_log = 0.0
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                var = m.running_var.mean().item()
                # A BN that saw a constant input sits on a dead branch (e.g. an NB201 edge
                # whose input node is fed only by `none`): it carries no signal to the
                # output, so it has no scale to correct for.
                if var > 0:
                    bn_log += 0.5 * math.log(var)
        values.append(math.log(delta) + bn_log)
    return float(sum(values) / len(values))


def zen_score(space: Any, arch: Any, *, batch: int = 8, resolution: int = 224, repeats: int = 1,
              residual: bool = True, seed: int = 0, num_classes: int = 10,
              device: str | torch.device = "cpu") -> float:
    """Zen-score of one arch of ``space``: a fresh ``space.build(arch)`` scored with a
    seed derived from the arch code, so the same arch always gets the same score.

    ``residual=False`` removes the shortcuts (Zen-NAS's official scoring network); it
    is passed to ``build`` only then, so spaces without that option still work.
    """
    opts = {} if residual else {"residual": False}
    net = space.build(arch, num_classes=num_classes, **opts)
    inputs = torch.empty(batch, 3, resolution, resolution, device=device)
    return score_in_place(net, inputs, seed=arch_seed(space.encode(arch), seed), repeats=repeats)


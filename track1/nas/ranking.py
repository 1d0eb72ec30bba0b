"""Pair and group losses that distil a teacher's ranking into the supernet.

Convention: ``la``, ``lb`` are a subnet's cross-entropy on one batch (lower = better);
``pa``, ``pb`` are the teacher's prior scores (higher = predicted better, as every
proxy in ``track1.proxies`` returns).

- ``hinge_pair_loss``: the PGONAS reference. Only ``b`` receives gradient: it is pushed
  below ``a``'s (detached) loss when the teacher prefers ``b``, above it otherwise.
- ``margin_ranking_loss``: RD-NAS eq. 3, ``max(0, m - (L_worse - L_better))``, with a
  margin that grows with the pair's distance, ``m = margin + per_distance * d(a, b)``:
  far-apart subnets should differ more in loss than near neighbours.
- ``diff_kendall``: ParZC's differentiable Kendall tau over a group of K subnets.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hinge_pair_loss(la: torch.Tensor, lb: torch.Tensor, pa: float, pb: float) -> torch.Tensor:
    """``relu(Lb - La.detach())`` when P(a) < P(b), else ``relu(La.detach() - Lb)``."""
    if pa < pb:
        return F.relu(lb - la.detach())
    return F.relu(la.detach() - lb)


def pair_margin(distance: float, margin: float = 0.0, per_distance: float = 0.0) -> float:
    """The RD-NAS margin for a pair at ``distance``: grows linearly with it."""
    return float(margin + per_distance * distance)


def margin_ranking_loss(la: torch.Tensor, lb: torch.Tensor, pa: float, pb: float,
                        margin: float = 0.0) -> torch.Tensor:
    """``max(0, margin - (L_worse - L_better))`` where the teacher decides which of the
    pair is better; a tie in the teacher gives zero loss (no order to transfer)."""
    if pa == pb:
        return (la + lb) * 0.0
    better, worse = (lb, la) if pb > pa else (la, lb)
    return F.relu(margin - (worse - better))


def diff_kendall(x: torch.Tensor, y: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Differentiable Kendall tau of predictions ``x`` against teacher scores ``y``:
    mean over pairs i < j of ``tanh(alpha dx / 2) * tanh(alpha dy / 2)``, in (-1, 1).

    ``y`` is standardised first (divided by its standard deviation) so ``alpha`` means
    the same whether the teacher counts FLOPs in billions or Zen-scores in tens.
    """
    x = x.flatten()
    y = torch.as_tensor(y, dtype=x.dtype, device=x.device).flatten()
    if x.numel() != y.numel() or x.numel() < 2:
        raise ValueError("diff_kendall needs x and y of the same length >= 2")
    if not torch.isfinite(y).all():  # e.g. Zen-score -inf for a dead net: keep the order only
        y = y.argsort().argsort().to(x.dtype)
    std = y.std()
    if std > 0:
        y = (y - y.mean()) / std
    i, j = torch.triu_indices(x.numel(), x.numel(), offset=1, device=x.device)
    return (torch.tanh(alpha * (x[i] - x[j]) / 2) * torch.tanh(alpha * (y[i] - y[j]) / 2)).mean()


def diff_kendall_loss(losses: torch.Tensor, priors, alpha: float = 0.5) -> torch.Tensor:
    """Minimise ``-DiffKendall(-CE, prior)``: subnets the teacher prefers should have
    lower cross-entropy."""
    return -diff_kendall(-losses, priors, alpha)

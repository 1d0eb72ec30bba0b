"""MeCo (Jiang et al., NeurIPS 2023): the minimum eigenvalue of the correlation of
feature maps, from one image and one forward pass.

For every module of the network, the output for one image (C x H x W) is read as C
channels of H*W observations; their Pearson correlation matrix (C x C) has a smallest
eigenvalue in [0, 1], near 0 when channels are collinear and larger when they are not.
The score sums it over every module, as the authors' NAS-Bench-201 protocol does (a
forward hook on every named module, containers included, on a network in train mode;
undefined correlations, from a constant channel, count as 0). Outputs without spatial
extent (logits, pooled maps) give a correlation of single observations, which the
authors' code turns into an all-zero matrix: they add 0 and are skipped here.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from track1.proxies.borrow import borrowed

NAME = "meco"


def min_eig_of_correlation(feature: torch.Tensor) -> float:
    """Smallest eigenvalue of the channel correlation of one image's feature map
    (C x ...): NaN entries (a constant channel) set to 0, as the authors do.

    With n observations per channel the centred channels span at most n - 1 dimensions,
    so when C > n - 1 the correlation is singular and its smallest eigenvalue is 0
    exactly; that is returned without the C x C eigendecomposition (which gives the same
    0 up to rounding, about 1e-13, and is most of MeCo's cost on a deep network at low
    resolution: 512 channels over 2 x 2 positions)."""
    rows = feature.reshape(feature.shape[0], -1)
    if rows.shape[0] > rows.shape[1] - 1:
        return 0.0
    rows = rows.to(torch.float64)
    corr = torch.corrcoef(rows)
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def first_image_map(output: torch.Tensor) -> torch.Tensor | None:
    """The first image's C x H x W map of a B x C x H x W output; None where there is one
    observation per channel (logits, pooled maps), which the authors' code turns into an
    all-zero correlation (it adds 0)."""
    if output.dim() < 4 or output.shape[2] * output.shape[3] < 2:
        return None
    return output[0].detach()


def first_image_min_eig(output: torch.Tensor) -> float:
    """``min_eig_of_correlation`` of the first image's map in a B x C x H x W output (0
    where it has no spatial extent)."""
    feature = first_image_map(output)
    return 0.0 if feature is None else min_eig_of_correlation(feature)


def sum_over_modules(model: nn.Module, inputs: torch.Tensor,
                     term: Callable[[torch.Tensor], float], *, images: int = 1,
                     train_bn: bool = True, name: str = NAME) -> float:
    """``term`` of the first image's map (``first_image_map``) of every module's output,
    summed: a forward hook on every module of ``model`` (containers included, as the
    authors hook every named module), fed ``inputs[:images]``; the model is borrowed
    (``track1.proxies.borrow``), not copied, and comes back as it was."""
    if images < 1:
        raise ValueError(f"{name} needs at least 1 image, got images={images}")
    total = [0.0]

    def hook(module: nn.Module, inp: tuple, out: Any) -> None:
        t = out[0] if isinstance(out, (tuple, list)) else out
        if isinstance(t, torch.Tensor):
            feature = first_image_map(t)
            if feature is not None:
                total[0] += term(feature)

    with borrowed(model, inputs.device, train=train_bn) as net:
        handles = [m.register_forward_hook(hook) for m in net.modules()]
        try:
            net(inputs[:images])
        except ValueError as e:
            if "more than 1 value per channel" not in str(e):
                raise
            raise ValueError(f"{name} runs {images} image(s) through train-mode BN, and at "
                             f"{tuple(inputs.shape[-2:])} px a feature map shrinks to 1x1: "
                             f"give larger images (or images > 1)") from None
        finally:
            for h in handles:
                h.remove()
    return float(total[0])


@torch.no_grad()
def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, images: int = 1, train_bn: bool = True,
          **options: Any) -> float:
    """Sum over modules of the minimum eigenvalue of the channel correlation of the
    first image's output; the forward pass sees ``inputs[:images]`` (the authors: 1)."""
    if options:
        raise TypeError(f"meco.score got unknown options {sorted(options)}")
    return sum_over_modules(model, inputs, min_eig_of_correlation, images=images,
                            train_bn=train_bn)

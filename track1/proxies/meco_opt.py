"""MeCo_opt (Jiang et al., NeurIPS 2023): MeCo on a sample of each module's channels.

The authors' cheaper variant: per module, the smallest eigenvalue of the correlation of
``channels`` (8) channels drawn at random from the first image's map, scaled by C / 8,
summed over modules (the rest as ``meco``: one image, train mode, every module hooked).

Beyond its cost, it sees layers that MeCo cannot: with n positions per channel, MeCo's
C x C correlation is singular whenever C > n - 1 and adds exactly 0, so on a Track 1
subnet at 64 px only the stem and the first stage count (the later stages have 112-512
channels over 8 x 8 to 2 x 2 positions); 8 channels need only 9 positions. The draws come
from ``seed`` (the authors draw unseeded), in the order the modules run; a module with
at most ``channels`` channels uses them all, unscaled (MeCo's own term).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from track1.proxies.meco import min_eig_of_correlation, sum_over_modules

NAME = "meco_opt"


@torch.no_grad()
def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, images: int = 1, channels: int = 8, train_bn: bool = True,
          **options: Any) -> float:
    """Sum over modules of C / ``channels`` times the smallest eigenvalue of the
    correlation of ``channels`` channels of the first image's map, drawn from ``seed``."""
    if options:
        raise TypeError(f"meco_opt.score got unknown options {sorted(options)}")
    if channels < 2:
        raise ValueError(f"meco_opt needs at least 2 channels to correlate, got {channels}")
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    def term(feature: torch.Tensor) -> float:
        c = feature.shape[0]
        if c <= channels:
            return min_eig_of_correlation(feature)
        drawn = torch.randperm(c, generator=generator)[:channels].to(feature.device)
        return min_eig_of_correlation(feature[drawn]) * c / channels

    return sum_over_modules(model, inputs, term, images=images, train_bn=train_bn, name=NAME)

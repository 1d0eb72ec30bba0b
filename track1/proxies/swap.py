"""SWAP (Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS",
ICLR 2024): how many distinct ways the units of a network at initialisation split a batch
of images.

NASWOT looks at each image's code over the units; SWAP turns the matrix around. Every
unit of every ReLU (each channel at each position) gives the batch a pattern: which of
the N images make it fire. The score is the number of distinct patterns over all units
of all ReLUs fed a 4-D map: a network whose units respond to the images in many
different ways is more expressive. The paper's regularised form multiplies by
exp(-(P - mu)^2 / sigma), P the parameters in thousands (``mu``, ``sigma``: off unless
both are given), which steers towards a model size; the authors report Spearman 0.90 for
it on NAS-Bench-201 CIFAR-100 with mu and sigma chosen per space. The authors' protocol
(their correlation script): 16 training images, the weights drawn N(0, 1) afresh
(``gaussian``) for each of 32 forwards (``repeats``), the mean count; BN on batch
statistics.

A pattern of N <= 62 bits is one integer; longer ones are several (``pack``), so the
distinct count is a ``torch.unique`` over integers, not over a million-by-N matrix.
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from track1.proxies.zen import gaussian_init

NAME = "swap"
#: bits per packed word (below 63, so every word is a non-negative int64)
WORD_BITS = 62


def pack(bits: torch.Tensor) -> torch.Tensor:
    """Rows of booleans ``(F, N)`` as ``(F, ceil(N / 62))`` int64 words, equal rows to
    equal words and different rows to different words."""
    f, n = bits.shape
    words = []
    for start in range(0, n, WORD_BITS):
        chunk = bits[:, start:start + WORD_BITS].to(torch.int64)
        weights = 2 ** torch.arange(chunk.shape[1], device=bits.device, dtype=torch.int64)
        words.append((chunk * weights).sum(dim=1))
    return torch.stack(words, dim=1) if words else torch.zeros(f, 0, dtype=torch.int64)


def distinct_rows(packed: torch.Tensor) -> int:
    """The number of distinct rows of a packed pattern matrix."""
    if packed.shape[1] == 1:
        return int(torch.unique(packed[:, 0]).numel())
    return int(torch.unique(packed, dim=0).shape[0])


@torch.no_grad()
def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, train_bn: bool = True, repeats: int = 32,
          gaussian: bool = True, mu: float | None = None, sigma: float | None = None,
          **options: Any) -> float:
    """Distinct sample-wise activation patterns over every ReLU output for ``inputs``, the
    mean over ``repeats`` forwards of a model copy, its weights drawn N(0, 1) from
    ``seed`` before each (``gaussian``; else the model's own weights, once); ``train_bn``
    normalises with batch statistics, as a freshly built network does. Times the size
    factor when ``mu`` and ``sigma`` are given."""
    if options:
        raise TypeError(f"swap.score got unknown options {sorted(options)}")
    if inputs.shape[0] < 2:
        raise ValueError("swap needs a batch of at least 2 images")
    if repeats < 1:
        raise ValueError(f"swap: repeats must be >= 1, got {repeats}")
    if (mu is None) != (sigma is None) or (sigma is not None and sigma <= 0):
        raise ValueError("swap: give both mu and sigma (> 0) for the size factor, or neither")
    net = copy.deepcopy(model).to(inputs.device).train(train_bn)
    n = inputs.shape[0]
    patterns: list[torch.Tensor] = []

    def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if out.dim() == 4:
            patterns.append(pack((out.detach().reshape(n, -1) > 0).t()))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError("swap needs nn.ReLU modules in the model; found none")
    generator = torch.Generator(device=inputs.device).manual_seed(0 if seed is None else seed)
    counts = []
    try:
        for _ in range(repeats if gaussian else 1):
            if gaussian:
                gaussian_init(net, generator)
            patterns.clear()
            net(inputs)
            counts.append(distinct_rows(torch.cat(patterns)) if patterns else 0)
    finally:
        for h in handles:
            h.remove()
    count = sum(counts) / len(counts)
    if mu is None:
        return float(count)
    kparams = sum(p.numel() for p in model.parameters()) / 1e3
    return float(count * math.exp(-((kparams - mu) ** 2) / sigma))

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
distinct count is a ``torch.unique`` over integers, not over a million-by-N matrix. Up to
``BITMAP_MAX_IMAGES`` images (the authors' 16 among them) there are at most 2^N patterns,
so each ReLU's codes are marked in a table of 2^N flags as the forward runs and the count
is the flags set (``PatternCounter``): no sort over millions of units, and no patterns
held until the forward ends. The two ways count the same.

The count cannot exceed 2^N, and a network has more units than that (a NAS-Bench-201
network 0.2-0.6 million at 32 px, a Track 1 subnet 0.2-0.3 million at 64 px): on the
fixed 200 NAS-Bench-201 archs at 16 images the median count is 70% of 65,536 and the
highest 99.4%; with 8 images every Track 1 subnet scores 256. A batch whose every
re-initialisation reaches the ceiling tells networks apart by nothing, so ``score`` warns.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from torch import nn

from track1.proxies.zen import gaussian_init

NAME = "swap"
#: bits per packed word (below 63, so every word is a non-negative int64)
WORD_BITS = 62
#: batches of at most this many images count their patterns in a table of 2^N flags
BITMAP_MAX_IMAGES = 20


def codes(fire: torch.Tensor) -> torch.Tensor:
    """Columns of booleans ``(k, F)``, k <= 62, as ``F`` int64 codes (bit i: row i).
    Integer adds row by row: exact on every device (a float matmul would round under
    TF32) and about 10x faster than a weighted sum over the short axis."""
    if fire.shape[0] > WORD_BITS:
        raise ValueError(f"codes: at most {WORD_BITS} rows fit a word, got {fire.shape[0]}")
    out = torch.zeros(fire.shape[1], dtype=torch.int64, device=fire.device)
    for i in range(fire.shape[0]):
        out.add_(fire[i], alpha=1 << i)
    return out


def pack(bits: torch.Tensor) -> torch.Tensor:
    """Rows of booleans ``(F, N)`` as ``(F, ceil(N / 62))`` int64 words, equal rows to
    equal words and different rows to different words."""
    f, n = bits.shape
    fire = bits.t()
    words = [codes(fire[start:start + WORD_BITS]) for start in range(0, n, WORD_BITS)]
    return torch.stack(words, dim=1) if words else torch.zeros(f, 0, dtype=torch.int64)


def distinct_rows(packed: torch.Tensor) -> int:
    """The number of distinct rows of a packed pattern matrix."""
    if packed.shape[1] == 1:
        return int(torch.unique(packed[:, 0]).numel())
    return int(torch.unique(packed, dim=0).shape[0])


class PatternCounter:
    """Distinct firing patterns of a batch of ``n`` images over the units added to it.

    ``add`` takes a layer's ``(n, units)`` firing matrix. Up to ``BITMAP_MAX_IMAGES``
    images each unit's pattern becomes its integer code (bit i: image i fired), marked in
    a table of 2^n flags; beyond, the packed patterns are kept and counted by
    ``torch.unique`` at the end (``count``)."""

    def __init__(self, n: int, device: torch.device | str = "cpu", *,
                 bitmap_max: int | None = None) -> None:
        self.n = n
        self.bitmap = n <= (BITMAP_MAX_IMAGES if bitmap_max is None else bitmap_max)
        if self.bitmap:
            self.seen = torch.zeros(2 ** n, dtype=torch.bool, device=device)
        else:
            self.packed: list[torch.Tensor] = []

    def add(self, fire: torch.Tensor) -> None:
        """One layer's ``(n, units)`` booleans: which images fire each unit."""
        if self.bitmap:
            self.seen.index_fill_(0, codes(fire), True)
        else:
            self.packed.append(pack(fire.t()))

    def reset(self) -> None:
        """Forget every pattern added (the next forward counts afresh)."""
        if self.bitmap:
            self.seen.zero_()
        else:
            self.packed.clear()

    def count(self) -> int:
        """The number of distinct patterns added since the start or the last ``reset``."""
        if self.bitmap:
            return int(self.seen.sum())
        return distinct_rows(torch.cat(self.packed)) if self.packed else 0


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
    counter = PatternCounter(n, inputs.device)

    def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        if out.dim() == 4:
            counter.add(out.detach().reshape(n, -1) > 0)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    if not handles:
        raise ValueError("swap needs nn.ReLU modules in the model; found none")
    generator = torch.Generator(device=inputs.device).manual_seed(0 if seed is None else seed)
    counts = []
    try:
        for _ in range(repeats if gaussian else 1):
            if gaussian:
                gaussian_init(net, generator)
            counter.reset()
            net(inputs)
            counts.append(counter.count())
    finally:
        for h in handles:
            h.remove()
    if min(counts) == 2 ** n:
        warnings.warn(f"swap: every count reached its ceiling 2^{n} = {2 ** n} ({n} images): "
                      f"networks with more units than that all score the same; give SWAP "
                      f"more images", RuntimeWarning, stacklevel=3)
    count = sum(counts) / len(counts)
    if mu is None:
        return float(count)
    kparams = sum(p.numel() for p in model.parameters()) / 1e3
    return float(count * math.exp(-((kparams - mu) ** 2) / sigma))

"""Batch-norm handling when scoring subnets of a weight-sharing supernet.

Why it matters: the supernet's stored running statistics were accumulated over many
different subnets, so they are wrong for any one sliced subnet. Three modes:

- ``recalibrate``: every BN's running statistics become the statistics of its inputs
  over the whole calibration set, as one train-mode forward of the set as a single batch
  would leave them (``recalibrate`` below), then the subnet is evaluated in eval mode.
  Identical calibration tensors for every subnet keep calibration noise common to all
  subnets, which is what a ranking needs (docs/REFERENCE.md §7).
- ``batch``: BN in train mode on each evaluation batch (batch statistics), stored
  statistics untouched. Cheapest; results depend on the evaluation batch size and on
  what a batch holds (the scorers' images are in a seeded random order, so a batch is a
  random sample of classes).
- ``stored``: plain eval mode with the supernet's stored statistics.

``PreserveBN`` restores the supernet's stored buffers, momenta and train/eval flags
afterwards, so scoring never changes the model it was given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

# defined in the torch-free defaults module (the CLI's help text reads them there)
from track1.scoring.modes import BN_MODES, DEFAULT_BN_MODE  # noqa: F401


def check_bn_mode(mode: str) -> str:
    if mode not in BN_MODES:
        raise ValueError(f"unknown BN mode {mode!r}; choose from {list(BN_MODES)}")
    return mode


def bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class PreserveBN:
    """Context manager: snapshot BN buffers/momenta and module train flags, restore on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> "PreserveBN":
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.saved = []
        for bn in bn_layers(self.model):
            buffers = {name: getattr(bn, name).detach().clone()
                       for name in ("running_mean", "running_var", "num_batches_tracked")
                       if getattr(bn, name, None) is not None}
            self.saved.append((bn, bn.momentum, buffers))
        return self

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for bn, momentum, buffers in self.saved:
                bn.momentum = momentum
                for name, value in buffers.items():
                    getattr(bn, name).copy_(value)
        for m, training in self.flags:
            m.training = training


def reset_bn_statistics(model: nn.Module) -> None:
    """Zero mean, unit variance, no batches seen, and exact cumulative averaging."""
    for bn in bn_layers(model):
        if bn.track_running_stats:
            bn.reset_running_stats()
            bn.momentum = None


def set_bn_train(model: nn.Module, bn_train: bool) -> None:
    """Eval mode everywhere, except BN layers in train mode when ``bn_train``."""
    model.eval()
    if bn_train:
        for bn in bn_layers(model):
            bn.train()


#: refinement sweeps stop once no statistic moves by more than this (relative: a mean by
#: this share of its standard deviation, a variance by this share of itself)
CALIB_TOL = 1e-4


def sweep_limit(bns_run: int) -> int:
    """Sweeps after which chunked calibration is exact whatever the data: the k-th BN in
    depth is exact after k sweeps, and no BN is deeper than the number of BNs that ran
    (one more sweep shows it). Shuffled chunks of a few hundred images converge in 2-3."""
    return bns_run + 1


@dataclass
class Calibration:
    """What one re-calibration did. ``change``: the largest relative move of any BN
    statistic in the last sweep (0 for one chunk, which is exact in one sweep)."""

    chunks: int
    sweeps: int
    change: float
    converged: bool
    outputs: list | None = None     # the last sweep's outputs, when asked for


def merge_moments(n: "int | torch.Tensor", mean: torch.Tensor, m2: torch.Tensor,
                  chunk_mean: torch.Tensor, chunk_var: torch.Tensor, count: int
                  ) -> tuple["int | torch.Tensor", torch.Tensor, torch.Tensor]:
    """Count, mean and sum of squared deviations of values seen so far (``n``, ``mean``,
    ``m2``, float64) merged with a chunk of ``count`` values of mean ``chunk_mean`` and
    biased variance ``chunk_var``: Chan et al.'s exact pairwise update. ``n`` may be a
    tensor broadcasting against the means (per-subnet counts)."""
    total = n + count
    delta = chunk_mean.double() - mean
    return (total, mean + delta * (count / total),
            m2 + chunk_var.double() * count + delta * delta * (n * count / total))


class PooledStats:
    """Per-channel count, mean and sum of squared deviations of one BN's inputs over
    every chunk seen, merged exactly (Chan et al.'s parallel formula, float64): the
    statistics of all the chunks' values taken together, whatever their sizes. Averaging
    each chunk's mean and variance instead weights a 12-image chunk like a 500-image one
    and drops the spread between chunk means from the variance."""

    __slots__ = ("n", "mean", "m2")

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, mean: torch.Tensor, var_biased: torch.Tensor, count: int) -> None:
        if self.mean is None:
            self.n, self.mean, self.m2 = count, mean.double(), var_biased.double() * count
            return
        self.n, self.mean, self.m2 = merge_moments(self.n, self.mean, self.m2, mean,
                                                   var_biased, count)

    def var(self, unbiased: bool) -> torch.Tensor:
        return self.m2 / (max(self.n - 1, 1) if unbiased else max(self.n, 1))


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0] + list(range(2, x.dim()))


def _normalise(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
               bn: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """``bn`` applied with the given per-channel statistics (its first C channels, as a
    dynamic BN slices them), in ``x``'s dtype and layout."""
    c = x.shape[1]
    scale = torch.rsqrt(var.float() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight[:c].float()
    shift = -mean.float() * scale
    if bn.bias is not None:
        shift = shift + bn.bias[:c].float()
    view = (1, c) + (1,) * (x.dim() - 2)
    return torch.addcmul(shift.to(x.dtype).view(view), x, scale.to(x.dtype).view(view))


class _Calibrating:
    """Stands in for every tracked BN's forward during calibration: each call adds its
    input's statistics to the BN's ``PooledStats`` and normalises with the statistics of
    the previous sweep (``fixed``), or with the chunk's own in the first sweep (what a
    train-mode BN does)."""

    def __init__(self, bns: list) -> None:
        self.bns = bns
        self.pooled: dict[int, PooledStats] = {}
        self.fixed: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __enter__(self) -> "_Calibrating":
        for bn in self.bns:
            bn.forward = (lambda x, bn=bn: self._forward(bn, x))
        return self

    def __exit__(self, *exc) -> None:
        for bn in self.bns:
            bn.__dict__.pop("forward", None)

    def _forward(self, bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        xs = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        var_b, mean = torch.var_mean(xs, dim=_reduce_dims(x), unbiased=False)
        self.pooled.setdefault(id(bn), PooledStats()).add(mean, var_b, x.numel() // x.shape[1])
        if id(bn) in self.fixed:
            mean, var_b = self.fixed[id(bn)]
        return _normalise(x, mean, var_b, bn)

    def movement(self) -> float:
        """How far this sweep's statistics moved from the previous sweep's (``fixed``):
        the largest change of a mean relative to its standard deviation, or of a variance
        relative to itself (inf after the first sweep)."""
        moved = []
        for key, p in self.pooled.items():
            if key not in self.fixed:
                return float("inf")
            old_mean, old_var = (t.double() for t in self.fixed[key])
            denom = old_var + 1e-5
            moved.append(torch.maximum(((p.mean - old_mean).abs() / denom.sqrt()).max(),
                                       ((p.var(unbiased=False) - old_var).abs() / denom).max()))
        return float(torch.stack(moved).max().cpu()) if moved else 0.0

    def fix(self) -> None:
        """This sweep's statistics normalise the next sweep."""
        self.fixed = {key: (p.mean.float(), p.var(unbiased=False).float())
                      for key, p in self.pooled.items()}
        self.pooled = {}

    def write(self) -> None:
        """The final statistics into the BNs' running buffers (unbiased variance, as a
        train-mode BN stores it)."""
        with torch.no_grad():
            for bn in self.bns:
                p = self.pooled.get(id(bn))
                if p is None or p.mean is None:
                    continue
                c = p.mean.numel()
                bn.running_mean[:c].copy_(p.mean)
                bn.running_var[:c].copy_(p.var(unbiased=True))
                if bn.num_batches_tracked is not None:
                    bn.num_batches_tracked.fill_(1)


def recalibrate(model: nn.Module,
                batches: Sequence[torch.Tensor] | Callable[[], Iterable[torch.Tensor]],
                forward: Callable[[torch.Tensor], object] | None = None, *,
                max_sweeps: int | None = None, tol: float = CALIB_TOL,
                collect: bool = False) -> Calibration:
    """Set every tracked BN's running statistics to those of its inputs over the whole
    calibration set, as ONE train-mode forward of the set as a single batch leaves them
    (momentum None): the mean, and the unbiased variance including the spread between
    chunks. Then the model is left in eval mode. Call inside ``PreserveBN`` to keep the
    stored statistics of the supernet.

    ``batches``: the calibration chunks (already normalised model inputs), as a sequence
    or a callable that yields them afresh (called once per sweep). One chunk is exact in
    one sweep. With several, a BN's input depends on how the BNs before it normalised:
    the first sweep normalises each chunk by its own statistics, each further sweep by
    the whole set's statistics from the sweep before, so the statistics of the k-th BN
    in depth are exact after k sweeps; the sweeps stop once no statistic moves by more
    than ``tol`` (``Calibration.converged``), after ``max_sweeps`` at most (default
    ``sweep_limit``: exact).
    ``collect`` keeps the last sweep's outputs (a segment's outputs for the next one)."""
    chunks = batches if callable(batches) else (lambda: batches)
    bns = [bn for bn in bn_layers(model) if bn.track_running_stats]
    reset_bn_statistics(model)
    model.eval()
    forward = forward or model
    sweeps, n_chunks, change = 0, 0, float("inf")
    outputs: list | None = None
    with torch.no_grad(), _Calibrating(bns) as calib:
        while True:
            outputs = [] if collect else None
            n_chunks = 0
            for x in chunks():
                y = forward(x)
                n_chunks += 1
                if outputs is not None:
                    outputs.append(y)
            sweeps += 1
            if n_chunks <= 1:
                break
            change = calib.movement()
            if change <= tol or sweeps >= (max_sweeps or sweep_limit(len(calib.pooled))):
                break
            calib.fix()
        calib.write()
    model.eval()
    return Calibration(chunks=n_chunks, sweeps=sweeps,
                       change=0.0 if n_chunks <= 1 else change,
                       converged=n_chunks <= 1 or change <= tol, outputs=outputs)

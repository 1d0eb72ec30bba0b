"""Batch-norm handling when scoring subnets of a weight-sharing supernet.

Why it matters: the supernet's stored running statistics were accumulated over many
different subnets, so they are wrong for any one sliced subnet. Three modes:

- ``recalibrate``: reset every BN's running statistics, set ``momentum=None`` (exact
  cumulative average over the calibration batches), forward the SAME fixed
  calibration tensors in train mode without gradients, then evaluate in eval mode.
  Identical calibration tensors for every subnet keep calibration noise common to all
  subnets, which is what a ranking needs (docs/REFERENCE.md §7).
- ``batch``: BN in train mode on each evaluation batch (batch statistics), stored
  statistics untouched. Cheapest; results depend on the evaluation batch size.
- ``stored``: plain eval mode with the supernet's stored statistics.

``PreserveBN`` restores the supernet's stored buffers, momenta and train/eval flags
afterwards, so scoring never changes the model it was given.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

# defined in the torch-free defaults module (the CLI's help text reads them there)
from track1.evaluate.defaults import BN_MODES, DEFAULT_BN_MODE  # noqa: F401


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


def recalibrate(model: nn.Module, batches: Iterable[torch.Tensor],
                forward: Callable[[torch.Tensor], object] | None = None) -> None:
    """Re-estimate every BN's running statistics on ``batches`` (already normalised
    model inputs), then leave the model in eval mode. Call inside ``PreserveBN`` to
    keep the stored statistics of the supernet."""
    reset_bn_statistics(model)
    set_bn_train(model, True)
    forward = forward or model
    with torch.no_grad():
        for x in batches:
            forward(x)
    model.eval()

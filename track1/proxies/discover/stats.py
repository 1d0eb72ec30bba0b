"""Per-layer statistics of a network at initialisation: the alphabet of discovered
proxies (``track1.proxies.discover``).

One forward and one backward of the cross-entropy on a batch (train-mode BN, on a copy
of the model); for every conv / linear layer, from its weight W, weight gradient G,
output A and output gradient D: five summaries of each tensor, five products of pairs,
two spectral views of A and four shape numbers. ``layer_stats`` returns a layers x
``len(STAT_NAMES)`` float64 array in the network's module order.

One probe is one initialisation and one batch; its statistics are noisy (a blend's scores
of one arch under two probes agree at Kendall 0.89 across archs). ``probe_stats`` averages
``probes`` of them: probe 0 is the network as given on the first share of the images,
probe k >= 1 a copy re-initialised from ``seed + k`` on the k-th share.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from track1.proxies.az_nas import isotropy
from track1.proxies.grad_norm import labels_for, scoring_copy, weight_layers
from track1.proxies.meco import first_image_min_eig

TENSORS = ("w", "g", "a", "d")
SUMMARIES = ("mean_abs", "std", "norm", "mean", "max_abs")
PAIRS = ("wg_abs", "wg", "wg_cos", "ad_abs", "ad")
SPECTRAL = ("a_isotropy", "a_mineig")
SHAPE = ("numel", "fan_in", "channels", "spatial")
STAT_NAMES: tuple[str, ...] = (tuple(f"{t}_{s}" for t in TENSORS for s in SUMMARIES)
                               + PAIRS + SPECTRAL + SHAPE)


def _summaries(t: torch.Tensor) -> list[float]:
    t = t.detach().to(torch.float64).flatten()
    return [float(t.abs().mean()), float(t.std(unbiased=False)), float(t.norm()),
            float(t.mean()), float(t.abs().max())]


def layer_stats(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
                *, seed: int | None = None) -> np.ndarray:
    """The layers x ``STAT_NAMES`` statistics of ``model`` on one batch (the caller's
    model untouched; labels drawn from ``seed`` when ``targets`` is None)."""
    net = scoring_copy(model, inputs)
    y = labels_for(net, inputs, targets, seed)
    layers = weight_layers(net)
    outputs: dict[int, torch.Tensor] = {}

    def keep(i: int):
        def hook(module: nn.Module, inp: tuple, out: torch.Tensor) -> None:
            if out.requires_grad:
                out.retain_grad()
            outputs[i] = out
        return hook

    handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(layers)]
    try:
        F.cross_entropy(net(inputs), y).backward()
    finally:
        for h in handles:
            h.remove()
    rows = []
    for i, m in enumerate(layers):
        w = m.weight.detach()
        g = m.weight.grad if m.weight.grad is not None else torch.zeros_like(w)
        a = outputs.get(i)
        if a is None:  # a layer the forward pass never reached
            rows.append([math.nan] * len(STAT_NAMES))
            continue
        d = a.grad if a.grad is not None else torch.zeros_like(a)
        w64, g64 = w.to(torch.float64), g.detach().to(torch.float64)
        a64, d64 = a.detach().to(torch.float64), d.detach().to(torch.float64)
        cos = float(F.cosine_similarity(w64.flatten(), g64.flatten(), dim=0, eps=1e-30))
        row = (_summaries(w) + _summaries(g) + _summaries(a) + _summaries(d)
               + [float((w64 * g64).abs().sum()), float((w64 * g64).sum()), cos,
                  float((a64 * d64).abs().sum()), float((a64 * d64).sum())]
               + [isotropy(a), first_image_min_eig(a)]
               + [float(w.numel()), float(w[0].numel()), float(w.shape[0]),
                  float(a.shape[2] * a.shape[3]) if a.dim() == 4 else 1.0])
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(STAT_NAMES))


def probe_net(model: nn.Module, k: int, seed: int | None) -> nn.Module:
    """Probe ``k``'s network: ``model`` itself for probe 0; for k >= 1 a copy whose every
    module with ``reset_parameters`` is re-initialised (PyTorch's default) from
    ``seed + k`` on the CPU, under its own RNG (the global one untouched)."""
    if k == 0:
        return model
    device = next(model.parameters()).device
    net = copy.deepcopy(model).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((0 if seed is None else int(seed)) + k)
        for m in net.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    return net.to(device)


def probe_share(t: torch.Tensor | None, k: int, probes: int) -> torch.Tensor | None:
    """The ``k``-th of ``probes`` equal shares of a batch (None stays None)."""
    if t is None:
        return None
    if len(t) % probes:
        raise ValueError(f"{len(t)} probe images do not split into {probes} equal shares")
    n = len(t) // probes
    return t[k * n:(k + 1) * n]


def probe_stats(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
                *, seed: int | None = None, probes: int = 1) -> np.ndarray:
    """``layer_stats`` averaged over ``probes`` probes (``probe_net`` on ``probe_share``
    of the images)."""
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}")
    return np.mean([layer_stats(probe_net(model, k, seed), probe_share(inputs, k, probes),
                                probe_share(targets, k, probes), seed=seed)
                    for k in range(probes)], axis=0)

"""A forward pass on the caller's own network that leaves no trace: ``borrowed``.

The forward-only proxies (MeCo, MeCo_opt, NASWOT) deep-copied the network before their
one forward, so that neither the switch to train mode nor the BN running statistics a
train-mode forward updates would reach the caller. On a large network the copy costs
about as much as the forward itself (a Track 1 subnet at 64 px: 10-24 million weights
copied for a forward of one image). Under ``no_grad`` a forward changes nothing but the
modules' modes and their buffers, so ``borrowed`` lends the network itself and puts
both back afterwards: the caller gets its network back bit for bit, and the proxy sees
what the copy would have held (the same weights; train-mode BN normalises with the
batch's statistics, not the running ones it updates).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


def on_device(model: nn.Module, device: torch.device | str) -> bool:
    """Whether every parameter and buffer of ``model`` lives on ``device``."""
    want = torch.device(device)
    return all(t.device.type == want.type and (want.index is None or t.device == want)
               for t in (*model.parameters(), *model.buffers()))


@contextmanager
def borrowed(model: nn.Module, device: torch.device | str, *, train: bool) -> Iterator[nn.Module]:
    """``model`` itself in ``train`` mode under ``no_grad``, its modes and buffers put back
    on exit (also when the body raises). A model not on ``device`` is deep-copied there
    instead: moving the caller's would be a trace. The body must not change parameters."""
    if not on_device(model, device):
        with torch.no_grad():
            yield copy.deepcopy(model).to(device).train(train)
        return
    modes = [(m, m.training) for m in model.modules()]
    saved = [(m, name, b, None if b is None else b.clone())
             for m in model.modules() for name, b in m._buffers.items()]
    model.train(train)
    try:
        with torch.no_grad():
            yield model
    finally:
        with torch.no_grad():
            for m, name, b, value in saved:
                m._buffers[name] = b      # the same tensor object, should the body rebind it
                if b is not None:
                    b.copy_(value)
        for m, training in modes:
            m.training = training

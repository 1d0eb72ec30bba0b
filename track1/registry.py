"""Networks: thin dynamic ops, the elastic ResNet-48 supernet and its static export.

``build_supernet(config)`` rebuilds a supernet from the ``config`` dict stored in a
checkpoint: ``config["space"]`` names the search space and ``config["model"]`` holds the
constructor's keyword arguments (e.g. ``{"num_classes": 10, "activation": "relu"}``).
"""
from __future__ import annotations

import importlib

from torch import nn

#: space name -> "module:class" of its supernet
SUPERNETS: dict[str, str] = {
    "track1_resnet48": "track1.resnet48.supernet:ResNet48Supernet",
    "nb201": "track1.nb201.supernet:NB201Supernet",
}


def supernet_options(space: str) -> set[str] | None:
    """The keyword arguments the supernet of ``space`` accepts (its ``model:`` keys), or
    ``None`` for an unknown space (reported elsewhere)."""
    import inspect
    if space not in SUPERNETS:
        return None
    module, cls = SUPERNETS[space].split(":")
    params = inspect.signature(getattr(importlib.import_module(module), cls)).parameters
    return {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def build_supernet(config: dict) -> nn.Module:
    """A freshly initialised supernet of ``config["space"]`` built with ``config["model"]``."""
    space = config.get("space", "track1_resnet48")
    if space not in SUPERNETS:
        raise ValueError(f"unknown search space {space!r}; known: {sorted(SUPERNETS)}")
    module, cls = SUPERNETS[space].split(":")
    return getattr(importlib.import_module(module), cls)(**config.get("model", {}))

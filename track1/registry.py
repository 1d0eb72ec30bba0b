"""The registry of search spaces: the composition root that names every wing's supernet.

Generic code (trainer, evaluator) reaches a supernet only through here, by the space's
name: ``build_supernet(space, options)`` builds one (``options`` = the constructor's
keyword arguments, the config's ``model:`` section), ``load_supernet(checkpoint)`` rebuilds
the one a checkpoint holds, weights loaded.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

import torch
from torch import nn

from track1.infra.checkpoint import CheckpointError, load_checkpoint
from track1.infra.messages import clip, first_lines
from track1.nas.fewshot import FewShotSupernet

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


def build_supernet(space: str, options: dict[str, Any]) -> nn.Module:
    """A freshly initialised supernet of ``space`` built with ``options`` (its ``model:``
    section, e.g. ``{"num_classes": 10, "activation": "relu"}``)."""
    if space not in SUPERNETS:
        raise ValueError(f"unknown search space {space!r}; known: {sorted(SUPERNETS)}")
    module, cls = SUPERNETS[space].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def load_supernet(checkpoint: str | os.PathLike | dict[str, Any],
                  device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The supernet of a checkpoint (a path, or a loaded checkpoint) with its weights, in
    eval mode on ``device``, and the checkpoint's saved config. ``CheckpointError``, one
    line naming the file, when the config cannot describe a supernet or the weights do
    not fit it."""
    if isinstance(checkpoint, dict):
        ckpt, name = checkpoint, "checkpoint"
    else:
        ckpt, name = load_checkpoint(checkpoint), str(checkpoint)
    config = ckpt["config"]
    if not isinstance(config, dict):
        raise CheckpointError(f"{name}: 'config' is not a dict")
    for key, value in (("image_size", config.get("image_size", 224)),
                       ("model.num_classes", (config.get("model") or {}).get("num_classes", 1000))):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(f"{name}: its config's {key} is {clip(value)}, not a positive "
                                  "integer")
    try:
        def build() -> nn.Module:
            return build_supernet(config.get("space", "track1_resnet48"), config.get("model") or {})
        fewshot = config.get("fewshot")  # K sub-supernets of a split, one module
        net = FewShotSupernet(build, fewshot["genes"]) if fewshot else build()
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{name}: cannot rebuild the supernet from its config: {e}") from None
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(f"{name}: weights do not fit the supernet of its config "
                              f"({first_lines(e)})") from None
    return net.to(device).eval(), config


#: space name -> ("module:class" of its search space, "module:class" of its static network,
#: the plain-layer model of one arch): what an exported subnet (``track1.export``) is
#: rebuilt as, ``Static(Space().decode(code), **options)``
STATIC_MODELS: dict[str, tuple[str, str]] = {
    "track1_resnet48": ("track1.resnet48.space:ResNet48Space",
                        "track1.resnet48.static:StaticResNet"),
    "nb201": ("track1.nb201.space:NB201Space", "track1.nb201.network:NB201Network"),
}


def build_static(space: str, code: str, options: dict[str, Any]) -> nn.Module:
    """A freshly initialised static network of the arch ``code`` of ``space``, built with
    ``options`` (the static class's keyword arguments after the arch). ``ValueError`` for
    an unknown space; the space's own decode error (a ``ValueError`` naming the position
    and rule) for a bad code."""
    if space not in STATIC_MODELS:
        raise ValueError(f"unknown search space {space!r}; known: {sorted(STATIC_MODELS)}")
    space_cls, static_cls = (getattr(importlib.import_module(module), name)
                             for module, name in (p.split(":") for p in STATIC_MODELS[space]))
    return static_cls(space_cls().decode(code), **options)

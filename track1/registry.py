"""The catalogue of search spaces: the one module above the wings that knows them all,
and the pipelines' only way to a supernet.

The spaces register themselves (``track1.nas.spaces.register_space`` on their supernet
classes); this module imports the wings on first use, then serves every lookup by the
space's name: ``list_spaces()``, ``build_supernet(space, options)`` (``options`` = the
constructor's keyword arguments, the config's ``model:`` section), ``supernet_options``,
``load_supernet(checkpoint)`` (the one a checkpoint holds, weights loaded) and
``build_static(space, code, options)`` (one arch as plain layers, for ``export``).
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Mapping

import torch
from torch import nn

from track1.infra.checkpoint import CheckpointError, load_checkpoint
from track1.infra.messages import clip, first_lines
from track1.nas.fewshot import FewShotSupernet
from track1.nas.spaces import SpaceEntry, registered

#: the default space of a checkpoint whose config names none (the Track 1 supernet)
DEFAULT_SPACE = "track1_resnet48"
#: the largest image side a checkpoint may ask to be scored at (as training accepts)
MAX_IMAGE_SIDE = 2048


def _load_wings() -> None:
    """Import every wing's supernet module: importing it registers its space."""
    import track1.nb201.supernet  # noqa: F401
    import track1.resnet48.supernet  # noqa: F401


def list_spaces() -> list[str]:
    """Every registered space's name, sorted (the wings', and any registered since)."""
    _load_wings()
    return sorted(registered())


def space_entry(space: str) -> SpaceEntry:
    """The registered entry of ``space``; ``ValueError`` naming the known ones."""
    _load_wings()
    spaces = registered()
    if space not in spaces:
        raise ValueError(f"unknown search space {space!r}; known: {sorted(spaces)}")
    return spaces[space]


def supernet_defaults(space: str) -> dict[str, Any]:
    """The keyword arguments the supernet of ``space`` accepts (its ``model:`` keys) with
    their defaults (``inspect.Parameter.empty`` where there is none); empty for an unknown
    space (reported elsewhere)."""
    try:
        cls = space_entry(space).supernet
    except ValueError:
        return {}
    params = inspect.signature(cls).parameters
    return {n: p.default for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def supernet_options(space: str) -> set[str]:
    """The keyword arguments the supernet of ``space`` accepts (its ``model:`` keys)."""
    return set(supernet_defaults(space))


def build_supernet(space: str, options: dict[str, Any]) -> nn.Module:
    """A freshly initialised supernet of ``space`` built with ``options`` (its ``model:``
    section, e.g. ``{"num_classes": 10, "activation": "relu"}``)."""
    return space_entry(space).supernet(**options)


def saved_image_size(config: Mapping[str, Any]) -> Any:
    """The training image size a checkpoint's saved config names (``data.image_size``,
    or the flat ``image_size`` of configs saved before the sections), 224 if none."""
    data = config.get("data")
    if isinstance(data, Mapping):
        return data.get("image_size", 224)
    return config.get("image_size", 224)


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
    image_size = saved_image_size(config)
    for key, value in (("image_size", image_size),
                       ("model.num_classes", (config.get("model") or {}).get("num_classes", 1000))):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(f"{name}: its config's {key} is {clip(value)}, not a positive "
                                  "integer")
    if image_size > MAX_IMAGE_SIDE:
        raise CheckpointError(f"{name}: its config's image_size is {image_size}, "
                              f"above {MAX_IMAGE_SIDE} px")
    try:
        def build() -> nn.Module:
            return build_supernet(config.get("space", DEFAULT_SPACE), config.get("model") or {})
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


def build_static(space: str, code: str, options: dict[str, Any]) -> nn.Module:
    """A freshly initialised static network of the arch ``code`` of ``space``, built with
    ``options`` (the static class's keyword arguments after the arch). ``ValueError`` for
    an unknown space or one without a static form; the space's own decode error (a
    ``ValueError`` naming the position and rule) for a bad code."""
    entry = space_entry(space)
    if entry.static is None:
        raise ValueError(f"search space {space!r} has no static network to export")
    return entry.static(entry.space().decode(code), **options)

"""Checkpoints: atomic writes, safe loads, and finding the latest one.

A checkpoint is a dict with at least ``model`` (state dict) and ``config`` (the
resolved run config, a plain dict with ``num_classes``, ``activation``, ``space``, ...);
training adds ``optimizer``, ``scheduler``, ``epoch``, ``step``, ``rng``, ``sampler``.
Writes go to a temporary file in the same folder and are renamed into place, so a
crash never leaves a truncated checkpoint under the real name. Loads use
``weights_only=True``: a checkpoint cannot run code.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from track1.infra.atomic import atomic_write
from track1.infra.errors import UserError



class CheckpointError(UserError, RuntimeError):
    """A missing, corrupt, partial or incompatible checkpoint."""


def save_atomic(obj: Any, path: str | os.PathLike, exclusive: bool = False) -> Path:
    """``torch.save`` to ``path`` via a temporary file + rename (atomic on POSIX);
    ``exclusive``: never over a file that appeared meanwhile (``atomic_write``)."""
    return atomic_write(path, lambda f: torch.save(obj, f), exclusive=exclusive)


def safe_load(path: str | os.PathLike, what: str = "checkpoint",
              error: type[Exception] = CheckpointError,
              map_location: str | torch.device = "cpu") -> Any:
    """The one safe loader of every file this project writes with ``torch.save``
    (checkpoints, exported subnets): a missing file, a zip member failing its CRC check
    (``torch.load`` does not check them), anything but tensors and plain containers (no
    pickle may run code) and a truncated or foreign file are each one ``error`` line
    naming the file (``what`` says what it should have been)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}" if not path.exists() else
                    f"{what} {path} is not a file")
    damaged = _damaged_member(path)
    if damaged:
        raise error(f"{what} {path} is damaged: its member {damaged!r} fails its CRC check "
                    "(flipped bytes, or an incomplete copy)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for truncated / foreign files
        text = str(e)
        if "Weights only load failed" in text:  # torch's advice to retry unsafely: not ours
            raise error(f"refused {path}: it holds objects other than tensors and plain "
                        "containers, and loading it could run code") from None
        raise error(f"cannot read {what} {path} (corrupt or partial?): {type(e).__name__}: "
                    f"{text.splitlines()[0] if text else ''}") from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by this project (``safe_load``); one ``CheckpointError``
    line for anything else."""
    ckpt = safe_load(path, "checkpoint", CheckpointError, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path} is not a track1 checkpoint (needs 'model' and 'config')")
    return ckpt


def _damaged_member(path: Path) -> str | None:
    """The first member of a zip-format checkpoint whose stored CRC-32 does not match its
    bytes (``torch.load`` does not check them), or None. Non-zip files are left to
    ``torch.load``."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None


#: what a checkpoint holds, from its config: a supernet, few-shot parts merged into one,
#: one arch trained alone (``train-subnet``), or one part of a few-shot split
KINDS = ("supernet", "fewshot", "subnet", "part")
#: the kinds a command that scores many subnets (evaluate, search) can use
SUPERNET_KINDS = ("supernet", "fewshot")


def checkpoint_kind(config: dict) -> str:
    """The kind of a checkpoint whose saved config is ``config`` (``KINDS``)."""
    if config.get("fewshot"):
        return "fewshot"
    if config.get("subnet") is not None:
        return "subnet"
    if config.get("part") is not None:
        return "part"
    return "supernet"


def read_kind(path: Path) -> str:
    """A checkpoint file's kind: from the ``config.yaml`` the trainer writes beside it
    (cheap), else from the checkpoint itself."""
    sibling = path.with_name("config.yaml")
    if sibling.is_file():
        import yaml
        try:
            config = yaml.safe_load(sibling.read_text())
        except (OSError, yaml.YAMLError):
            config = None
        if isinstance(config, dict):
            return checkpoint_kind(config)
    return checkpoint_kind(load_checkpoint(path)["config"])


def find_latest(directory: str | os.PathLike | None = None,
                kinds: tuple[str, ...] | None = None) -> Path:
    """The most recently modified ``*.pth`` in ``directory`` (default: the home's
    ``supernet_ckpt/``; ``last.pth`` wins ties) of one of ``kinds`` (None: any). A
    stand-alone run or a few-shot part saved later never stands in for the supernet a
    scoring command needs: it is skipped, and the error names how many were."""
    from track1.infra.paths import ckpt_dir
    directory = Path(directory) if directory is not None else ckpt_dir()
    candidates = sorted(directory.glob("**/*.pth"), key=lambda p: (p.stat().st_mtime, p.name == "last.pth"))
    if not candidates:
        raise CheckpointError(f"no checkpoint (*.pth) under {directory}; train one first with "
                              "`bash run.sh train`, or pass --checkpoint PATH")
    skipped = []
    for path in reversed(candidates):
        if kinds is None:
            return path
        try:
            kind = read_kind(path)
        except CheckpointError:
            skipped.append(f"{path.name} (unreadable)")
            continue
        if kind in kinds:
            return path
        skipped.append(f"{path.relative_to(directory)} ({kind})")
    raise CheckpointError(f"no {' or '.join(kinds)} checkpoint under {directory} (skipped: "
                          f"{', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''}); "
                          "pass --checkpoint PATH")


def require_kind(path: Path, config: dict, kinds: tuple[str, ...], command: str) -> None:
    """One ``CheckpointError`` line when the checkpoint at ``path`` is not of ``kinds``."""
    kind = checkpoint_kind(config)
    if kind not in kinds:
        what = {"subnet": "one arch trained alone (train-subnet)",
                "part": "one part of a few-shot split (merge the parts with fewshot-merge)"}
        raise CheckpointError(f"{path} holds {what.get(kind, kind)}, not a supernet: {command} "
                              "scores the subnets of a supernet; pass a supernet checkpoint")

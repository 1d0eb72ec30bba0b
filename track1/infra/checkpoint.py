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


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` via a temporary file + rename (atomic on POSIX)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


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


def find_latest(directory: str | os.PathLike | None = None) -> Path:
    """The most recently modified ``*.pth`` in ``directory`` (default: the home's
    ``supernet_ckpt/``; ``last.pth`` wins ties)."""
    from track1.infra.paths import ckpt_dir
    directory = Path(directory) if directory is not None else ckpt_dir()
    candidates = sorted(directory.glob("**/*.pth"), key=lambda p: (p.stat().st_mtime, p.name == "last.pth"))
    if not candidates:
        raise CheckpointError(f"no checkpoint (*.pth) under {directory}; train one first with "
                              "`bash run.sh train`, or pass --checkpoint PATH")
    return candidates[-1]

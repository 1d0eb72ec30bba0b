"""What a resumed run needs besides its weights: the global RNG states in a
``weights_only``-loadable form, and the check that a checkpoint was trained under the
same recipe as the run resuming it."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from track1.infra.checkpoint import load_checkpoint
from track1.infra.paths import ckpt_dir
from track1.infra.sections import differing, within
from track1.train.config import TrainConfig, as_trained
from track1.train.errors import TrainError

#: config keys (dotted; a section stands for all its keys) that may change between a run
#: and its resumption: how the machine runs it, where the images are, the length
RESUMABLE_CHANGES = ("runtime", "val_gt", "data.root", "data.workers", "schedule.epochs",
                     "schedule.max_steps_per_epoch", "init.file")


def run_dir(config: TrainConfig) -> Path:
    return Path(config.runtime.ckpt_dir or ckpt_dir()) / str(config.name)


def rng_state() -> dict[str, Any]:
    """Global RNG states in a ``weights_only``-loadable form (tensors, lists, numbers)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_compatible(saved: dict, config: TrainConfig, path: Path) -> None:
    """Refuse to resume a checkpoint trained under a different recipe, naming the first
    differing key. The saved config is read through ``TrainConfig`` too, so keys it
    predates compare at their defaults (or at what the run did, ``as_trained``) and the
    flat keys of earlier versions in their sections."""
    try:
        saved = as_trained(saved)
    except TrainError:
        saved = dict(saved)
    try:
        saved = TrainConfig.from_dict(saved).to_dict()
    except TrainError:   # a config this version refuses: compared key by key as it is
        pass
    for key, there, here in differing(saved, config.to_dict()):
        if within(key, RESUMABLE_CHANGES):
            continue
        if key == "model.num_classes":
            raise TrainError(f"{path} was trained with {there} classes, this run "
                             f"has {config.num_classes}")
        raise TrainError(f"cannot resume {path}: config {key!r} differs "
                         f"({there!r} there, {here!r} now); "
                         "use another --name, or --fresh to start this one over")


def find_resume(config: TrainConfig) -> tuple[dict[str, Any] | None, Path]:
    """The checkpoint a run resumes from (``resume: auto``: its own ``last.pth`` if there
    is one; a path: that file), checked compatible, and the run's folder."""
    out_dir = run_dir(config)
    if not config.runtime.resume:
        return None, out_dir
    path = out_dir / "last.pth" if config.runtime.resume == "auto" else Path(config.runtime.resume)
    if config.runtime.resume == "auto" and not path.is_file():
        return None, out_dir
    ckpt = load_checkpoint(path)
    check_compatible(ckpt["config"], config, path)
    return ckpt, (out_dir if config.runtime.resume == "auto" else path.parent)

"""A supernet's starting weights: from a file (the organisers' ``.pdparams`` or a
track1 checkpoint of the same space), channels re-ordered by importance, or residual
branches zeroed for a start from scratch."""
from __future__ import annotations

from typing import Callable

from torch import nn

from track1.infra.checkpoint import load_checkpoint
from track1.train.config import TrainConfig
from track1.train.errors import TrainError


def init_weights_from(model: nn.Module, path: str, config: TrainConfig, log: Callable) -> None:
    """``--init-from``: the organisers' ``.pdparams`` (where the supernet reads them) or a
    track1 checkpoint of the same space; refuses a file that would load next to nothing."""
    if str(path).endswith(".pdparams"):
        if not callable(getattr(model, "load_pdparams", None)):
            raise TrainError(f"--init-from {path}: the {config.space!r} supernet cannot "
                             "read Paddle .pdparams files")
        report = model.load_pdparams(path, include_head=config.init.head)
        log(f"init from {path}: {len(report['matched'])} tensors matched, "
            f"{len(report['unmatched'])} unmatched, {len(report['missing'])} missing, "
            f"{len(report['shape_mismatch'])} shape mismatches")
        return
    ckpt = load_checkpoint(path)
    saved_space = ckpt["config"].get("space", "track1_resnet48")
    if saved_space != config.space:
        raise TrainError(f"--init-from {path} is a {saved_space!r} supernet; this run trains "
                         f"{config.space!r}: nothing would load")
    saved_classes = ckpt["config"].get("model", {}).get("num_classes")
    state = ckpt["model"]
    if saved_classes != config.num_classes:
        if config.init.head:
            raise TrainError(f"{path} has {saved_classes} classes, this run has "
                             f"{config.num_classes}: set init.head=false to keep "
                             "a fresh classifier")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = model.state_dict()
    matching = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    if len(matching) < len(own) // 2:
        raise TrainError(f"--init-from {path}: only {len(matching)} of this supernet's "
                         f"{len(own)} tensors match it by name and shape; refusing to train "
                         "from a mostly fresh network (another model configuration?)")
    state = {k: state[k] for k in matching}
    missing, unexpected = model.load_state_dict(state, strict=False)
    log(f"init from {path}: {len(state)} tensors, {len(missing)} missing, "
        f"{len(unexpected)} unexpected")


def zero_init_residual(model: nn.Module) -> int:
    """Zero the gamma of the BN closing every residual branch (blocks with ``conv1``,
    ``conv2`` and ``bn2``), so each block starts as its shortcut: from scratch, the
    23-block largest subnet otherwise starts with a gradient norm ~12x the smallest's."""
    n = 0
    for m in model.modules():
        if hasattr(m, "conv1") and hasattr(m, "conv2") and \
                isinstance(getattr(m, "bn2", None), nn.BatchNorm2d):
            nn.init.zeros_(m.bn2.weight)
            n += 1
    return n


def initialise(supernet: nn.Module, config: TrainConfig, log: Callable[[str], None]) -> None:
    """A fresh run's starting point: residual branches zeroed (``init.zero_residual``),
    then weights from ``init.file``, then (``init.reorder``) channels re-ordered so that
    narrower subnets keep the most important ones."""
    if config.init.zero_residual:
        zero_init_residual(supernet)
    if config.init.file:
        init_weights_from(supernet, config.init.file, config, log)
        if config.init.reorder:
            if not callable(getattr(supernet, "reorder_channels", None)):
                raise TrainError(f"init.reorder: the {config.space!r} supernet has no "
                                 "channel re-ordering")
            supernet.reorder_channels()
            log("channels re-ordered by importance (largest subnet unchanged)")

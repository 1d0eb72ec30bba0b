"""The parts a training run is made of, each built by its own factory from the resolved
config (timm's manner: the trainer receives ready parts): the supernet, its optimiser and
lr schedule, the batches, the sampler over the space, the ranking teacher, the
static-graph step, the DDP wrapper, the external teacher and the ranking check.
``build_parts`` builds them in a fixed order (the RNG draws, and so the run, depend on it)."""
from __future__ import annotations

import contextlib
import inspect
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from track1.data.split import training_subset
from track1.infra import distributed as D
from track1.infra.sections import section_to_dict
from track1.nas.distributions import OneArchSpace, sampling_space
from track1.nas.fewshot import PartSpace
from track1.nas.sampler import MarginSampler
from track1.nas.step import LossConfig
from track1.nas.teacher import Teacher
from track1.train.config import TrainConfig
from track1.train.errors import TrainError


def build_optimizer(model: nn.Module, config: TrainConfig, world_size: int) -> torch.optim.Optimizer:
    """SGD; lr = base lr x global batch / 256; weight decay on conv/fc weights only."""
    lr = config.optim.lr * config.data.batch_size * world_size / 256
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.optim.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=config.optim.momentum,
                           nesterov=bool(config.optim.nesterov) and config.optim.momentum > 0)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """timm's ``CosineLRScheduler``: linear warm-up, cosine to ``min_lr`` (per base lr),
    stepped per iteration or per epoch."""
    from timm.scheduler import CosineLRScheduler
    base_lr = optimizer.param_groups[0]["lr"]
    per_step = config.schedule.per == "step"
    unit = steps_per_epoch if per_step else 1
    warmup = int(round(config.schedule.warmup_epochs * unit))
    total = max(1, int(config.schedule.epochs * unit))
    warmup = min(warmup, total - 1) if total > 1 else 0
    lr_min = config.schedule.min_lr * base_lr / config.optim.lr if config.optim.lr else 0.0
    return CosineLRScheduler(optimizer, t_initial=max(1, total - warmup), lr_min=lr_min,
                             warmup_t=warmup, warmup_lr_init=config.schedule.warmup_lr,
                             warmup_prefix=True, t_in_epochs=not per_step)


def build_space_for_sampler(space: Any, distance: str | None) -> Any:
    """The supernet's space, or a twin measuring ``distance`` (e.g. ``group``)."""
    if not distance:
        return space
    try:
        if hasattr(space, "with_distance"):
            return space.with_distance(distance)
        return type(space)(distance=distance)
    except (TypeError, ValueError) as e:
        raise TrainError(f"sampler.distance={distance!r} is not available for space "
                         f"{space.name!r}: {e}") from None


def build_batches(config: TrainConfig, info: D.DistInfo):
    """This rank's deterministic batches of the run's training images."""
    from track1.data import DataError, TrainBatches, resolve_source
    try:
        source = resolve_source(config.data.root, "train")
        if source.num_classes != config.num_classes:
            raise TrainError(f"data {config.data.root or 'embedded'} has {source.num_classes} "
                             f"classes but model.num_classes is {config.num_classes}")
        subset = training_subset(len(source), config.data.subset)
        return TrainBatches(source, config.data.image_size, config.data.batch_size,
                            subset=subset, device=info.device, seed=config.seed, rank=info.rank,
                            world_size=info.world_size, augment=config.data.augment,
                            multiscale=config.data.multiscale, workers=config.data.workers,
                            channels_last=config.runtime.channels_last,
                            progress=info.is_main and config.runtime.progress)
    except DataError as e:
        raise TrainError(str(e)) from None


def list_codes(space: Any, path: str | None) -> dict[str, str]:
    """The ``{key: code}`` of a list file (default: the space's official list) for
    ``sampler.kind list``; one ``TrainError`` line when there is none or it is malformed."""
    from track1.data.arch_list import ArchListError, load_arch_list
    path = path or getattr(space, "official_list", None)
    if path is None:
        raise TrainError(f"sampler.kind list: the {space.name!r} space has no official list; "
                         "set sampler.archs to a list file")
    try:
        return load_arch_list(path)
    except ArchListError as e:
        raise TrainError(f"sampler.archs: {e}") from None


def list_archs(space: Any, path: str | None) -> list:
    """The archs of ``list_codes``' file, decoded; one ``TrainError`` line when an entry is
    not of the space."""
    path = path or getattr(space, "official_list", None)
    codes = list_codes(space, path)
    archs = []
    for key, code in codes.items():  # each code decoded once (45,000 in the official list)
        try:
            archs.append(space.decode(code))
        except ValueError as e:
            raise TrainError(f"sampler.archs: arch list {path}: entry {key!r}: {e}") from None
    return archs


def build_fast_step(supernet: nn.Module, optimizer: torch.optim.Optimizer, loss_cfg: LossConfig,
                    sampler: MarginSampler, teacher: Any, config: TrainConfig, info: D.DistInfo,
                    autocast: Callable, log: Callable[[str], None]) -> Any:
    """``engine: fast``: the supernet's own static-graph step, or one clear error."""
    make = getattr(supernet, "fast_step", None)
    if make is None:
        raise TrainError(f"engine 'fast' is not available for space {config.space!r}; "
                         "use engine: plain")
    if not isinstance(optimizer, torch.optim.SGD):
        raise TrainError("engine 'fast' needs the SGD optimiser")
    try:  # the step itself refuses what it does not cover (DDP, clip_grad, loss terms)
        return make(optimizer, loss_cfg, sampler, teacher, autocast=autocast,
                    cuda_graph=bool(config.runtime.cuda_graph) and info.device.type == "cuda",
                    distributed=info.distributed, clip_grad=config.optim.clip_grad, log=log)
    except ValueError as e:
        raise TrainError(f"engine 'fast': {e}") from None


def build_supernet_for(config: TrainConfig, info: D.DistInfo) -> nn.Module:
    """The run's freshly initialised supernet on its device (the global RNGs seeded first:
    the initial weights are a function of the seed)."""
    from track1.registry import build_supernet
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed % (2 ** 32))
    try:
        supernet = build_supernet(config.space, config.model).to(info.device)
    except (ValueError, TypeError) as e:  # a bad model option (drop_path=2, ops=[...])
        raise TrainError(f"config 'model': {e}") from None
    if getattr(supernet, "num_classes", config.num_classes) != config.num_classes:
        raise TrainError("supernet class count disagrees with model.num_classes")
    return supernet


def steps_in_epoch(batches: Any, config: TrainConfig, info: D.DistInfo) -> int:
    """Steps per epoch: the batches' count, capped by ``max_steps_per_epoch``."""
    steps = len(batches)
    if config.schedule.max_steps_per_epoch:
        steps = min(steps, int(config.schedule.max_steps_per_epoch))
    if steps < 1:
        raise TrainError(f"an epoch has no full batch: {len(batches)} steps at batch "
                         f"{config.data.batch_size} x {info.world_size} ranks")
    return steps


def build_sampler(config: TrainConfig, space: Any) -> MarginSampler:
    """The margin sampler over the run's view of the space: the sampler's distance, a
    few-shot part, the one arch of a stand-alone run, or a sampling kind."""
    subnet = None
    if config.subnet is not None:
        try:
            subnet = space.decode(config.subnet)
        except ValueError as e:
            raise TrainError(f"config 'subnet': {e}") from None
    try:
        view = build_space_for_sampler(space, config.sampler.distance)
        if config.part is not None:  # one part of a few-shot split
            view = PartSpace(view, config.part.genes, config.part.values)
        if subnet is not None:  # stand-alone training: every step, that one path
            view = OneArchSpace(view, subnet)
        else:
            view = sampling_space(view, config.sampler.kind, bins=config.sampler.bins,
                                  bias=config.sampler.bias, seed=config.seed,
                                  archs=list_archs(space, config.sampler.archs)
                                  if config.sampler.kind == "list" else ())
        return MarginSampler(view, config.sampler.threshold or 0.0, seed=config.seed + 7919)
    except (TypeError, ValueError) as e:
        raise TrainError(f"config 'sampler' / 'lambda': {e}") from None


def build_teacher(config: TrainConfig, space: Any, device: torch.device) -> Teacher | None:
    """The ranking teacher (None when the run distils no ranking)."""
    if config.loss.ranking == "none":
        return None
    tcfg = config.teacher
    try:
        teacher = Teacher(space, tcfg.priors, cache_file=tcfg.cache, num_classes=config.num_classes,
                          zen_options=section_to_dict(tcfg.zen), seed=config.seed, device=device,
                          tie_break=tcfg.tie_break, set_reference=tcfg.reference, mix=tcfg.mix,
                          probe=tcfg.probe, data=config.data.root, resolution=tcfg.resolution)
    except ValueError as e:
        raise TrainError(f"config 'teacher': {e}") from None
    foreign = teacher.cannot_extend()
    if foreign:
        # checked before any step: a cache this teacher cannot extend alike must hold every
        # arch the ranking pairs are drawn from
        key, how = next(iter(foreign.items()))
        if config.sampler.kind != "list" or config.subnet is not None or config.part is not None:
            raise TrainError(f"config 'teacher.cache' {tcfg.cache}: its {key} values were {how}, "
                             f"which this teacher would not compute alike, and sampler.kind "
                             f"{config.sampler.kind!r} draws archs the file lacks: set "
                             f"sampler.kind list over the cached archs, or drop teacher.cache")
        # the list's codes as they stand (build_sampler decoded and checked them)
        missing = teacher.missing_from_cache(list(list_codes(space, config.sampler.archs).values()))
        if missing:
            key, n, first = missing
            raise TrainError(f"config 'teacher.cache' {tcfg.cache}: lacks {key} for {n} of the "
                             f"archs sampler.kind list draws from (first {first}), and its values "
                             f"were {foreign[key]}, which this teacher would not compute alike: "
                             f"complete the cache (track1 proxy-cache), list only cached archs "
                             f"(sampler.archs), or drop teacher.cache")
    return teacher


def wrap_ddp(supernet: nn.Module, info: D.DistInfo) -> nn.Module:
    """The module that runs the forward: the supernet, or its DDP wrapper. BN buffers stay
    per rank (each rank's running stats of its own data); newer torch names this
    ``forward_sync_buffers``, older torch ``broadcast_buffers``."""
    if not info.distributed:
        return supernet
    params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                      else {"broadcast_buffers": False})
    return nn.parallel.DistributedDataParallel(
        supernet, device_ids=[info.local_rank] if info.device.type == "cuda" else None,
        **no_buffer_sync)


def autocast_for(config: TrainConfig, info: D.DistInfo, graph: bool = False) -> Callable:
    """bf16 autocast on CUDA with ``amp`` (a captured CUDA graph needs autocast's
    weight-cast cache off: ``graph``), else a null context."""
    if info.device.type == "cuda" and config.runtime.amp:
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=not graph)
    return contextlib.nullcontext


@dataclass
class TrainParts:
    """Everything a ``Trainer`` runs on, ready built."""

    supernet: nn.Module
    model: nn.Module                 # what runs the forward: the supernet or its DDP wrapper
    optimizer: torch.optim.Optimizer
    scheduler: Any
    batches: Any
    steps_per_epoch: int
    sampler: MarginSampler
    schedule: Callable[[float], float]   # lambda(epoch)
    teacher: Teacher | None
    checkpoint: dict[str, Any] | None    # what the run resumes from
    out_dir: Path
    autocast: Callable = contextlib.nullcontext
    fast: Any = None                 # the static-graph step (engine: fast)
    kd_teacher: nn.Module | None = None
    rank_check: Any = None           # --val-gt


def build_parts(config: TrainConfig, info: D.DistInfo, *, batches: Iterable | None = None,
                log: Callable[[str], None] = print) -> TrainParts:
    """Every part of the run of ``config`` (resume and compatibility checks first,
    nothing written before they pass)."""
    from track1.train.initialise import initialise
    from track1.train.rank_check import GroundTruthCheck
    from track1.train.state import find_resume
    ckpt, out_dir = find_resume(config)
    supernet = build_supernet_for(config, info)
    if ckpt is None:
        initialise(supernet, config, log)
    batches = batches if batches is not None else build_batches(config, info)
    steps = steps_in_epoch(batches, config, info)
    if config.runtime.channels_last:
        supernet = supernet.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(supernet, config, info.world_size)
    parts = TrainParts(
        supernet=supernet, model=supernet, optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config, steps), batches=batches,
        steps_per_epoch=steps, sampler=build_sampler(config, supernet.space),
        schedule=_lambda_schedule(config), teacher=build_teacher(config, supernet.space,
                                                                 info.device),
        checkpoint=ckpt, out_dir=out_dir)
    if config.val_gt.file is not None and info.is_main:
        parts.rank_check = GroundTruthCheck(config.val_gt, supernet, config.data.root,
                                            config.data.image_size, config.num_classes,
                                            info.device, config.runtime.channels_last, log)
    return parts


def lock_run(out_dir: Path, info: D.DistInfo) -> Any:
    """The main rank's lock on the run folder, taken once every input check has passed and
    before the first write (a second training of one folder would overwrite it); a save
    killed mid-write left its temporary file: removed under the lock."""
    if not info.is_main:
        return None
    from track1.infra.atomic import remove_stale_temps
    from track1.infra.folder_lock import FolderLock
    lock = FolderLock(out_dir, "training", "use another --name (or --ckpt-dir)", TrainError)
    remove_stale_temps(out_dir / "last.pth")
    return lock


def add_running_parts(parts: TrainParts, config: TrainConfig, info: D.DistInfo,
                      log: Callable[[str], None]) -> None:
    """The parts only a run that still trains needs: the DDP wrapper, autocast, the
    static-graph step (its optimiser state restored when resuming), the external teacher."""
    parts.model = wrap_ddp(parts.supernet, info)
    parts.autocast = autocast_for(config, info)
    if config.runtime.engine == "fast":
        parts.fast = build_fast_step(parts.supernet, parts.optimizer, config.loss, parts.sampler,
                                     parts.teacher, config, info,
                                     autocast_for(config, info, graph=True), log)
        if parts.checkpoint is not None:
            parts.fast.load_optimizer_state()
        parts.supernet.train()
    if config.kd_teacher.file is not None:  # frozen: no DDP, not optimised, not checkpointed
        from track1.train.kd_teacher import load_kd_teacher
        parts.kd_teacher = load_kd_teacher(
            config.kd_teacher.file, config.num_classes, arch=config.kd_teacher.arch,
            bn=config.kd_teacher.bn, device=info.device,
            channels_last=config.runtime.channels_last, log=log)


def _lambda_schedule(config: TrainConfig) -> Callable[[float], float]:
    try:
        return config.lambda_.build(config.schedule.epochs)
    except (TypeError, ValueError) as e:
        raise TrainError(f"config 'sampler' / 'lambda': {e}") from None

"""The supernet training loop: one code path for CPU, one GPU and ``torchrun`` DDP.

Per step it calls ``track1.nas.step.train_step`` (all sub-steps accumulate gradients),
then takes ONE SGD step; the learning rate follows timm's ``CosineLRScheduler`` (linear
warm-up, cosine decay, stepped per iteration or per epoch), with the base lr scaled by
global batch / 256. Arch samples come from a ``MarginSampler`` seeded identically on
every rank, so all ranks train the same subnets at a step; data differ per rank.

Everything a resumed run needs is in ``last.pth``: model, optimiser, scheduler, epoch,
step in epoch, global step, RNG states, sampler and teacher state, and the resolved
config. Batches are a pure function of (seed, epoch, step) (``track1.data``), so
``--resume`` continues exactly: on CPU the weights equal an uninterrupted run's bitwise.
"""
from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from track1.infra import distributed as D
from track1.infra.atomic import remove_stale_temps
from track1.infra.checkpoint import CheckpointError, load_checkpoint, save_atomic
from track1.infra.paths import ckpt_dir
from track1.data.split import training_subset
from track1.nas.sampler import MarginSampler
from track1.nas.distributions import OneArchSpace, sampling_space
from track1.nas.fewshot import PartSpace
from track1.nas.step import LossConfig, terms_to_floats, train_step
from track1.nas.teacher import Teacher
from track1.infra.resumable import AppendLog, read_records
from track1.infra.sections import section_to_dict
from track1.train.config import TrainConfig, save_yaml
from track1.train.errors import TrainError
from track1.train.rank_check import GroundTruthCheck

#: config keys that may change between a run and its resumption
RESUMABLE_CHANGES = {"epochs", "resume", "progress", "log_interval", "tensorboard", "workers",
                     "threads", "save_every_steps", "device", "data", "ckpt_dir", "init_from",
                     "max_steps_per_epoch", "amp", "engine", "cuda_graph", "val_gt"}


def run_dir(config: TrainConfig) -> Path:
    return Path(config.ckpt_dir or ckpt_dir()) / str(config.name)


# ------------------------------------------------------------------------ RNG state
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


# ----------------------------------------------------------------------- building
def build_optimizer(model: nn.Module, config: TrainConfig, world_size: int) -> torch.optim.Optimizer:
    """SGD; lr = base lr x global batch / 256; weight decay on conv/fc weights only."""
    lr = config.lr * config.batch_size * world_size / 256
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=config.momentum,
                           nesterov=bool(config.nesterov) and config.momentum > 0)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """timm's ``CosineLRScheduler``: linear warm-up, cosine to ``min_lr`` (per base lr),
    stepped per iteration or per epoch."""
    from timm.scheduler import CosineLRScheduler
    base_lr = optimizer.param_groups[0]["lr"]
    per_step = config.sched_per == "step"
    unit = steps_per_epoch if per_step else 1
    warmup = int(round(config.warmup_epochs * unit))
    total = max(1, int(config.epochs * unit))
    warmup = min(warmup, total - 1) if total > 1 else 0
    return CosineLRScheduler(optimizer, t_initial=max(1, total - warmup),
                             lr_min=config.min_lr * base_lr / config.lr if config.lr else 0.0,
                             warmup_t=warmup, warmup_lr_init=config.warmup_lr,
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
        source = resolve_source(config.data, "train")
        if source.num_classes != config.num_classes:
            raise TrainError(f"data {config.data or 'embedded'} has {source.num_classes} "
                             f"classes but model.num_classes is {config.num_classes}")
        subset = training_subset(len(source), config.train_subset)
        return TrainBatches(source, config.image_size, config.batch_size, subset=subset,
                            device=info.device, seed=config.seed, rank=info.rank,
                            world_size=info.world_size, augment=config.augment,
                            multiscale=config.multiscale, workers=config.workers,
                            channels_last=config.channels_last,
                            progress=info.is_main and config.progress)
    except DataError as e:
        raise TrainError(str(e)) from None


def list_archs(space: Any, path: str | None) -> list:
    """The archs of a list file (default: the space's official list) for ``sampler.kind
    list``; one ``TrainError`` line when there is none or an entry is not of the space."""
    from track1.data.arch_list import ArchListError, load_arch_list
    path = path or getattr(space, "official_list", None)
    if path is None:
        raise TrainError(f"sampler.kind list: the {space.name!r} space has no official list; "
                         "set sampler.archs to a list file")
    try:
        codes = load_arch_list(path)
    except ArchListError as e:
        raise TrainError(f"sampler.archs: {e}") from None
    archs = []
    for key, code in codes.items():  # each code decoded once (45,000 in the official list)
        try:
            archs.append(space.decode(code))
        except ValueError as e:
            raise TrainError(f"sampler.archs: arch list {path}: entry {key!r}: {e}") from None
    return archs


def check_compatible(saved: dict, config: TrainConfig, path: Path) -> None:
    """Refuse to resume a checkpoint trained under a different recipe. The saved config
    is read through ``TrainConfig`` too, so keys it predates compare at their defaults."""
    try:
        saved = TrainConfig.from_dict(saved).to_dict()
    except TrainError:
        saved = dict(saved)  # a config this version refuses: compared key by key as it is
    now = config.to_dict()
    for key in sorted(set(saved) | set(now)):
        if key in RESUMABLE_CHANGES:
            continue
        if saved.get(key) != now.get(key):
            if key == "model" and (saved.get(key) or {}).get("num_classes") != config.num_classes:
                raise TrainError(f"{path} was trained with {saved['model'].get('num_classes')} "
                                 f"classes, this run has {config.num_classes}")
            raise TrainError(f"cannot resume {path}: config {key!r} differs "
                             f"({saved.get(key)!r} there, {now.get(key)!r} now); "
                             "use another --name or drop --resume")


def init_weights_from(model: nn.Module, path: str, config: TrainConfig, log: Callable) -> None:
    """``--init-from``: the organisers' ``.pdparams`` (where the supernet reads them) or a
    track1 checkpoint of the same space; refuses a file that would load next to nothing."""
    if str(path).endswith(".pdparams"):
        if not callable(getattr(model, "load_pdparams", None)):
            raise TrainError(f"--init-from {path}: the {config.space!r} supernet cannot "
                             "read Paddle .pdparams files")
        report = model.load_pdparams(path, include_head=config.init_head)
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
        if config.init_head:
            raise TrainError(f"{path} has {saved_classes} classes, this run has "
                             f"{config.num_classes}: set init_head=false to keep "
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


def check_finite(terms: dict[str, float], epoch: int, step: int) -> None:
    """Refuse a non-finite loss before it reaches the weights (plain engine) or a
    checkpoint (fast engine, which checks at each log and save)."""
    if not all(math.isfinite(v) for v in terms.values()):
        raise TrainError(f"training diverged at epoch {epoch + 1} step {step} "
                         f"(non-finite loss {terms}); lower lr or set clip_grad")


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
                    cuda_graph=bool(config.cuda_graph) and info.device.type == "cuda",
                    distributed=info.distributed, clip_grad=config.clip_grad, log=log)
    except ValueError as e:
        raise TrainError(f"engine 'fast': {e}") from None


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


# ------------------------------------------------------------------- checkpoints
class CheckpointSaver:
    """Writes a run's ``last.pth`` atomically (with the resolved ``config.yaml`` beside it)
    on the main rank, then meets the other ranks at a barrier."""

    def __init__(self, out_dir: Path, config: TrainConfig, info: D.DistInfo) -> None:
        self.out_dir, self.config, self.info = out_dir, config, info
        self.last = out_dir / "last.pth"

    def save_config(self) -> None:
        if self.info.is_main:
            save_yaml(self.config, self.out_dir / "config.yaml")

    def save(self, state: Callable[[], dict[str, Any]]) -> None:
        """``state()`` is called on the main rank only (building it costs a copy)."""
        if self.info.is_main:
            save_atomic(state(), self.last)
            self.save_config()
        D.barrier(self.info)


# -------------------------------------------------------------------------- train
class Trainer:
    """One training run: built from a resolved ``TrainConfig`` (resume and compatibility
    checks first, nothing written before they pass), trained by ``fit``, an epoch at a
    time by ``train_one_epoch``. ``state_dict()`` is everything a resumed run needs;
    ``load_state_dict`` restores it."""

    def __init__(self, config: TrainConfig, *, batches: Iterable | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.config = config
        info = self.info = D.setup(config.device)
        if config.threads:
            torch.set_num_threads(int(config.threads))
        self.log = log or (lambda s: print(s, flush=True) if info.is_main else None)
        out_dir = run_dir(config)
        if info.is_main:  # a save killed mid-write left its temporary file: remove it now
            remove_stale_temps(out_dir / "last.pth")
        self.loss_cfg = config.loss

        # ---- resume / compatibility checks first: nothing is written before they pass
        ckpt = None
        if config.resume:
            path = out_dir / "last.pth" if config.resume == "auto" else Path(config.resume)
            if config.resume != "auto" or path.is_file():
                ckpt = load_checkpoint(path)
                check_compatible(ckpt["config"], config, path)
                if config.resume != "auto":
                    out_dir = path.parent
        self.out_dir = out_dir

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed % (2 ** 32))
        from track1.registry import build_supernet
        try:
            supernet = build_supernet(config.space, config.model).to(info.device)
        except (ValueError, TypeError) as e:  # a bad model option (drop_path=2, ops=[...])
            raise TrainError(f"config 'model': {e}") from None
        if getattr(supernet, "num_classes", config.num_classes) != config.num_classes:
            raise TrainError("supernet class count disagrees with model.num_classes")
        if ckpt is None and config.zero_init_residual:
            zero_init_residual(supernet)
        if ckpt is None and config.init_from:
            init_weights_from(supernet, config.init_from, config, self.log)
            if config.init_reorder:  # so narrower subnets keep the most important channels
                if not callable(getattr(supernet, "reorder_channels", None)):
                    raise TrainError(f"init_reorder: the {config.space!r} supernet has no "
                                     "channel re-ordering")
                supernet.reorder_channels()
                self.log("channels re-ordered by importance (largest subnet unchanged)")

        self.batches = batches if batches is not None else build_batches(config, info)
        steps = len(self.batches)
        if config.max_steps_per_epoch:
            steps = min(steps, int(config.max_steps_per_epoch))
        if steps < 1:
            raise TrainError(f"an epoch has no full batch: {len(self.batches)} steps at batch "
                             f"{config.batch_size} x {info.world_size} ranks")
        self.steps_per_epoch = steps

        cuda = info.device.type == "cuda"
        if config.channels_last:
            supernet = supernet.to(memory_format=torch.channels_last)
        self.supernet = supernet
        self.optimizer = build_optimizer(supernet, config, info.world_size)
        self.scheduler = build_scheduler(self.optimizer, config, steps)
        space = supernet.space
        subnet = None
        if config.subnet is not None:
            try:
                subnet = space.decode(config.subnet)
            except ValueError as e:
                raise TrainError(f"config 'subnet': {e}") from None
        try:
            sample_space = build_space_for_sampler(space, config.sampler.distance)
            if config.part is not None:  # one part of a few-shot split
                sample_space = PartSpace(sample_space, config.part.genes, config.part.values)
            if subnet is not None:  # stand-alone training: every step, that one path
                sample_space = OneArchSpace(sample_space, subnet)
            else:
                sample_space = sampling_space(
                    sample_space, config.sampler.kind, bins=config.sampler.bins,
                    bias=config.sampler.bias, seed=config.seed,
                    archs=list_archs(space, config.sampler.archs)
                    if config.sampler.kind == "list" else ())
            self.sampler = MarginSampler(sample_space, config.sampler.threshold or 0.0,
                                         seed=config.seed + 7919)
            self.schedule = config.lambda_.build(config.epochs)
        except (TypeError, ValueError) as e:
            raise TrainError(f"config 'sampler' / 'lambda': {e}") from None
        self.teacher = None
        if self.loss_cfg.ranking != "none":
            tcfg = config.teacher
            try:
                self.teacher = Teacher(space, tcfg.priors, cache_file=tcfg.cache,
                                       num_classes=config.num_classes,
                                       zen_options=section_to_dict(tcfg.zen), seed=config.seed,
                                       device=info.device, tie_break=tcfg.tie_break)
            except ValueError as e:
                raise TrainError(f"config 'teacher': {e}") from None

        self.epoch, self.epoch_step, self.global_step = 0, 0, 0
        self.val_gt_best: dict[str, Any] | None = None  # {"epoch", "step", "kendall"} of best.pth
        if ckpt is not None:
            self.load_state_dict(ckpt)
        self.rank_check = None
        if config.val_gt.file is not None and info.is_main:
            self.rank_check = GroundTruthCheck(config.val_gt, supernet, config.data,
                                               config.image_size, config.num_classes,
                                               info.device, config.channels_last, self.log)

        self.model: nn.Module = supernet
        self.saver = CheckpointSaver(self.out_dir, config, info)
        self.writer = None
        self._sums: dict[str, Any] = {}  # loss terms since the last log line
        self.fast = None
        self.kd_teacher: nn.Module | None = None  # loss.teacher_kd's frozen teacher
        if self.epoch >= config.epochs:  # finished: fit() says so, nothing more to build
            return
        if info.distributed:
            # BN buffers stay per rank (each rank's running stats of its own data); newer
            # torch names this forward_sync_buffers, older torch broadcast_buffers
            import inspect
            ddp_params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
            no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in ddp_params
                              else {"broadcast_buffers": False})
            self.model = nn.parallel.DistributedDataParallel(
                supernet, device_ids=[info.local_rank] if cuda else None, **no_buffer_sync)
        self.autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16))
                         if cuda and config.amp else contextlib.nullcontext)
        self.no_sync = D.no_sync_factory(self.model)
        if config.engine == "fast":
            # a captured CUDA graph needs autocast's weight-cast cache off (torch.cuda.graphs)
            fast_autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16,
                                                     cache_enabled=False))
                             if cuda and config.amp else contextlib.nullcontext)
            self.fast = build_fast_step(supernet, self.optimizer, self.loss_cfg, self.sampler,
                                        self.teacher, config, info, fast_autocast, self.log)
            if ckpt is not None:
                self.fast.load_optimizer_state()
            supernet.train()
        if config.kd_teacher is not None:  # frozen: no DDP, not optimised, not checkpointed
            from track1.train.kd_teacher import load_kd_teacher
            self.kd_teacher = load_kd_teacher(
                config.kd_teacher, config.num_classes, arch=config.kd_teacher_arch,
                bn=config.kd_teacher_bn, device=info.device,
                channels_last=config.channels_last, log=self.log)

    @property
    def last(self) -> Path:
        return self.out_dir / "last.pth"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: model, optimiser, scheduler, position, RNG, sampler, teacher and
        the resolved config (a plain mapping)."""
        return {"model": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "epoch_step": self.epoch_step, "step": self.global_step, "rng": rng_state(),
                "sampler": self.sampler.state_dict(),
                "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                "config": self.config.to_dict(), "image_size": self.config.image_size,
                "loss_config": self.loss_cfg.to_dict(), "val_gt_best": self.val_gt_best}

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        config = self.config
        try:
            self.supernet.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            saved_epochs = ckpt["config"].get("epochs")
            if saved_epochs == config.epochs:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            else:
                # the restored schedule would end at the old length (lr 0 from there on):
                # the lr is a pure function of the step, so the new length's schedule
                # continues from this step instead
                self.log(f"epochs changed from {saved_epochs} to {config.epochs}: the lr "
                         f"schedule is rebuilt for {config.epochs} epochs and continues at "
                         f"step {int(ckpt['step'])}")
            self.sampler.load_state_dict(ckpt["sampler"])
            if self.teacher is not None and ckpt.get("teacher"):
                self.teacher.load_state_dict(ckpt["teacher"])
            set_rng_state(ckpt["rng"])
            self.val_gt_best = ckpt.get("val_gt_best")
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise CheckpointError(f"cannot resume from {self.last}: {type(e).__name__}: "
                                  f"{str(e).splitlines()[0]}") from None
        self.epoch, self.epoch_step = int(ckpt["epoch"]), int(ckpt["epoch_step"])
        self.global_step = int(ckpt["step"])
        self.log(f"resumed {self.last} at epoch {self.epoch}, step {self.epoch_step} "
                 f"(global {self.global_step})")

    def save(self, epoch: int, epoch_step: int) -> None:
        """Checkpoint the run as positioned at ``(epoch, epoch_step)``."""
        self.epoch, self.epoch_step = epoch, epoch_step
        if self.fast is not None:
            if self._sums:  # steps not logged yet: never checkpoint a diverged state
                check_finite(terms_to_floats(self._sums), epoch, epoch_step)
            self.fast.sync_optimizer_state()
        self.saver.save(self.state_dict)

    # ------------------------------------------------------------------ steps
    def train_step(self, images: torch.Tensor, targets: torch.Tensor, lam: float,
                   epoch: int, step: int) -> dict[str, Any]:
        """One optimiser step (the static-graph step, or the plain sub-steps + SGD)."""
        if self.fast is not None:  # forward, backward and update in one static graph
            return self.fast.step(images, targets, lam)
        self.supernet.train()
        self.optimizer.zero_grad(set_to_none=True)
        terms = train_step(self.model, self.supernet, images, targets, self.loss_cfg,
                           self.sampler, self.teacher, lam, no_sync=self.no_sync,
                           autocast=self.autocast, ddp=self.info.distributed,
                           external_teacher=self.kd_teacher)
        if self.config.clip_grad:
            terms["grad_norm"] = float(nn.utils.clip_grad_norm_(self.supernet.parameters(),
                                                                self.config.clip_grad))
        # stop before a non-finite step reaches the weights or a checkpoint
        check_finite(terms, epoch, step + 1)
        self.optimizer.step()
        return terms

    def _log_line(self, epoch: int, step: int, count: int, elapsed: float, bar: Any) -> None:
        config, info = self.config, self.info
        mean = terms_to_floats({k: v / count for k, v in self._sums.items()})
        check_finite(mean, epoch, step + 1)
        ips = count * config.batch_size * info.world_size / max(elapsed, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        losses = " ".join(f"{k} {mean[k]:.4f}" for k in ("largest", "smallest", "random", "rank",
                                                         "teacher_kd", "grad_norm") if k in mean)
        ties = (f" ties {100 * self.teacher.tie_rate():.1f}%"
                if self.teacher is not None and self.teacher.tie_counts["pairs"] else "")
        line = (f"epoch {epoch + 1} step {step + 1}/{self.steps_per_epoch} | {losses}{ties} | "
                f"lambda {mean['lambda']:.3f} lr {lr:.4g} | {ips:.1f} img/s "
                f"{count / max(elapsed, 1e-9):.2f} steps/s")
        if info.is_main:
            bar.write(line) if config.progress else self.log(line)
        if self.writer is not None:
            for k, v in mean.items():
                self.writer.add_scalar(f"train/{k}", v, self.global_step)
            self.writer.add_scalar("train/lr", lr, self.global_step)
            self.writer.add_scalar("train/img_per_s", ips, self.global_step)

    def train_one_epoch(self, epoch: int, first: int = 0,
                        stop_after_steps: int | None = None) -> bool:
        """Train epoch ``epoch`` from its step ``first``; checkpoint every
        ``save_every_steps`` and at the end. Returns False when ``stop_after_steps``
        global steps were reached first (saved there)."""
        from tqdm import tqdm
        config, info = self.config, self.info
        steps = self.steps_per_epoch
        self.batches.set_epoch(epoch)
        if config.sched_per == "epoch":
            self.scheduler.step(epoch)
        bar = tqdm(total=steps, initial=first, desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not (info.is_main and config.progress), file=sys.stderr,
                   dynamic_ncols=True, leave=False)
        self._sums = {}
        count, t0 = 0, time.perf_counter()
        try:
            for step, (images, targets) in enumerate(self.batches.iter_from(first), start=first):
                if step >= steps:
                    break
                lam = self.schedule(epoch + step / steps)
                # batches from a caller-supplied iterable may live elsewhere (no-op when not)
                images = images.to(info.device, non_blocking=True)
                targets = targets.to(info.device, non_blocking=True)
                terms = self.train_step(images, targets, lam, epoch, step)
                self.global_step += 1
                if config.sched_per == "step":
                    self.scheduler.step_update(self.global_step)
                for k, v in terms.items():
                    self._sums[k] = self._sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if count == config.log_interval or step + 1 == steps:
                    self._log_line(epoch, step, count, time.perf_counter() - t0, bar)
                    self._sums, count, t0 = {}, 0, time.perf_counter()
                if step + 1 < steps and config.save_every_steps and \
                        self.global_step % config.save_every_steps == 0:
                    self.save(epoch, step + 1)
                if stop_after_steps is not None and self.global_step >= stop_after_steps:
                    self.save(*((epoch + 1, 0) if step + 1 == steps else (epoch, step + 1)))
                    return False
        finally:
            bar.close()
        self.save(epoch + 1, 0)
        return True

    def check_ranking(self, epoch: int) -> dict[str, Any]:
        """``--val-gt``: rank the ground-truth archs with the supernet as it is after epoch
        ``epoch``; log the correlations (text, TensorBoard, ``val_gt.jsonl``) and keep
        ``best.pth`` by Kendall (main rank only). ``val_gt.jsonl`` is the record of what
        was checked: the best so far is read from it, and a check a kill interrupted is
        made on the next start (``fit``)."""
        t0 = time.perf_counter()
        m = self.rank_check.measure()
        record = {"epoch": epoch + 1, "step": self.global_step,
                  **{k: m[k] for k in ("kendall", "spearman", "pearson", "n",
                                       "split_half_kendall", "split_half_kendall_neg_loss")},
                  "seconds": round(time.perf_counter() - t0, 2)}
        with AppendLog(self.out_dir / "val_gt.jsonl", "epoch") as log:
            earlier = [r for r in log.records if r["epoch"] != epoch + 1]
            best = all(m["kendall"] > r["kendall"] for r in earlier)
            if best:  # best.pth first: a kill before the log line repeats this check
                self.val_gt_best = {"epoch": epoch + 1, "step": self.global_step,
                                    "kendall": m["kendall"]}
                save_atomic(self.state_dict(), self.out_dir / "best.pth")
            log.append({**record, "best": best})
        if not best:
            top = max(earlier, key=lambda r: r["kendall"])
            self.val_gt_best = {k: top[k] for k in ("epoch", "step", "kendall")}
        self.log(f"val-gt after epoch {epoch + 1}: Kendall {m['kendall']:.4f} Spearman "
                 f"{m['spearman']:.4f} Pearson {m['pearson']:.4f} over {m['n']} archs "
                 f"({record['seconds']:.1f} s; the scorer's split-half Kendall "
                 f"{_fmt_or_na(m['split_half_kendall'])})"
                 + (f"; best so far: {self.out_dir / 'best.pth'}" if best else
                    f"; best stays epoch {self.val_gt_best['epoch']} "
                    f"(Kendall {self.val_gt_best['kendall']:.4f})"))
        if self.writer is not None:
            for k in ("kendall", "spearman", "pearson"):
                self.writer.add_scalar(f"val_gt/{k}", m[k], self.global_step)
        return m

    def _ranking_missed(self) -> bool:
        """Whether the run stopped after an epoch whose ``--val-gt`` check did not land."""
        if self.rank_check is None or self.epoch == 0 or self.epoch_step != 0 or \
                not self.rank_check.due(self.epoch - 1, self.config.epochs):
            return False
        checked = read_records(self.out_dir / "val_gt.jsonl", "epoch")[0]
        return not any(r["epoch"] == self.epoch for r in checked)

    def fit(self, stop_after_steps: int | None = None) -> Path:
        """Train to ``config.epochs``; returns the path of ``last.pth``. ``stop_after_steps``
        ends the run early after that many global steps, after saving (tests use it to
        simulate a crash)."""
        config, info = self.config, self.info
        if self._ranking_missed():
            self.check_ranking(self.epoch - 1)
        D.barrier(info)
        if self.epoch >= config.epochs:
            self.log(f"run {config.name!r} already finished {self.epoch} epochs; nothing to do")
            return self.last
        if config.tensorboard and info.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TrainError("--tensorboard needs the 'tensorboard' package, which is not "
                                 "installed (pip install tensorboard)") from None
            self.writer = SummaryWriter(str(self.out_dir / "tb"))
        self.saver.save_config()
        if info.is_main:
            self.log(f"training {config.space} supernet: {config.epochs} epochs x "
                     f"{self.steps_per_epoch} steps, batch {config.batch_size} x "
                     f"{info.world_size}, peak lr "
                     f"{config.lr * config.batch_size * info.world_size / 256:.4g} (base "
                     f"{config.lr} per 256), device {info.device}, loss "
                     f"{self.loss_cfg.to_dict()}, out {self.out_dir}")
        if config.sched_per == "step":
            self.scheduler.step_update(self.global_step)
        else:
            self.scheduler.step(self.epoch)
        try:
            for epoch in range(self.epoch, config.epochs):
                first = self.epoch_step if epoch == self.epoch else 0
                if not self.train_one_epoch(epoch, first, stop_after_steps):
                    return self.last
                self.log(f"epoch {epoch + 1}/{config.epochs} done; checkpoint {self.last}")
                if self.rank_check is not None and self.rank_check.due(epoch, config.epochs):
                    self.check_ranking(epoch)
                D.barrier(info)
        finally:
            if self.writer is not None:
                self.writer.close()
        D.cleanup(info)
        return self.last


def train(config: TrainConfig, *, batches: Iterable | None = None,
          log: Callable[[str], None] | None = None, stop_after_steps: int | None = None) -> Path:
    """Train the supernet of ``config`` (resolved, see ``track1.train.config``); returns
    the path of ``last.pth``. ``batches`` injects a data object with the
    ``TrainBatches`` interface; ``stop_after_steps`` ends the run early after that many
    global steps, after saving (it simulates a crash in tests)."""
    return Trainer(config, batches=batches, log=log).fit(stop_after_steps)


def _fmt_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"

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
The parts come ready built (``track1.train.builders``); checkpoints go through one saver
(``track1.train.saver``).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn

from track1.infra import distributed as D
from track1.infra.checkpoint import CheckpointError
from track1.nas.step import terms_to_floats, train_step
from track1.train.builders import TrainParts, add_running_parts, build_parts, lock_run
from track1.train.config import TrainConfig, upgrade_flat_keys
from track1.train.errors import TrainError
from track1.train.saver import CheckpointSaver
from track1.train.state import rng_state, set_rng_state


def check_finite(terms: dict[str, float], epoch: int, step: int) -> None:
    """Refuse a non-finite loss before it reaches the weights (plain engine) or a
    checkpoint (fast engine, which checks at each log and save)."""
    if not all(math.isfinite(v) for v in terms.values()):
        raise TrainError(f"training diverged at epoch {epoch + 1} step {step} "
                         f"(non-finite loss {terms}); lower optim.lr or set optim.clip_grad")


class Trainer:
    """One training run: the resolved ``TrainConfig`` and its ready-built parts
    (``build_parts``: resume and compatibility checks first, nothing written before they
    pass), trained by ``fit``, an epoch at a time by ``train_one_epoch``. ``state_dict()``
    is everything a resumed run needs; ``load_state_dict`` restores it."""

    def __init__(self, config: TrainConfig, *, batches: Iterable | None = None,
                 log: Callable[[str], None] | None = None,
                 parts: TrainParts | None = None) -> None:
        self.config = config
        info = self.info = D.setup(config.runtime.device)
        if config.runtime.threads:
            torch.set_num_threads(int(config.runtime.threads))
        self.log = log or (lambda s: print(s, flush=True) if info.is_main else None)
        p = parts or build_parts(config, info, batches=batches, log=self.log)
        self.parts, self.out_dir = p, p.out_dir
        self.supernet, self.model, self.optimizer, self.scheduler = \
            p.supernet, p.model, p.optimizer, p.scheduler
        self.batches, self.steps_per_epoch, self.sampler, self.schedule, self.teacher = \
            p.batches, p.steps_per_epoch, p.sampler, p.schedule, p.teacher
        self.loss_cfg = config.loss
        self.saver = CheckpointSaver(self.out_dir, config, info)
        self.epoch, self.epoch_step, self.global_step = 0, 0, 0
        if p.checkpoint is not None:
            self.load_state_dict(p.checkpoint)
        self.rank_check = p.rank_check
        self.writer = None
        self._sums: dict[str, Any] = {}  # loss terms since the last log line
        if self.epoch < config.schedule.epochs:  # a finished run needs nothing more
            add_running_parts(p, config, info, self.log)
        self.model, self.autocast, self.fast, self.kd_teacher = \
            p.model, p.autocast, p.fast, p.kd_teacher
        self.no_sync = D.no_sync_factory(self.model)
        self.lock = lock_run(self.out_dir, info)

    @property
    def last(self) -> Path:
        return self.out_dir / "last.pth"

    @property
    def val_gt_best(self) -> dict[str, Any] | None:
        """``{"epoch", "step", "kendall"}`` of ``best.pth`` (the saver keeps it)."""
        return self.saver.best_check

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: model, optimiser, scheduler, position, RNG, sampler, teacher and
        the resolved config (a plain mapping)."""
        return {"model": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                "epoch_step": self.epoch_step, "step": self.global_step, "rng": rng_state(),
                "sampler": self.sampler.state_dict(),
                "teacher": self.teacher.state_dict() if self.teacher is not None else None,
                "config": self.config.to_dict(), "image_size": self.config.data.image_size,
                "loss_config": self.loss_cfg.to_dict(), "val_gt_best": self.val_gt_best}

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        config = self.config
        try:
            self.supernet.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            saved_epochs = (upgrade_flat_keys(ckpt["config"]).get("schedule") or {}).get("epochs")
            if saved_epochs == config.schedule.epochs:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            else:
                # the restored schedule would end at the old length (lr 0 from there on):
                # the lr is a pure function of the step, so the new length's schedule
                # continues from this step instead
                epochs = config.schedule.epochs
                self.log(f"epochs changed from {saved_epochs} to {epochs}: the lr schedule is "
                         f"rebuilt for {epochs} epochs and continues at step {int(ckpt['step'])}")
            self.sampler.load_state_dict(ckpt["sampler"])
            if self.teacher is not None and ckpt.get("teacher"):
                self.teacher.load_state_dict(ckpt["teacher"])
            set_rng_state(ckpt["rng"])
            self.saver.best_check = ckpt.get("val_gt_best")
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
        if self.config.optim.clip_grad:
            terms["grad_norm"] = float(nn.utils.clip_grad_norm_(self.supernet.parameters(),
                                                                self.config.optim.clip_grad))
        # stop before a non-finite step reaches the weights or a checkpoint
        check_finite(terms, epoch, step + 1)
        self.optimizer.step()
        return terms

    def _log_line(self, epoch: int, step: int, count: int, elapsed: float, bar: Any) -> None:
        config, info = self.config, self.info
        mean = terms_to_floats({k: v / count for k, v in self._sums.items()})
        check_finite(mean, epoch, step + 1)
        ips = count * config.data.batch_size * info.world_size / max(elapsed, 1e-9)
        lr = self.optimizer.param_groups[0]["lr"]
        losses = " ".join(f"{k} {mean[k]:.4f}" for k in ("largest", "smallest", "random", "rank",
                                                         "teacher_kd", "grad_norm") if k in mean)
        ties = (f" ties {100 * self.teacher.tie_rate():.1f}%"
                if self.teacher is not None and self.teacher.tie_counts["pairs"] else "")
        line = (f"epoch {epoch + 1} step {step + 1}/{self.steps_per_epoch} | {losses}{ties} | "
                f"lambda {mean['lambda']:.3f} lr {lr:.4g} | {ips:.1f} img/s "
                f"{count / max(elapsed, 1e-9):.2f} steps/s")
        if info.is_main:
            bar.write(line) if config.runtime.progress else self.log(line)
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
        if config.schedule.per == "epoch":
            self.scheduler.step(epoch)
        bar = tqdm(total=steps, initial=first, desc=f"epoch {epoch + 1}/{config.schedule.epochs}",
                   disable=not (info.is_main and config.runtime.progress), file=sys.stderr,
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
                if config.schedule.per == "step":
                    self.scheduler.step_update(self.global_step)
                for k, v in terms.items():
                    self._sums[k] = self._sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if count == config.runtime.log_interval or step + 1 == steps:
                    self._log_line(epoch, step, count, time.perf_counter() - t0, bar)
                    self._sums, count, t0 = {}, 0, time.perf_counter()
                if step + 1 < steps and config.runtime.save_every_steps and \
                        self.global_step % config.runtime.save_every_steps == 0:
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
        ``best.pth`` by Kendall through the saver (main rank only). ``val_gt.jsonl`` is the
        record of what was checked: the best so far is read from it, and a check a kill
        interrupted is made on the next start (``fit``)."""
        t0 = time.perf_counter()
        m = self.rank_check.measure()
        record = {"epoch": epoch + 1, "step": self.global_step,
                  **{k: m[k] for k in ("kendall", "spearman", "pearson", "n",
                                       "split_half_kendall", "split_half_kendall_neg_loss")},
                  "seconds": round(time.perf_counter() - t0, 2)}
        best = self.saver.save(self.state_dict, check=record)
        top = self.val_gt_best
        self.log(f"val-gt after epoch {epoch + 1}: Kendall {m['kendall']:.4f} Spearman "
                 f"{m['spearman']:.4f} Pearson {m['pearson']:.4f} over {m['n']} archs "
                 f"({record['seconds']:.1f} s; the scorer's split-half Kendall "
                 f"{_fmt_or_na(m['split_half_kendall'])})"
                 + (f"; best so far: {self.saver.best}" if best else
                    f"; best stays epoch {top['epoch']} (Kendall {top['kendall']:.4f})"
                    if top else "; no check has a Kendall yet"))
        if self.writer is not None:
            for k in ("kendall", "spearman", "pearson"):
                self.writer.add_scalar(f"val_gt/{k}", m[k], self.global_step)
        return m

    def _ranking_missed(self) -> bool:
        """Whether the run stopped after an epoch whose ``--val-gt`` check did not land."""
        if self.rank_check is None or self.epoch == 0 or self.epoch_step != 0 or \
                not self.rank_check.due(self.epoch - 1, self.config.schedule.epochs):
            return False
        return self.epoch not in self.saver.checked_epochs()

    def fit(self, stop_after_steps: int | None = None) -> Path:
        """Train to ``config.schedule.epochs``; returns the path of ``last.pth``.
        ``stop_after_steps`` ends the run early after that many global steps, after saving
        (tests use it to simulate a crash). The run folder's lock is released on the way
        out, however."""
        try:
            return self._fit(stop_after_steps)
        finally:
            if self.lock is not None:
                self.lock.release()

    def _fit(self, stop_after_steps: int | None) -> Path:
        config, info = self.config, self.info
        if self._ranking_missed():
            self.check_ranking(self.epoch - 1)
        D.barrier(info)
        if self.epoch >= config.schedule.epochs:
            self.log(f"run {config.name!r} already finished {self.epoch} epochs; nothing to do")
            return self.last
        if config.runtime.tensorboard and info.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise TrainError("--tensorboard needs the 'tensorboard' package, which is not "
                                 "installed (pip install tensorboard)") from None
            self.writer = SummaryWriter(str(self.out_dir / "tb"))
        self.saver.save_config()
        if info.is_main:
            lr, batch = config.optim.lr, config.data.batch_size
            self.log(f"training {config.space} supernet: {config.schedule.epochs} epochs x "
                     f"{self.steps_per_epoch} steps, batch {batch} x {info.world_size}, peak lr "
                     f"{lr * batch * info.world_size / 256:.4g} (base {lr} per 256), device "
                     f"{info.device}, loss "
                     f"{self.loss_cfg.to_dict()}, out {self.out_dir}")
        if config.schedule.per == "step":
            self.scheduler.step_update(self.global_step)
        else:
            self.scheduler.step(self.epoch)
        try:
            for epoch in range(self.epoch, config.schedule.epochs):
                first = self.epoch_step if epoch == self.epoch else 0
                if not self.train_one_epoch(epoch, first, stop_after_steps):
                    return self.last
                self.log(f"epoch {epoch + 1}/{config.schedule.epochs} done; checkpoint {self.last}")
                if self.rank_check is not None and \
                        self.rank_check.due(epoch, config.schedule.epochs):
                    self.check_ranking(epoch)
                D.barrier(info)
        finally:
            if self.writer is not None:
                self.writer.close()
        D.cleanup(info)
        return self.last


def _fmt_or_na(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"

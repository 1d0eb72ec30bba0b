"""One bench run's trainer config: the protocol's common config, the method's overrides
and the command line's ``--set`` items; the step engine and the steps it trains."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from track1.bench.errors import BenchError
from track1.bench.methods import METHODS

if TYPE_CHECKING:  # the trainer loads torch-heavy modules: only where a run starts
    from track1.train.config import TrainConfig


def lambda_options(base: dict[str, Any], variant: str | None, epochs: float) -> dict[str, Any]:
    """The protocol's lambda schedule, rescaled by a method's ``lambda_variant``."""
    from track1.bench.protocols import resolve_lambda
    lam = resolve_lambda(base, epochs)
    if variant is None:
        return lam
    if variant == "cap1":
        if lam.get("schedule") == "sine":
            return {**lam, "amplitude": 1.0}
        return {**lam, "cap": 1.0}
    if variant == "ramp":
        return {"schedule": "warmup", "cap": 1.0, "epochs_per_unit": float(epochs)}
    raise ValueError(f"unknown lambda variant {variant!r}")


def bench_config(method: str, seed: int, run_dir: Path, *, data: str, protocol: Any = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, device: str = "auto",
                 progress: bool = True, engine: str = "plain",
                 extra: Sequence[str] = ()) -> TrainConfig:
    """The trainer's resolved config for one bench run (equal for every method but
    the method's own overrides). ``protocol`` (default ``quick``) sets everything the
    explicit arguments do not."""
    from track1.bench.protocols import get_protocol
    from track1.train.config import resolve_config
    if method not in METHODS:
        raise BenchError(f"unknown bench method {method!r}; choose from {sorted(METHODS)}")
    p = protocol or get_protocol("quick")
    epochs = p.epochs if epochs is None else epochs
    warmup = p.warmup_epochs if p.warmup_epochs is not None else (0.0 if epochs < 3 else 1.0)
    overrides = {
        "name": "supernet", "space": "nb201", "seed": seed, "data": {
            "root": data, "image_size": 32, "augment": "crop_flip",
            "batch_size": p.batch_size if batch_size is None else batch_size,
            "subset": ({"fraction": p.train_fraction, "seed": p.split_seed}
                       if p.train_fraction else None)},
        "optim": {"lr": p.lr if lr is None else lr, "weight_decay": p.weight_decay,
                  "momentum": 0.9, "nesterov": p.nesterov},
        "schedule": {"epochs": epochs, "max_steps_per_epoch": steps_per_epoch,
                     "min_lr": p.min_lr, "warmup_epochs": warmup, "per": p.sched_per},
        "runtime": {"device": device, "ckpt_dir": str(run_dir / "ckpt"), "resume": "auto",
                    "progress": progress, "log_interval": 50, "save_every_steps": 100,
                    "engine": engine},
    }
    spec = METHODS[method]
    overrides["model"] = p.model()
    overrides["lambda"] = lambda_options(p.lam, spec.get("lambda_variant"), epochs)
    for section, values in spec.items():
        if section not in ("lambda_variant", "fewshot"):
            overrides.update({f"{section}.{key}": copy.deepcopy(value)
                              for key, value in values.items()})
    # --set items last, so they override protocol and method alike
    return resolve_config(None, overrides, list(extra))


def choose_engine(engine: str, config: TrainConfig) -> str:
    """``auto``: the static-graph step on CUDA where the method's step is covered (SPOS,
    reuse-mode hinge/margin pairs), the plain step otherwise (on a CPU the static graph's
    every-op forward costs more FLOPs than it saves launches)."""
    if engine != "auto":
        return engine
    from track1.nb201.fast import FastPathError, check_supported
    if config.runtime.device == "cpu" or not torch.cuda.is_available():
        return "plain"
    try:
        check_supported(config.loss, clip_grad=config.optim.clip_grad)
    except FastPathError:
        return "plain"
    return "fast"


def steps_per_epoch_of(config: dict) -> int:
    """The trainer's steps per epoch for ``config`` (drop_last, one process)."""
    from track1.data import resolve_source
    from track1.data.split import training_subset
    n = len(resolve_source(config.data.root, "train"))
    subset = training_subset(n, config.data.subset)
    steps = (n if subset is None else len(subset)) // config.data.batch_size
    if config.schedule.max_steps_per_epoch:
        steps = min(steps, int(config.schedule.max_steps_per_epoch))
    return steps


def fraction_tag(fraction: float) -> str:
    """File-name tag of a budget fraction: '' for the whole run, '_at010' for 10%."""
    return "" if fraction >= 1.0 else f"_at{int(round(fraction * 100)):03d}"


def paths_per_step(config: TrainConfig) -> int:
    """Forward+backward paths per step of a bench method (SPOS / reuse ranking)."""
    return int(config.loss.num_random)

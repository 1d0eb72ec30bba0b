"""Training configuration: built-in defaults <- YAML file <- command line.

As in timm, a YAML file supplies the defaults and the command line overrides them. The
result is a ``TrainConfig``: one dataclass per section (``loss``, ``sampler``,
``teacher``, ``lambda``, ``train_subset``), the defaults in one place (the fields), and an
unknown key refused at every depth with its full path and the section's known keys
(``model`` is checked against the chosen supernet's constructor). Its plain mapping is
saved as ``config.yaml`` beside the checkpoint and inside it, so a run is reproducible,
resumption compares like with like, and the evaluator can rebuild the supernet from
``space`` and ``model``. Overrides use dotted keys: ``--set loss.ranking=hinge --set
teacher.priors=zen``.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from track1.infra.atomic import atomic_write
from track1.nas.schedules import Schedule, make_schedule
from track1.nas.step import LossConfig
from track1.infra.sections import (SectionError, build_section, check_choice, check_flag,
                                   check_number, section_to_dict)
from track1.train.errors import TrainError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


#: the largest image side a run accepts (ImageNet trains at 224; 2,048 leaves room)
MAX_IMAGE_SIZE = 2048


class TrainConfigError(TrainError, SectionError):
    """A bad config file, key or value (one line, names the key)."""


# ------------------------------------------------------------------ the sections
@dataclass
class SamplerConfig:
    """Which subnets the random slots of a step train (``track1.nas.sampler``)."""

    threshold: float = 0.0          # margin sampler: minimum distance between the step's subnets
    distance: str | None = None     # the space's distance for the threshold (None: its default)
    kind: str = "uniform"           # uniform | list | flops_balanced | size_biased
    archs: str | None = None        # kind list: an arch list file (None: the official list)
    bins: int = 10                  # kind flops_balanced: equal-count FLOPs bands
    bias: int = 2                   # kind size_biased: the largest of this many draws

    def __post_init__(self) -> None:
        from track1.nas.distributions import SAMPLER_KINDS
        check_number(self.threshold, "sampler.threshold", low=0)
        check_choice(self.kind, "sampler.kind", SAMPLER_KINDS)
        # bands beyond the 4,000-arch pool are empty; a bias of 1e9 draws hung every step
        check_number(self.bins, "sampler.bins", low=2, integer=True, high=1000)
        check_number(self.bias, "sampler.bias", low=1, integer=True, high=1000)
        if self.archs is not None and self.kind != "list":
            raise SectionError(f"config 'sampler.archs' is read by sampler.kind list only "
                               f"(kind is {self.kind!r}): set kind: list, or drop archs")


@dataclass
class ZenConfig:
    """Zen-score probe of the ranking teacher (``track1.proxies.zen``)."""

    batch: int = 8
    resolution: int = 32
    repeats: int = 1
    residual: bool = True

    def __post_init__(self) -> None:
        for key in ("batch", "resolution", "repeats"):
            check_number(getattr(self, key), f"teacher.zen.{key}", low=1, integer=True)
        check_flag(self.residual, "teacher.zen.residual")


@dataclass
class TeacherConfig:
    """The zero-cost proxies whose ranking the supernet distils (``track1.nas.teacher``)."""

    priors: str | list[str] = "flops"   # flops | zen | params | "flops+zen" | [...]
    tie_break: str | None = None        # a second prior ordering the archs the priors tie
    cache: str | None = None            # JSONL of precomputed scores (track1 zen-cache)
    reference: int = 256                # az_nas: archs every arch is ranked against
    zen: ZenConfig = field(default_factory=ZenConfig)

    def __post_init__(self) -> None:
        check_number(self.reference, "teacher.reference", low=2, integer=True)


@dataclass
class LambdaConfig:
    """lambda(epoch), the weight of the ranking term (``track1.nas.schedules``)."""

    schedule: str = "warmup"            # constant | warmup | sine | multistage
    value: float = 1.0                  # constant
    cap: float = 2.0                    # warmup: min(cap, e / epochs_per_unit) (PGONAS)
    epochs_per_unit: float = 10.0
    amplitude: float = 2.0              # sine: amplitude * sin(frequency * pi * e / E)
    frequency: float = 0.8
    milestones: list[float] | None = None   # multistage (None: thirds of the run)
    values: list[float] | None = None       # multistage (None: 0, 1, 2)

    def build(self, total_epochs: float) -> Schedule:
        """The schedule as a function of the (fractional) epoch."""
        return make_schedule(self.schedule, total_epochs, value=self.value, cap=self.cap,
                             epochs_per_unit=self.epochs_per_unit, amplitude=self.amplitude,
                             frequency=self.frequency, milestones=self.milestones,
                             values=self.values)


@dataclass
class PartConfig:
    """Train one part of a few-shot split (``track1.nas.fewshot``): the archs whose genes
    ``genes`` take the values ``values``."""

    genes: list[int] = field(default_factory=list)
    values: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        for key in ("genes", "values"):   # a value 2.5 was truncated to 2 without a word
            items = getattr(self, key)
            if not isinstance(items, list) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise SectionError(f"config 'part.{key}' must be a list of integers, got "
                                   f"{items!r}")


@dataclass
class TrainSubsetConfig:
    """Train on a seeded part of the training images only (the NB201 protocols' half)."""

    fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise SectionError(f"config 'train_subset.fraction' must be in (0, 1), got {f!r}")
        check_number(self.seed, "train_subset.seed", integer=True)


@dataclass
class ValGtConfig:
    """Ranking against a ground-truth file during training (``track1.train.rank_check``);
    off while ``file`` is None. Measured only: nothing of it reaches the loss."""

    file: str | None = None         # ground truth: challenge JSON, or CSV with arch + accuracy
    column: str | None = None       # CSV accuracy column (None: acc, else cifar10_valid_acc)
    limit: int | None = 100         # a seeded subset of this many archs (None: every arch)
    seed: int = 0
    every: int = 1                  # epochs between checks (and always after the last)
    eval_images: int = 500          # held-out images per arch
    calib_images: int = 256         # training images for BN re-calibration
    bn_mode: str = "recalibrate"
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.file is None:
            return
        for key in ("every", "eval_images", "calib_images", "batch_size"):
            check_number(getattr(self, key), f"val_gt.{key}", low=1, integer=True)
        if self.limit is not None:
            check_number(self.limit, "val_gt.limit", low=2, integer=True)
        from track1.scoring.modes import BN_MODES
        check_choice(self.bn_mode, "val_gt.bn_mode", BN_MODES)


@dataclass
class TrainConfig:
    """One training run, resolved: built-in defaults <- YAML <- command line."""

    name: str = "run"                  # run folder under ckpt_dir
    space: str = "track1_resnet48"     # a registered space (track1.registry.list_spaces)
    model: dict[str, Any] = field(default_factory=lambda: {"num_classes": 10, "activation": "relu"})
    data: str | None = None            # dataset root / tar; None = embedded CIFAR-10 subset
    image_size: int = 32
    multiscale: list[int] | None = None   # e.g. [192, 224, 256]: one size per step
    augment: str = "crop_flip"         # rrc | crop_flip | none
    batch_size: int = 64               # per rank
    epochs: int = 3
    max_steps_per_epoch: int | None = None   # cap (tests, benchmarks)
    lr: float = 0.1                    # base lr for a global batch of 256 (scaled linearly)
    min_lr: float = 0.0
    warmup_epochs: float = 1.0
    warmup_lr: float = 1.0e-5
    sched_per: str = "step"            # step | epoch
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    zero_init_residual: bool = False   # start each residual branch at zero (last BN gamma = 0)
    clip_grad: float | None = None     # max global gradient norm per optimiser step (None = off)
    amp: bool = True                   # bf16 autocast, CUDA only
    channels_last: bool = True         # every device (CPU too: tools/bench_train.py --layouts)
    device: str = "auto"               # auto | cpu | cuda
    workers: int = 4
    threads: int | None = None         # torch CPU threads (None = torch's default)
    seed: int = 0
    engine: str = "plain"              # plain | fast (static-graph step: NB201, SPOS / reuse pairs)
    cuda_graph: bool = True            # engine fast on CUDA: capture the step as one CUDA graph
    train_subset: TrainSubsetConfig | None = None
    subnet: str | None = None          # train this one arch alone (``track1 train-subnet``)
    part: PartConfig | None = None     # train one part of a few-shot split
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    lambda_: LambdaConfig = field(default_factory=LambdaConfig, metadata={"key": "lambda"})
    val_gt: ValGtConfig = field(default_factory=ValGtConfig)
    log_interval: int = 10
    save_every_steps: int = 50         # mid-epoch checkpoints (0 = epoch ends only)
    ckpt_dir: str | None = None        # default track1.infra.paths.ckpt_dir()
    init_from: str | None = None       # .pdparams (organisers' ResNet-48) or a track1 .pth
    init_head: bool = True             # also copy the classifier (class counts must agree)
    init_reorder: bool = False         # after --init-from: channels re-ordered by importance
    kd_teacher: str | None = None      # loss.teacher_kd's frozen teacher: .pdparams or a .pth
    kd_teacher_arch: str | None = None  # the teacher's subnet (None: the largest)
    kd_teacher_bn: str = "auto"        # auto | stored | batch (track1.train.kd_teacher)
    resume: str | None = None          # path | auto
    tensorboard: bool = False
    progress: bool = True

    @property
    def num_classes(self) -> int:
        return int(self.model["num_classes"])

    def __post_init__(self) -> None:
        """Every value the fields' types cannot promise, checked before any work, a group
        of keys at a time (a wrong type used to fail as a traceback, some only after
        training had started). The model options are checked against the space's
        supernet in ``from_dict`` (that needs the registry)."""
        self._check_optim()
        self._check_schedule()
        self._check_runtime()
        self._check_init_and_teachers()

    def _check_optim(self) -> None:
        check_number(self.batch_size, "batch_size", low=0, low_open=True, integer=True)
        check_number(self.lr, "lr", low=0, low_open=True)
        for key in ("min_lr", "warmup_lr", "weight_decay", "momentum"):
            check_number(getattr(self, key), key, low=0)
        if not self.momentum < 1:
            raise TrainConfigError(f"config 'momentum' must be in [0, 1), got {self.momentum!r}")
        check_flag(self.nesterov, "nesterov")
        if self.clip_grad is not None:
            check_number(self.clip_grad, "clip_grad", low=0, low_open=True)

    def _check_schedule(self) -> None:
        for key in ("epochs", "log_interval"):
            check_number(getattr(self, key), key, low=0, low_open=True, integer=True)
        # a 100,000-px image size ended in an allocation traceback (issue 19, L7)
        check_number(self.image_size, "image_size", low=0, low_open=True, integer=True,
                     high=MAX_IMAGE_SIZE)
        for i, size in enumerate(self.multiscale or []):
            check_number(size, f"multiscale[{i}]", low=0, low_open=True, integer=True,
                         high=MAX_IMAGE_SIZE)
        check_number(self.warmup_epochs, "warmup_epochs", low=0)
        check_number(self.save_every_steps, "save_every_steps", low=0, integer=True)
        if self.max_steps_per_epoch is not None:
            check_number(self.max_steps_per_epoch, "max_steps_per_epoch", low=0, low_open=True,
                         integer=True)
        check_choice(self.sched_per, "sched_per", ("step", "epoch"))

    def _check_runtime(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or name in (".", "..") or \
                any(sep in name for sep in ("/", "\\")):  # ../../x wrote outside ckpt_dir
            raise TrainConfigError(f"config 'name' must be a plain folder name (no '/', not "
                                   f"'..'), got {name!r}")
        check_number(self.seed, "seed", integer=True)
        check_number(self.workers, "workers", low=0, integer=True)
        if self.threads is not None:
            check_number(self.threads, "threads", low=0, low_open=True, integer=True)
        check_choice(self.engine, "engine", ("plain", "fast"))
        check_choice(self.device, "device", ("auto", "cpu", "cuda"))
        for key in ("amp", "channels_last", "cuda_graph", "tensorboard", "progress"):
            check_flag(getattr(self, key), key)
        if self.val_gt.file is not None and self.engine == "fast":
            raise TrainConfigError("config 'val_gt' needs engine plain (the static-graph step "
                                   "holds the weights in flat buffers the scorer would move)")

    def _check_init_and_teachers(self) -> None:
        # Track 1 codes are digits: YAML reads `--set kd_teacher_arch=1252...` as an integer
        for key in ("kd_teacher_arch", "subnet"):
            if isinstance(getattr(self, key), int) and not isinstance(getattr(self, key), bool):
                setattr(self, key, str(getattr(self, key)))
        for key in ("zero_init_residual", "init_head", "init_reorder"):
            check_flag(getattr(self, key), key)
        if self.subnet is not None:
            loss = self.loss
            if not isinstance(self.subnet, str) or loss.largest or loss.smallest or \
                    loss.num_random != 1 or loss.ranking != "none" or loss.distill:
                raise TrainConfigError("config 'subnet' trains one arch alone: it needs a code "
                                       "and loss.largest, loss.smallest, loss.distill false, "
                                       "loss.num_random 1, loss.ranking none (track1 "
                                       "train-subnet sets them)")
        for key in ("kd_teacher", "kd_teacher_arch"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise TrainConfigError(f"config {key!r} must be a string, got "
                                       f"{getattr(self, key)!r}")
        check_choice(self.kd_teacher_bn, "kd_teacher_bn", ("auto", "stored", "batch"))
        if (self.kd_teacher is not None) != (self.loss.teacher_kd > 0):
            raise TrainConfigError("config 'kd_teacher' (the teacher's file) and "
                                   "'loss.teacher_kd' (its weight, > 0) go together: set both "
                                   "or neither")
        if self.kd_teacher_arch is not None and self.kd_teacher is None:
            raise TrainConfigError("config 'kd_teacher_arch' needs 'kd_teacher'")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """The typed config of a resolved mapping; ``TrainConfigError`` names the first
        unknown key (full path, with the section's known keys) or bad value."""
        try:
            config = build_section(cls, data)
        except SectionError as e:
            raise TrainConfigError(str(e)) from None
        check_model(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        """The plain nested mapping (saved as ``config.yaml`` and inside checkpoints)."""
        return section_to_dict(self)


#: the built-in defaults as a mapping (the base YAML files and ``--set`` items merge into)
DEFAULTS: dict[str, Any] = TrainConfig().to_dict()


def deep_merge(base: dict, override: dict, path: str = "") -> dict:
    """``base`` updated by ``override`` recursively; unknown top-level keys are refused
    (a typo would otherwise be silently ignored)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        where = f"{path}{k}"
        if path == "" and k not in DEFAULTS:
            raise TrainConfigError(f"unknown config key {where!r}; known: {sorted(DEFAULTS)}")
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v, where + ".")
        else:
            out[k] = copy.deepcopy(v)
    return out


def find_config(name_or_path: str) -> Path:
    """A YAML path, or the name of a shipped config (``demo`` -> configs/demo.yaml)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml"))
    raise TrainConfigError(f"config not found: {name_or_path} (a YAML path, or one of {known})")


def load_yaml(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise TrainConfigError(f"cannot parse config {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise TrainConfigError(f"config {path} must be a YAML mapping")
    return data


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: 3, 0.1, true, null, [1, 2], hinge."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+", value):
        return float(value)  # YAML 1.1 reads "1e-9" (no dot) as a string
    return value


def set_dotted(config: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] not in DEFAULTS:
        raise TrainConfigError(f"unknown config key {key!r}; known top-level keys: {sorted(DEFAULTS)}")
    node = config
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        if not isinstance(node[p], dict):
            raise TrainConfigError(f"cannot set {key!r}: {p!r} is not a section")
        node = node[p]
    node[parts[-1]] = value


def apply_sets(config: dict, sets: list[str]) -> None:
    """Apply ``--set key=value`` items (dotted keys, YAML values) in order."""
    for item in sets:
        if "=" not in item:
            raise TrainConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        set_dotted(config, key.strip(), parse_value(text))


def resolve_config(config_file: str | None = None, overrides: dict[str, Any] | None = None,
                   sets: list[str] | None = None) -> TrainConfig:
    """DEFAULTS <- YAML file <- ``overrides`` (dotted key -> value; None skipped) <- ``--set
    k=v``, typed and checked (``TrainConfigError`` before any work)."""
    config = copy.deepcopy(DEFAULTS)
    if config_file:
        config = deep_merge(config, load_yaml(find_config(config_file)))
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(config, key, value)
    apply_sets(config, sets or [])
    return TrainConfig.from_dict(config)


def check_model(config: TrainConfig) -> None:
    """The space is registered and the ``model:`` section holds only keyword arguments
    its supernet takes, with a positive integer class count."""
    from track1.registry import list_spaces, supernet_options
    if config.space not in list_spaces():
        raise TrainConfigError(f"unknown space {config.space!r}; known: {list_spaces()}")
    if not isinstance(config.model, dict) or "num_classes" not in config.model:
        raise TrainConfigError("config 'model' must be a mapping with num_classes")
    known = supernet_options(config.space)
    unknown = [k for k in config.model if k not in known]
    if unknown:
        raise TrainConfigError(f"unknown config key {'model.' + str(unknown[0])!r}; known keys "
                               f"of 'model': {sorted(known)}")
    try:
        check_number(config.model["num_classes"], "model.num_classes", low=0, low_open=True,
                     integer=True)
    except SectionError as e:
        raise TrainConfigError(str(e)) from None


def save_yaml(config: TrainConfig | dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    data = config.to_dict() if isinstance(config, TrainConfig) else config
    atomic_write(path, lambda f: yaml.safe_dump(data, f, sort_keys=False), binary=False)

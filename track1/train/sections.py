"""The sections of a training config, one dataclass each, each checking its own values.

``TrainConfig`` (``track1.train.config``) holds them: what the run trains on (``data``),
how it optimises (``optim``) and over how long (``schedule``), where its weights start
(``init``), the frozen teacher of ``loss.teacher_kd`` (``kd_teacher``), how the machine runs
it (``runtime``: nothing there changes what is learnt, so a run may resume with other
values), and the search-specific parts: the subnet ``sampler``, the ranking ``teacher``,
its weight ``lambda``, the ground-truth check ``val_gt``, a few-shot ``part``. The loss
terms are ``track1.nas.step.LossConfig``. An unknown key is refused at any depth by
``track1.infra.sections.build_section``; a value a section refuses names its dotted key.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from track1.infra.sections import (SectionError, check_choice, check_flag, check_number)
from track1.nas.schedules import Schedule, make_schedule

#: the largest image side a run accepts (ImageNet trains at 224; 2,048 leaves room)
MAX_IMAGE_SIZE = 2048


def check_optional_str(value: object, where: str) -> None:
    """``value`` is a string or None (a file path, a code), else one ``SectionError``."""
    if value is not None and not isinstance(value, str):
        raise SectionError(f"config {where!r} must be a string, got {value!r}")


def code_text(value: object) -> object:
    """A Track 1 code as text: YAML reads ``--set kd_teacher.arch=1252...`` (digits) as an
    integer, which every code check refused."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


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
    reference: int = 256                # az_nas and mixes: archs every arch is ranked against
    mix: str = "reference"              # several priors: ranks among the reference | group
    probe: str = "data"                 # computed proxies see: data (real images) | gaussian
    resolution: int = 32                # of the probe images (MeCo on ResNet-48 needs 64)
    zen: ZenConfig = field(default_factory=ZenConfig)

    def __post_init__(self) -> None:
        check_number(self.reference, "teacher.reference", low=2, integer=True)
        check_number(self.resolution, "teacher.resolution", low=8, integer=True)
        check_choice(self.mix, "teacher.mix", ("reference", "group"))   # teacher.MIXES
        check_choice(self.probe, "teacher.probe", ("data", "gaussian"))  # teacher.PROBES


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
            raise SectionError(f"config 'data.subset.fraction' must be in (0, 1), got {f!r}")
        check_number(self.seed, "data.subset.seed", integer=True)


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
class DataConfig:
    """The training images and how they are batched (``track1.train.builders``)."""

    root: str | None = None            # dataset root / tar; None = embedded CIFAR-10 subset
    image_size: int = 32
    multiscale: list[int] | None = None   # e.g. [192, 224, 256]: one size per step
    augment: str = "crop_flip"         # rrc | crop_flip | none
    batch_size: int = 64               # per rank
    workers: int = 4                   # loader workers (streamed datasets)
    subset: TrainSubsetConfig | None = None   # a seeded part of the images (NB201 protocols)

    def __post_init__(self) -> None:
        check_optional_str(self.root, "data.root")
        # a 100,000-px image size ended in an allocation traceback (issue 19, L7)
        check_number(self.image_size, "data.image_size", low=0, low_open=True, integer=True,
                     high=MAX_IMAGE_SIZE)
        for i, size in enumerate(self.multiscale or []):
            check_number(size, f"data.multiscale[{i}]", low=0, low_open=True, integer=True,
                         high=MAX_IMAGE_SIZE)
        check_choice(self.augment, "data.augment", ("rrc", "crop_flip", "none"))
        check_number(self.batch_size, "data.batch_size", low=0, low_open=True, integer=True)
        check_number(self.workers, "data.workers", low=0, integer=True)


@dataclass
class OptimConfig:
    """SGD and its step (``track1.train.builders.build_optimizer``)."""

    lr: float = 0.1                    # base lr for a global batch of 256 (scaled linearly)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    clip_grad: float | None = None     # max global gradient norm per step (None = off)

    def __post_init__(self) -> None:
        check_number(self.lr, "optim.lr", low=0, low_open=True)
        check_number(self.weight_decay, "optim.weight_decay", low=0)
        check_number(self.momentum, "optim.momentum", low=0)
        if not self.momentum < 1:
            raise SectionError(f"config 'optim.momentum' must be in [0, 1), got "
                               f"{self.momentum!r}")
        check_flag(self.nesterov, "optim.nesterov")
        if self.clip_grad is not None:
            check_number(self.clip_grad, "optim.clip_grad", low=0, low_open=True)


@dataclass
class ScheduleConfig:
    """How long the run trains and the lr over it: warm-up, then cosine (timm's)."""

    epochs: int = 3
    max_steps_per_epoch: int | None = None   # cap (tests, benchmarks)
    warmup_epochs: float = 1.0
    warmup_lr: float = 1.0e-5
    min_lr: float = 0.0
    per: str = "step"                  # step | epoch: when the lr moves

    def __post_init__(self) -> None:
        check_number(self.epochs, "schedule.epochs", low=0, low_open=True, integer=True)
        if self.max_steps_per_epoch is not None:
            check_number(self.max_steps_per_epoch, "schedule.max_steps_per_epoch", low=0,
                         low_open=True, integer=True)
        for key in ("warmup_epochs", "warmup_lr", "min_lr"):
            check_number(getattr(self, key), f"schedule.{key}", low=0)
        check_choice(self.per, "schedule.per", ("step", "epoch"))


@dataclass
class InitConfig:
    """Where the weights start (``track1.train.initialise``)."""

    file: str | None = None            # .pdparams (organisers' ResNet-48) or a track1 .pth
    head: bool = True                  # also copy the classifier (class counts must agree)
    reorder: bool = False              # after file: channels re-ordered by importance
    zero_residual: bool = False        # each residual branch starts at zero (last BN gamma 0)

    def __post_init__(self) -> None:
        check_optional_str(self.file, "init.file")
        for key in ("head", "reorder", "zero_residual"):
            check_flag(getattr(self, key), f"init.{key}")


@dataclass
class KdTeacherConfig:
    """The frozen network of ``loss.teacher_kd`` (``track1.train.kd_teacher``)."""

    file: str | None = None            # .pdparams or a track1 .pth (None: no teacher)
    arch: str | None = None            # the teacher's subnet (None: the largest)
    bn: str = "auto"                   # auto | stored | batch

    def __post_init__(self) -> None:
        self.arch = code_text(self.arch)
        check_optional_str(self.file, "kd_teacher.file")
        check_optional_str(self.arch, "kd_teacher.arch")
        check_choice(self.bn, "kd_teacher.bn", ("auto", "stored", "batch"))
        if self.arch is not None and self.file is None:
            raise SectionError("config 'kd_teacher.arch' needs 'kd_teacher.file'")


@dataclass
class RuntimeConfig:
    """How this machine runs the run: device, precision, engine, logging, checkpoints.
    Nothing here changes what is learnt, so a run resumes with other values."""

    device: str = "auto"               # auto | cpu | cuda
    amp: bool = True                   # bf16 autocast, CUDA only
    channels_last: bool = True         # every device (CPU too: tools/bench_train.py --layouts)
    engine: str = "plain"              # plain | fast (static-graph step: NB201, SPOS / reuse pairs)
    cuda_graph: bool = True            # engine fast on CUDA: capture the step as one CUDA graph
    threads: int | None = None         # torch CPU threads (None = torch's default)
    log_interval: int = 10
    save_every_steps: int = 50         # mid-epoch checkpoints (0 = epoch ends only)
    ckpt_dir: str | None = None        # default track1.infra.paths.ckpt_dir()
    resume: str | None = None          # path | auto
    tensorboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        check_choice(self.device, "runtime.device", ("auto", "cpu", "cuda"))
        check_choice(self.engine, "runtime.engine", ("plain", "fast"))
        for key in ("amp", "channels_last", "cuda_graph", "tensorboard", "progress"):
            check_flag(getattr(self, key), f"runtime.{key}")
        if self.threads is not None:
            check_number(self.threads, "runtime.threads", low=0, low_open=True, integer=True)
        check_number(self.log_interval, "runtime.log_interval", low=0, low_open=True,
                     integer=True)
        check_number(self.save_every_steps, "runtime.save_every_steps", low=0, integer=True)
        for key in ("ckpt_dir", "resume"):
            check_optional_str(getattr(self, key), f"runtime.{key}")

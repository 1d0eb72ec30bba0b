"""Training configuration: built-in defaults <- YAML file <- command line.

As in timm, a YAML file supplies the defaults and the command line overrides them. The
result is a ``TrainConfig`` of typed sections (``track1.train.sections``: data, optim,
schedule, init, loss, sampler, teacher, lambda, kd_teacher, val_gt, part, runtime) beside
the run's name, space, model options and seed: the defaults in one place (the fields),
each section checking its own values, and an unknown key refused at every depth with its
full path and the section's known keys (``model`` is checked against the chosen
supernet's constructor, key and type). Its plain mapping is saved as ``config.yaml``
beside the checkpoint and inside it, so a run is reproducible, resumption compares like
with like, and the evaluator can rebuild the supernet from ``space`` and ``model``.
Overrides use dotted keys: ``--set optim.lr=0.05 --set loss.ranking=hinge``.

The flat keys of earlier versions (``lr``, ``epochs``, ``init_from``, ``kd_teacher_arch``,
...) are still read, in YAML files, ``--set`` items and saved checkpoints alike: each lands
in its section (``LEGACY_KEYS``), so old configs load and old checkpoints resume.
"""
from __future__ import annotations

import copy
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from track1.infra.atomic import atomic_write
from track1.infra.sections import (SectionError, build_section, check_number,
                                   section_to_dict)
from track1.nas.step import LossConfig
from track1.nas.teacher import COST_PRIORS, parse_priors
from track1.train.errors import TrainError
from track1.train.sections import (DataConfig, InitConfig, KdTeacherConfig, LambdaConfig,
                                   OptimConfig, PartConfig, RuntimeConfig, SamplerConfig,
                                   ScheduleConfig, TeacherConfig, ValGtConfig, code_text)

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class TrainConfigError(TrainError, SectionError):
    """A bad config file, key or value (one line, names the key)."""


#: the flat keys of earlier versions -> their dotted place now
LEGACY_KEYS: dict[str, str] = {
    **{k: f"data.{k}" for k in ("image_size", "multiscale", "augment", "batch_size",
                                "workers")},
    "data": "data.root", "train_subset": "data.subset",
    **{k: f"optim.{k}" for k in ("lr", "momentum", "nesterov", "weight_decay", "clip_grad")},
    **{k: f"schedule.{k}" for k in ("epochs", "max_steps_per_epoch", "warmup_epochs",
                                    "warmup_lr", "min_lr")},
    "sched_per": "schedule.per",
    "init_from": "init.file", "init_head": "init.head", "init_reorder": "init.reorder",
    "zero_init_residual": "init.zero_residual",
    "kd_teacher": "kd_teacher.file", "kd_teacher_arch": "kd_teacher.arch",
    "kd_teacher_bn": "kd_teacher.bn",
    **{k: f"runtime.{k}" for k in ("device", "amp", "channels_last", "engine", "cuda_graph",
                                   "threads", "log_interval", "save_every_steps", "ckpt_dir",
                                   "resume", "tensorboard", "progress")},
}


def legacy_path(key: str, value: Any) -> str | None:
    """The dotted place of a top-level ``key: value`` written the old flat way, or None.
    ``data`` and ``kd_teacher`` are both an old flat key (a path) and a section now: a
    mapping is the section, anything else the old path."""
    if key not in LEGACY_KEYS or (key in ("data", "kd_teacher") and isinstance(value, Mapping)):
        return None
    return LEGACY_KEYS[key]


def upgrade_flat_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every old flat key moved into its section (a copy; new-style
    mappings come back equal). A key given both ways is refused."""
    out = {k: copy.deepcopy(v) for k, v in data.items() if legacy_path(k, v) is None}
    for key, value in data.items():
        path = legacy_path(key, value)
        if path is None:
            continue
        section, leaf = path.split(".")
        node = out.get(section)
        if node is None:
            node = out[section] = {}
        if not isinstance(node, dict):
            raise TrainConfigError(f"config {section!r} must be a mapping, got {node!r}")
        if leaf in node:
            raise TrainConfigError(f"config gives both {key!r} (the old flat key) and "
                                   f"{path!r}: keep one")
        node[leaf] = copy.deepcopy(value)
    return out


def as_trained(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint's saved config as the run it describes was trained: its flat keys in
    their sections (``upgrade_flat_keys``), and the keys added since whose default would
    change what it did set to what it did. Before ``teacher.mix`` several priors were
    mixed inside the compared group; before ``teacher.probe`` the computed proxies saw 8
    Gaussian images."""
    out = upgrade_flat_keys(saved)
    teacher = out.get("teacher")
    if not isinstance(teacher, Mapping):
        return out
    try:
        names, _ = parse_priors(teacher.get("priors", "flops"))
    except ValueError:   # not a teacher this version reads: compared as it is
        return out
    # the priors that see no probe batch: the analytic costs, and Zen-score (its own)
    computed = set(names + [str(teacher.get("tie_break") or "flops")]) - {
        *COST_PRIORS, "zen", "none"}
    added = {"mix": "group" if len(names) > 1 else None,
             "probe": "gaussian" if computed else None}
    out["teacher"] = {**teacher, **{k: v for k, v in added.items()
                                    if v is not None and k not in teacher}}
    return out


@dataclass
class TrainConfig:
    """One training run, resolved: built-in defaults <- YAML <- command line."""

    name: str = "run"                  # run folder under runtime.ckpt_dir
    space: str = "track1_resnet48"     # a registered space (track1.registry.list_spaces)
    # the space's supernet options, checked against its constructor (check_model)
    model: dict[str, Any] = field(default_factory=lambda: {"num_classes": 10, "activation": "relu"})
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    init: InitConfig = field(default_factory=InitConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    lambda_: LambdaConfig = field(default_factory=LambdaConfig, metadata={"key": "lambda"})
    kd_teacher: KdTeacherConfig = field(default_factory=KdTeacherConfig)
    val_gt: ValGtConfig = field(default_factory=ValGtConfig)
    subnet: str | None = None          # train this one arch alone (``track1 train-subnet``)
    part: PartConfig | None = None     # train one part of a few-shot split
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def num_classes(self) -> int:
        return int(self.model["num_classes"])

    def __post_init__(self) -> None:
        """The run's own values and what one section asks of another; each section has
        checked its own values already. The model options are checked against the space's
        supernet in ``from_dict`` (that needs the registry)."""
        name = self.name
        if not isinstance(name, str) or not name or name in (".", "..") or \
                any(sep in name for sep in ("/", "\\")):  # ../../x wrote outside ckpt_dir
            raise TrainConfigError(f"config 'name' must be a plain folder name (no '/', not "
                                   f"'..'), got {name!r}")
        check_number(self.seed, "seed", integer=True)
        if self.val_gt.file is not None and self.runtime.engine == "fast":
            raise TrainConfigError("config 'val_gt' needs runtime.engine plain (the "
                                   "static-graph step holds the weights in flat buffers the "
                                   "scorer would move)")
        self.subnet = code_text(self.subnet)
        if self.subnet is not None:
            loss = self.loss
            if not isinstance(self.subnet, str) or loss.largest or loss.smallest or \
                    loss.num_random != 1 or loss.ranking != "none" or loss.distill:
                raise TrainConfigError("config 'subnet' trains one arch alone: it needs a code "
                                       "and loss.largest, loss.smallest, loss.distill false, "
                                       "loss.num_random 1, loss.ranking none (track1 "
                                       "train-subnet sets them)")
        if (self.kd_teacher.file is not None) != (self.loss.teacher_kd > 0):
            raise TrainConfigError("config 'kd_teacher.file' (the teacher's file) and "
                                   "'loss.teacher_kd' (its weight, > 0) go together: set both "
                                   "or neither")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """The typed config of a resolved mapping (the flat keys of earlier versions
        upgraded, ``upgrade_flat_keys``); ``TrainConfigError`` names the first unknown key
        (full path, with the section's known keys) or bad value."""
        try:
            config = build_section(cls, upgrade_flat_keys(data))
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
    """``base`` updated by ``override`` recursively (its old flat keys upgraded first);
    unknown top-level keys are refused (a typo would otherwise be silently ignored)."""
    out = copy.deepcopy(base)
    if path == "":
        override = upgrade_flat_keys(override)
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
    """Set ``key`` (dotted; an old flat key lands in its section) to ``value``."""
    parts = key.split(".")
    if len(parts) == 1 and legacy_path(key, value) is not None:
        parts = legacy_path(key, value).split(".")
    elif parts[0] in LEGACY_KEYS and parts[0] not in DEFAULTS:   # train_subset.fraction
        parts = LEGACY_KEYS[parts[0]].split(".") + parts[1:]
    if parts[0] not in DEFAULTS:
        raise TrainConfigError(f"unknown config key {key!r}; known top-level keys: "
                               f"{sorted(DEFAULTS)}")
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
    its supernet takes, each of its default's type (a float option takes an integer too),
    with a positive integer class count."""
    from track1.registry import list_spaces, supernet_defaults
    if config.space not in list_spaces():
        raise TrainConfigError(f"unknown space {config.space!r}; known: {list_spaces()}")
    if not isinstance(config.model, dict) or "num_classes" not in config.model:
        raise TrainConfigError("config 'model' must be a mapping with num_classes")
    defaults = supernet_defaults(config.space)
    unknown = [k for k in config.model if k not in defaults]
    if unknown:
        raise TrainConfigError(f"unknown config key {'model.' + str(unknown[0])!r}; known keys "
                               f"of 'model': {sorted(defaults)}")
    for key, value in config.model.items():
        kind = type(defaults[key])
        if defaults[key] in (None, inspect.Parameter.empty) or value is None:
            continue   # no default to read a type from (ops: a list or None)
        if kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if not ok:
            raise TrainConfigError(f"config 'model.{key}' must be a {kind.__name__} (the "
                                   f"{config.space} supernet's option), got {value!r}")
    try:
        check_number(config.model["num_classes"], "model.num_classes", low=0, low_open=True,
                     integer=True)
    except SectionError as e:
        raise TrainConfigError(str(e)) from None


def save_yaml(config: TrainConfig | dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    data = config.to_dict() if isinstance(config, TrainConfig) else config
    atomic_write(path, lambda f: yaml.safe_dump(data, f, sort_keys=False), binary=False)

"""Training configuration: built-in defaults <- YAML file <- command line.

As in timm, a YAML file supplies the defaults and the command line overrides them; the
resolved config (a plain nested dict) is saved as ``config.yaml`` beside the checkpoint
and inside it, so a run is reproducible and the evaluator can rebuild the supernet
(``track1.registry.build_supernet(config)`` reads ``space`` and ``model``).
Overrides use dotted keys: ``--set loss.ranking=hinge --set teacher.priors=zen``.
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

from track1.atomic import atomic_write
from track1.train.errors import TrainError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class TrainConfigError(TrainError):
    """A bad config file, key or value (one line, names the key)."""


DEFAULTS: dict[str, Any] = {
    "name": "run",                 # run folder under ckpt_dir
    "space": "track1_resnet48",    # key of track1.registry.SUPERNETS
    "model": {"num_classes": 10, "activation": "relu"},
    "data": None,                  # dataset root / tar; None = embedded CIFAR-10 subset
    "image_size": 32,
    "multiscale": None,            # e.g. [192, 224, 256]: one size per step
    "augment": "crop_flip",        # rrc | crop_flip | none
    "batch_size": 64,              # per rank
    "epochs": 3,
    "max_steps_per_epoch": None,   # cap (tests, benchmarks)
    "lr": 0.1,                     # base lr for a global batch of 256 (scaled linearly)
    "min_lr": 0.0,
    "warmup_epochs": 1.0,
    "warmup_lr": 1.0e-5,
    "sched_per": "step",           # step | epoch
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "zero_init_residual": False,   # start each residual branch at zero (last BN gamma = 0)
    "clip_grad": None,             # max global gradient norm per optimiser step (None = off)
    "amp": True,                   # bf16 autocast, CUDA only
    "channels_last": True,         # every device (CPU too: tools/bench_train.py --layouts)
    "device": "auto",              # auto | cpu | cuda
    "workers": 4,
    "threads": None,               # torch CPU threads (None = torch's default)
    "seed": 0,
    "engine": "plain",             # plain | fast (static-graph step: NB201, SPOS / reuse pairs)
    "cuda_graph": True,            # engine fast on CUDA: capture the step as one CUDA graph
    "train_subset": None,          # {fraction: 0.5, seed: 0}: train on a seeded part only
    "loss": {},                    # track1.nas.step.LossConfig fields
    "sampler": {"threshold": 0.0, "distance": None},
    "teacher": {"priors": "flops", "cache": None,
                "zen": {"batch": 8, "resolution": 32, "repeats": 1, "residual": True}},
    "lambda": {"schedule": "warmup"},   # + options of track1.nas.schedules.make_schedule
    "log_interval": 10,
    "save_every_steps": 50,        # mid-epoch checkpoints (0 = epoch ends only)
    "ckpt_dir": None,              # default track1.checkpoint.DEFAULT_DIR
    "init_from": None,             # .pdparams (organisers' ResNet-48) or a track1 .pth
    "init_head": True,             # also copy the classifier (class counts must agree)
    "resume": None,                # path | auto
    "tensorboard": False,
    "progress": True,
}


#: known keys of the mapping-valued sections ("a.b" for nested ones); ``loss`` is checked
#: by ``LossConfig`` and ``model`` by the chosen supernet's constructor
SECTION_KEYS: dict[str, set[str]] = {
    "sampler": {"threshold", "distance"},
    "teacher": {"priors", "cache", "zen"},
    "teacher.zen": {"batch", "resolution", "repeats", "residual"},
    "lambda": {"schedule", "value", "cap", "epochs_per_unit", "amplitude", "frequency",
               "milestones", "values"},
    "train_subset": {"fraction", "seed"},
}


def _check_keys(where: str, value: Any, known: set[str]) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise TrainConfigError(f"config {where!r} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - known)
    if unknown:
        raise TrainConfigError(f"unknown config key {where + '.' + unknown[0]!r}; known keys of "
                               f"{where!r}: {sorted(known)}")


def check_section_keys(config: dict) -> None:
    """Refuse unknown keys inside every section (a typo such as ``sampler.thresold``
    would otherwise train without a word), naming the key's full path."""
    for section, known in SECTION_KEYS.items():
        node: Any = config
        for part in section.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        _check_keys(section, node, known)
    from track1.nas.step import LossConfig
    from dataclasses import fields
    _check_keys("loss", config.get("loss"), {f.name for f in fields(LossConfig)})
    from track1.registry import supernet_options
    options = supernet_options(config["space"])
    if options is not None:
        _check_keys("model", config.get("model"), options)


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
                   sets: list[str] | None = None) -> dict:
    """DEFAULTS <- YAML file <- ``overrides`` (dotted key -> value) <- ``--set k=v``."""
    config = copy.deepcopy(DEFAULTS)
    if config_file:
        config = deep_merge(config, load_yaml(find_config(config_file)))
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(config, key, value)
    apply_sets(config, sets or [])
    validate(config)
    return config


def validate(config: dict) -> None:
    if config["space"] in _known_spaces():  # an unknown space is reported below
        check_section_keys(config)

    def positive(key: str, integer: bool = True) -> None:
        check_number(config, key, low=0, low_open=True, integer=integer)
    for k in ("batch_size", "epochs", "image_size", "log_interval"):
        positive(k)
    positive("lr", integer=False)
    # every other number is checked here, before any work: a wrong type used to fail as
    # a traceback (some only after training had started)
    for key, low, integer in (("min_lr", 0, False), ("warmup_lr", 0, False),
                              ("warmup_epochs", 0, False), ("weight_decay", 0, False),
                              ("momentum", 0, False), ("seed", None, True),
                              ("save_every_steps", 0, True), ("workers", 0, True)):
        check_number(config, key, low=low, integer=integer)
    if not config["momentum"] < 1:
        raise TrainConfigError(f"config 'momentum' must be in [0, 1), got {config['momentum']!r}")
    for key, integer in (("clip_grad", False), ("threads", True), ("max_steps_per_epoch", True)):
        if config[key] is not None:
            check_number(config, key, low=0, low_open=True, integer=integer)
    if isinstance(config["model"], dict) and "num_classes" in config["model"]:
        check_number(config["model"], "num_classes", low=0, low_open=True, integer=True,
                     where="model.num_classes")
    if config["sched_per"] not in ("step", "epoch"):
        raise TrainConfigError(f"config 'sched_per' must be step or epoch, got {config['sched_per']!r}")
    if config["engine"] not in ("plain", "fast"):
        raise TrainConfigError(f"config 'engine' must be plain or fast, got {config['engine']!r}")
    subset = config["train_subset"]
    if subset is not None:
        if not isinstance(subset, dict):
            raise TrainConfigError("config 'train_subset' must be null or a mapping with keys "
                                   f"fraction and seed, got {subset!r}")
        fraction = subset.get("fraction", 0.5)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or \
                not 0 < fraction < 1:
            raise TrainConfigError(f"config 'train_subset.fraction' must be in (0, 1), got {fraction!r}")
    if config["device"] not in ("auto", "cpu", "cuda"):
        raise TrainConfigError(f"config 'device' must be auto, cpu or cuda, got {config['device']!r}")
    if not isinstance(config["model"], dict) or "num_classes" not in config["model"]:
        raise TrainConfigError("config 'model' must be a mapping with num_classes")
    from track1.registry import SUPERNETS
    if config["space"] not in SUPERNETS:
        raise TrainConfigError(f"unknown space {config['space']!r}; known: {sorted(SUPERNETS)}")
    from track1.nas.step import LossConfig
    try:
        LossConfig.from_dict(config["loss"])
    except (TypeError, ValueError) as e:
        raise TrainConfigError(f"config 'loss': {e}") from None


def check_number(section: dict, key: str, *, low: float | None = None, low_open: bool = False,
                 integer: bool = False, where: str | None = None) -> None:
    """``section[key]`` is a finite number (an integer when ``integer``) above ``low``
    (strictly when ``low_open``), else one ``TrainConfigError`` naming the key."""
    import math
    v = section[key]
    kind = "integer" if integer else "number"
    bound = "" if low is None else f" {'>' if low_open else '>='} {low}"
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and \
        (not integer or int(v) == v) and \
        (low is None or (v > low if low_open else v >= low))
    if not ok:
        raise TrainConfigError(f"config {where or key!r} must be a finite {kind}{bound}, "
                               f"got {v!r}")


def _known_spaces() -> set[str]:
    from track1.registry import SUPERNETS
    return set(SUPERNETS)


def save_yaml(config: dict, path: str | os.PathLike) -> None:
    """Write the resolved config atomically (temp file + rename)."""
    atomic_write(path, lambda f: yaml.safe_dump(config, f, sort_keys=False), binary=False)

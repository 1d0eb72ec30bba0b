"""NAS-Bench-201 CIFAR-10 ground truth, shipped as track1/assets/nb201_cifar10_gt.csv.gz.

Used only to MEASURE ranking (never inside training). ``valid`` is the 200-epoch
accuracy on the validation half of CIFAR-10 train when trained on the other half (the
bench's default target, as in the anchors of docs/REFERENCE.md §6); ``test`` is the 200-epoch test
accuracy when trained on the full training set.
"""
from __future__ import annotations

import csv
import functools
import gzip
import random
from dataclasses import dataclass
from pathlib import Path

ASSET = Path(__file__).resolve().parent.parent / "assets" / "nb201_cifar10_gt.csv.gz"
TARGETS = ("valid", "test")


@dataclass(frozen=True)
class GroundTruth:
    index: int
    arch: str
    valid: float  # cifar10_valid_acc, %
    test: float   # cifar10_test_acc, %
    params_mb: float


@functools.lru_cache(maxsize=4)
def load_ground_truth(path: str | None = None) -> dict[str, GroundTruth]:
    """arch string -> ``GroundTruth``, in the table's index order (15,625 rows)."""
    path = Path(path) if path else ASSET
    if not path.exists():
        raise FileNotFoundError(f"NAS-Bench-201 ground truth not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    out: dict[str, GroundTruth] = {}
    with opener(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            out[row["arch"]] = GroundTruth(int(row["index"]), row["arch"],
                                           float(row["cifar10_valid_acc"]),
                                           float(row["cifar10_test_acc"]),
                                           float(row["params_mb"]))
    return out


def has_none(arch: str) -> bool:
    """Whether an arch string has a ``none`` edge."""
    return "none~" in arch


def accuracy(arch: str, target: str = "valid") -> float:
    """Ground-truth accuracy (%) of one arch string."""
    if target not in TARGETS:
        raise ValueError(f"unknown ground-truth target {target!r}; choose from {TARGETS}")
    return getattr(load_ground_truth()[arch], target)


def fixed_subset(n: int = 1000, seed: int = 0, none_free: bool = False) -> list[str]:
    """``n`` distinct arch strings drawn with ``random.Random(seed)`` from the table in
    index order: the bench's fixed evaluation set (n >= the pool gives every arch).
    ``none_free`` draws only among the 4,096 archs without a ``none`` edge (the space
    the RD-NAS authors train and score)."""
    archs = sorted(load_ground_truth().values(), key=lambda g: g.index)
    if none_free:
        archs = [g for g in archs if not has_none(g.arch)]
    if n >= len(archs):
        return [g.arch for g in archs]
    return [g.arch for g in random.Random(seed).sample(archs, n)]

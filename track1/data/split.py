"""A fixed, seeded split of a training set into a training part and a held-out part.

The NAS-Bench-201 ``cifar10-valid`` protocol trains on one half of the CIFAR-10
training set and validates on the other; its official index file is not in our data,
so the halves are a seeded permutation (the same for every run of one seed).
"""
from __future__ import annotations

from typing import Any

import torch


def split_indices(n: int, fraction: float = 0.5, seed: int = 0) -> tuple[list[int], list[int]]:
    """(training part, held-out part) of ``range(n)``: the first ``round(fraction * n)``
    of a permutation drawn with ``seed``, and the rest; both sorted."""
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise ValueError(f"cannot split {n} image(s)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    k = min(max(1, round(fraction * n)), n - 1)
    return sorted(perm[:k]), sorted(perm[k:])


def training_subset(n: int, spec: Any | None) -> list[int] | None:
    """The indices a run trains on under its config's ``data.subset`` (an object with
    ``fraction`` and ``seed``), or None to train on all ``n`` images."""
    if spec is None:
        return None
    return split_indices(n, spec.fraction, spec.seed)[0]

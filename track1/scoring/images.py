"""The images a supernet is scored on: a fixed seeded subset of the held-out split, and
(for BN re-calibration) of the training split, checked against the checkpoint's classes.

Evaluation, search and the ranking check during training all score on these, so the same
settings give the same numbers everywhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from track1.data import DataError, decode_to_tensor, resolve_source
from track1.scoring.modes import SCORER_VERSION

SUBSET_SEED = 0


def subset_indices(n: int, k: int | None, seed: int) -> list[int]:
    """A fixed subset of ``k`` of ``n`` images (None: all of them) in a seeded random
    order: the first ``k`` of a seeded permutation, NOT sorted. Datasets are stored class
    by class (CIFAR-10, an ImageFolder ImageNet), so images in index order give batches,
    calibration chunks and halves of a few classes each; in this order each is a random
    sample of the classes, and the order is the same for every arch scored."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    return perm[:n if k is None else min(k, n)].tolist()


@dataclass
class ScoringImages:
    """Where the images come from (resolved, not yet decoded) and how many."""

    val: Any
    eval_idx: list[int]
    n_eval: int
    calib: Any | None
    calib_idx: list[int] | None
    n_calib: int
    image_size: int

    @classmethod
    def resolve(cls, data: str | None, image_size: int, num_classes: int, eval_images: int,
                calib_images: int, recalibrate: bool, what: str = "the checkpoint"
                ) -> "ScoringImages":
        """``eval_images`` of the held-out split and, with ``recalibrate``,
        ``calib_images`` of the training split (fewer where a split has fewer);
        ``DataError`` when a split's class count is not ``num_classes``."""
        val = resolve_source(data, "val")
        if val.num_classes != num_classes:
            raise DataError(f"{what} has {num_classes} classes but the data {val.name} has "
                            f"{val.num_classes}")
        n_eval = min(len(val), eval_images)
        calib, calib_idx, n_calib = None, None, 0
        if recalibrate:
            calib = resolve_source(data, "train")
            if calib.num_classes != num_classes:
                raise DataError(f"{what} has {num_classes} classes but {calib.name} train/ has "
                                f"{calib.num_classes}")
            n_calib = min(len(calib), max(1, calib_images))
            calib_idx = subset_indices(len(calib), n_calib, SUBSET_SEED + 1)
        return cls(val, subset_indices(len(val), n_eval, SUBSET_SEED), n_eval, calib,
                   calib_idx, n_calib, image_size)

    def identity(self) -> dict[str, Any]:
        """What the scores depend on (results folders and caches are keyed by it)."""
        return {"data": self.val.identity,
                "calib": self.calib.identity if self.calib is not None else None,
                "image_size": self.image_size, "eval_images": self.n_eval,
                "calib_images": self.n_calib, "scorer": SCORER_VERSION}

    def decode(self, cache_dir: str | os.PathLike | None = None, progress: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """uint8 evaluation images, their labels, and uint8 calibration images (or None)."""
        eval_u8, labels = decode_to_tensor(self.val, self.image_size, indices=self.eval_idx,
                                           cache_dir=cache_dir, progress=progress)
        calib_u8 = None
        if self.calib is not None:
            calib_u8, _ = decode_to_tensor(self.calib, self.image_size, indices=self.calib_idx,
                                           cache_dir=cache_dir, progress=progress)
        return eval_u8, labels, calib_u8

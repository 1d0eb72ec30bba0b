"""What the bench scores: a fixed set of NAS-Bench-201 archs, on fixed images."""
from __future__ import annotations

import os
import random
from typing import Any

import torch

from track1.bench.errors import BenchError
from track1.nb201.ground_truth import fixed_subset


def bench_archs(n: int, all_archs: bool, seed: int = 0, none_free: bool = False) -> list[str]:
    """The fixed scored set: ``n`` archs drawn with ``seed`` (every arch with ``all_archs``),
    among the none-free ones only with ``none_free``."""
    return fixed_subset(15625 if all_archs else n, seed=seed, none_free=none_free)


def load_eval_data(data: str | os.PathLike | None, eval_images: int, calib_images: int,
                   seed: int = 0, protocol: Any = None
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed evaluation images with labels and fixed calibration images, as uint8 tensors
    (the scorers normalise them once), each in a seeded random order (``random.sample``:
    never the class-sorted storage order). With a ``held_out`` protocol both come from the
    CIFAR-10 training set: evaluation images from the held-out part, calibration images
    from the training part; otherwise evaluation images come from the test split."""
    from track1.data import DataError, decode_to_tensor, resolve_source
    try:
        train = resolve_source(data, "train")
        val = None if protocol is not None and protocol.eval_source == "held_out" \
            else resolve_source(data, "val")
    except DataError as e:
        raise BenchError(str(e)) from None
    if val is None:
        from track1.data.split import split_indices
        train_part, held_out = split_indices(len(train), protocol.train_fraction,
                                             protocol.split_seed)
        vi = random.Random(seed).sample(held_out, min(eval_images, len(held_out)))
        ti = random.Random(seed + 1).sample(train_part, min(calib_images, len(train_part)))
        vx, vy = decode_to_tensor(train, 32, indices=vi, crop_ratio=1.0, progress=False)
    else:
        vi = random.Random(seed).sample(range(len(val)), min(eval_images, len(val)))
        ti = random.Random(seed + 1).sample(range(len(train)), min(calib_images, len(train)))
        vx, vy = decode_to_tensor(val, 32, indices=vi, crop_ratio=1.0, progress=False)
    cx, _ = decode_to_tensor(train, 32, indices=ti, crop_ratio=1.0, progress=False)
    return vx, vy, cx

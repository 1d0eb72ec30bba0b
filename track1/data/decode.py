"""Decode a source ONCE into a uint8 tensor, in parallel, cached on disk.

Why: scoring 45,000 subnets on the same evaluation images must not decode JPEGs
45,000 times (the reference solution did). Decoding happens once, with a thread pool
(Pillow releases the GIL while decoding and resampling), the result is kept as a
compact uint8 [N, 3, S, S] tensor, and a second call with the same source, split,
size and indices is a single file load.
"""
from __future__ import annotations

import functools
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from track1.data.sources import DataError, ImageSource

#: eval-style centre crop: resize the shorter side to size / 0.875, crop size x size
EVAL_CROP_RATIO = 0.875
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$TRACK1_CACHE_DIR``, else ``$XDG_CACHE_HOME/track1/decoded`` (``~/.cache``)."""
    if os.environ.get("TRACK1_CACHE_DIR"):
        return Path(os.environ["TRACK1_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "track1" / "decoded"


def preprocess(image: Image.Image, size: int, crop_ratio: float = EVAL_CROP_RATIO) -> np.ndarray:
    """RGB PIL image -> uint8 HWC array of ``size`` x ``size``.

    Images larger than ``size`` get the standard eval transform (shorter side to
    ``round(size / crop_ratio)``, centre crop); smaller ones (32x32 CIFAR) have their
    shorter side resized to exactly ``size`` and are centre-cropped (no extra crop).
    """
    w, h = image.size
    short = min(w, h)
    target = round(size / crop_ratio) if short > size else size
    if short != target:
        if w <= h:
            nw, nh = target, max(target, round(h * target / w))
        else:
            nw, nh = max(target, round(w * target / h)), target
        image = image.resize((nw, nh), Image.BILINEAR)
        w, h = nw, nh
    if (w, h) != (size, size):
        left, top = (w - size) // 2, (h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def _cache_key(source: ImageSource, size: int, indices: Sequence[int] | None,
               crop_ratio: float) -> str:
    h = hashlib.sha1()
    h.update(f"v{_CACHE_VERSION}|{source.identity}|{source.split}|{size}|{crop_ratio}|".encode())
    if indices is None:
        h.update(b"all")
    else:
        h.update(np.asarray(indices, dtype=np.int64).tobytes())
    return h.hexdigest()[:24]


def _default_workers() -> int:
    return max(1, min(16, (os.cpu_count() or 1)))


def decode_to_tensor(source: ImageSource, size: int, limit: int | None = None,
                     indices: Sequence[int] | None = None,
                     cache_dir: str | os.PathLike | None = None, progress: bool = True,
                     crop_ratio: float = EVAL_CROP_RATIO, workers: int | None = None,
                     use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 3, size, size] and int64 labels [N] of ``source``.

    ``indices`` picks images (in that order); else the first ``limit`` (or all).
    Each image is decoded once with a thread pool; the pair is cached under
    ``cache_dir`` (default ``default_cache_dir()``), keyed by the source's identity,
    split, size, crop ratio and the chosen indices.
    """
    if size <= 0:
        raise DataError(f"image size must be positive, got {size}")
    n_all = len(source)
    if indices is None:
        n = n_all if limit is None else max(0, min(int(limit), n_all))
        chosen = None if n == n_all else list(range(n))
    else:
        chosen = [int(i) for i in indices]
        if limit is not None:
            chosen = chosen[:limit]
        bad = next((i for i in chosen if not 0 <= i < n_all), None)
        if bad is not None:
            raise DataError(f"image index {bad} out of range for {source.name} ({n_all} images)")
    order = list(range(n_all)) if chosen is None else chosen
    path = None
    if use_cache:
        path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = path / f"{_cache_key(source, size, chosen, crop_ratio)}.pt"
        if path.is_file():
            from track1.infra.checkpoint import safe_load
            try:  # the CRC check catches flipped bytes, which torch.load would accept
                blob = safe_load(path, "decoded-image cache")
                if blob["images"].shape == (len(order), 3, size, size):
                    return blob["images"], blob["labels"]
            except Exception:  # a torn, damaged or foreign cache file: decode again
                pass
    out = np.empty((len(order), size, size, 3), dtype=np.uint8)

    def work(j: int) -> None:
        image, _ = source.load(order[j])
        out[j] = preprocess(image, size, crop_ratio)

    bar = None
    if progress and len(order) >= 256:
        from tqdm import tqdm
        bar = tqdm(total=len(order), desc=f"decode {source.split} @{size}", unit="img",
                   leave=False, dynamic_ncols=True)
    n_workers = workers or _default_workers()
    if n_workers <= 1 or len(order) < 64:
        for j in range(len(order)):
            work(j)
            if bar is not None:
                bar.update(1)
    else:
        with ThreadPoolExecutor(n_workers) as pool:
            for _ in pool.map(work, range(len(order)), chunksize=64):
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    labels = source.labels[torch.as_tensor(order, dtype=torch.int64)].clone() \
        if len(order) else torch.zeros(0, dtype=torch.int64)
    if path is not None:
        from track1.infra.checkpoint import save_atomic
        try:
            save_atomic({"images": images, "labels": labels}, path)
        except OSError:  # a read-only cache location must not break decoding
            pass
    return images, labels


def normalize(images_u8: torch.Tensor, dtype: torch.dtype = torch.float32,
              mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """uint8 [..., 3, H, W] -> float ``dtype`` with ImageNet mean/std, on the input's device."""
    m = torch.tensor(mean, dtype=torch.float32, device=images_u8.device).view(3, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32, device=images_u8.device).view(3, 1, 1) * 255.0
    out = images_u8.to(torch.float32, copy=True).sub_(m).div_(s)
    return out if dtype == torch.float32 else out.to(dtype)


def probe_batch(data: str | os.PathLike | None, n: int, size: int,
                seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` training images chosen by ``seed`` (normalised, ``size`` px, no crop), their
    labels and the source's name: the fixed batch zero-cost proxies and their reports
    score with. ``data`` None: the full CIFAR-10 tar if present, else the embedded set.
    Decoded once per process and arguments (reading a gzipped tar costs seconds; every
    teacher and fused search asks for the same batch): each call gets its own copies."""
    from track1.infra.paths import cifar10_tar
    if data is None and cifar10_tar().exists():
        data = str(cifar10_tar())
    images, labels, name = _probe_batch(None if data is None else str(data), n, size, seed)
    return images.clone(), labels.clone(), name


@functools.lru_cache(maxsize=8)
def _probe_batch(data: str | None, n: int, size: int,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    from track1.data.sources import resolve_source
    source = resolve_source(data, "train")
    import random
    idx = random.Random(seed).sample(range(len(source)), n)
    images, labels = decode_to_tensor(source, size, indices=idx, crop_ratio=1.0, progress=False)
    return normalize(images), labels, source.name

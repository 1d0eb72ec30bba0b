"""Build an ImageNet-sized JPEG ImageFolder tree for timing decode-bound paths.

Where no ImageNet is at hand (a GPU machine without network access), the evaluation
benchmark at 224 px still needs files that cost what ImageNet files cost to decode.
This tool upsamples labelled images of any track1 source (default: the embedded CIFAR-10
demo set, or the CIFAR-10 JPEG tar) to ImageNet's typical 500x375, adds mild Gaussian
grain so the JPEGs carry photo-like entropy (smooth upsampled images would encode to a
fraction of a real photo's bytes and decode faster), and writes::

    OUT/train/<class>/<i>.jpg   OUT/val/<class>/<i>.jpg

The images are only timing material: their accuracies mean nothing. The mean file size
is printed so a benchmark can state it next to ImageNet's (about 110 KB per val image).

    python tools/make_synthetic_imagefolder.py OUT [--source TAR_OR_DIR] [--train 2048]
        [--val 10000] [--size 500x375] [--quality 90] [--workers 16]
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

_SOURCES: dict = {}


def _source(root: str | None, split: str):
    key = (root, split)
    if key not in _SOURCES:
        from track1.data import resolve_source
        _SOURCES[key] = resolve_source(root, split)
    return _SOURCES[key]


def _round_robin(labels: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Indices taking one image of each class in turn, each class's images shuffled."""
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    order = []
    while any(queues):
        for q in queues:
            if q:
                order.append(int(q.pop()))
    return order


def _write_one(job: tuple) -> int:
    """(source root, split, index, out path, (w, h), quality, grain) -> bytes written."""
    from PIL import Image
    root, split, i, out, (w, h), quality, grain = job
    image, _ = _source(root, split).load(i)
    big = np.asarray(image.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.float32)
    rng = np.random.default_rng(i + (0 if split == "train" else 1_000_003))
    big = np.clip(big + rng.normal(0.0, grain, big.shape), 0, 255).astype(np.uint8)
    Image.fromarray(big).save(out, quality=quality)
    return os.path.getsize(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="output root (train/ and val/ are created in it)")
    p.add_argument("--source", default=None,
                   help="track1 image source (ImageFolder root or tar); default: embedded set")
    p.add_argument("--train", type=int, default=2048, help="training images to write")
    p.add_argument("--val", type=int, default=10_000, help="validation images to write")
    p.add_argument("--size", default="500x375", help="WxH of every written JPEG")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--grain", type=float, default=24.0, help="Gaussian grain sigma (0..255 scale)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        p.error(f"--size must be WxH, got {args.size!r}")
    jobs = []
    for split, count in (("train", args.train), ("val", args.val)):
        src = _source(args.source, split)
        # classes in turn (a seeded shuffle within each), so both splits hold every class
        # once count >= the class count, as an ImageFolder needs; fewer source images
        # than asked: cycle (the grain differs per file)
        order = _round_robin(src.labels.numpy(), np.random.default_rng(0))
        if count < len(src.classes):
            p.error(f"--{split} {count} is below the source's {len(src.classes)} classes")
        for j in range(count):
            i = order[j % len(order)]
            label = int(src.labels[i])
            folder = Path(args.out) / split / f"class_{label:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((args.source, split, i, str(folder / f"{j:06d}.jpg"), (w, h),
                         args.quality, args.grain))
    if args.workers <= 1:
        sizes = [_write_one(job) for job in jobs]
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            sizes = list(pool.map(_write_one, jobs, chunksize=64))
    print(f"wrote {len(jobs)} JPEGs ({args.train} train, {args.val} val) at {w}x{h} under "
          f"{args.out}; mean {np.mean(sizes) / 1024:.1f} KB per file")
    return 0


if __name__ == "__main__":
    sys.exit(main())

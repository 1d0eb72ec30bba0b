"""Build ``track1/assets/cifar10_demo.npz``: the small real dataset shipped in the package.

Why: tests, the CPU demo and ``--data``-less commands need real images without any
download. The file keeps the ORIGINAL JPEG bytes (no re-encoding) of a deterministic
CIFAR-10 subset: the first ``--train-per-class`` files (sorted by name) of every class
under ``train/`` and the first ``--val-per-class`` under ``test/`` (used as ``val``).

Layout of the .npz (loaded with ``allow_pickle=False``):
``data`` uint8 (all JPEGs concatenated), ``offsets`` int64 [N+1], ``labels`` int64 [N],
``split`` uint8 [N] (0 train, 1 val), ``classes`` str [C], ``names`` str [N].

    python tools/make_embedded_dataset.py [--tar PATH] [--out PATH]
"""
from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

import numpy as np

from track1.infra.paths import cifar10_tar

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TAR = cifar10_tar()
DEFAULT_OUT = ROOT / "track1" / "assets" / "cifar10_demo.npz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tar", type=Path, default=DEFAULT_TAR)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--val-per-class", type=int, default=100)
    args = p.parse_args(argv)
    if not args.tar.is_file():
        print(f"error: CIFAR-10 JPEG tar not found: {args.tar}", file=sys.stderr)
        return 2
    members: dict[tuple[str, str], dict[str, bytes]] = {}
    with tarfile.open(args.tar, "r:*") as tar:
        for m in tar:
            parts = m.name.strip("./").split("/")
            if not m.isfile() or len(parts) != 3 or parts[0] not in ("train", "test"):
                continue
            members.setdefault((parts[0], parts[1]), {})[parts[2]] = tar.extractfile(m).read()
    classes = sorted({c for (_, c) in members})
    chunks, labels, split, names = [], [], [], []
    for split_id, (folder, per_class) in enumerate((("train", args.train_per_class),
                                                    ("test", args.val_per_class))):
        for label, cls in enumerate(classes):
            files = members.get((folder, cls), {})
            chosen = sorted(files)[:per_class]
            if len(chosen) < per_class:
                print(f"error: {folder}/{cls} has {len(chosen)} images, need {per_class}",
                      file=sys.stderr)
                return 2
            for name in chosen:
                chunks.append(np.frombuffer(files[name], dtype=np.uint8))
                labels.append(label)
                split.append(split_id)
                names.append(f"{folder}/{cls}/{name}")
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, data=np.concatenate(chunks), offsets=offsets,
             labels=np.asarray(labels, dtype=np.int64), split=np.asarray(split, dtype=np.uint8),
             classes=np.asarray(classes), names=np.asarray(names))
    tmp = args.out.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(args.out)
    print(f"wrote {args.out}: {len(labels)} images ({sum(split)} val), {len(classes)} classes, "
          f"{args.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""FLOPs, params and Zen-score for every arch of a list, into one JSONL cache.

    .venv/bin/python tools/zen_cache.py                      # the official 45,000
    .venv/bin/python tools/zen_cache.py --limit 200 --resolution 64

One line per arch, ``{"key", "arch", "flops", "params", "zen", "zen_batch",
"zen_resolution", "zen_repeats", "zen_residual"}``, appended and flushed as each is
scored, so an interrupted run loses at most one arch; rerunning skips the keys already
in the file (resumable). The file is what ``Teacher(cache_file=...)`` and the training
config's ``teacher.cache`` read. Zen-scores are seeded per arch (reproducible).
"""
from __future__ import annotations

import argparse

import track1  # noqa: E402,F401 (first: it sets OpenMP's wait policy before torch loads)
import sys
import time
from pathlib import Path

import torch  # noqa: E402

from track1.resnet48.costs import count_costs_many  # noqa: E402
from track1.data.arch_list import ArchListError  # noqa: E402
from track1.resnet48.official import load_arch_list  # noqa: E402
from track1.proxies.zen import zen_score  # noqa: E402
from track1.resnet48.space import ResNet48Space  # noqa: E402
from track1.infra.resumable import AppendLog

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", help="arch list JSON (default: the official 45,000)")
    p.add_argument("--out", default=str(ROOT / "runs" / "zen_cache.jsonl"),
                   help="JSONL cache (default runs/zen_cache.jsonl, git-ignored)")
    p.add_argument("--limit", type=int, help="only the first N archs")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--no-residual", action="store_true", help="score without shortcuts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        archs = load_arch_list(args.archs)
    except ArchListError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    items = list(archs.items())[: args.limit] if args.limit else list(archs.items())
    out = Path(args.out)
    from tqdm import tqdm
    with AppendLog(out, "key", ("zen",), fsync_every=1) as cache:
        done = set(cache.done)
        todo = [(k, c) for k, c in items if k not in done]
        costs = count_costs_many([c for _, c in todo]) if todo else {}
        space = ResNet48Space()
        t0 = time.perf_counter()
        for i, (key, code) in enumerate(tqdm(todo, desc="zen", unit="arch",
                                              disable=args.no_progress)):
            z = zen_score(space, space.decode(code), batch=args.batch, resolution=args.resolution,
                          repeats=args.repeats, residual=not args.no_residual, seed=args.seed,
                          device=args.device)
            cache.append({"key": key, "arch": code, "flops": int(costs["flops"][i]),
                          "params": int(costs["params"][i]), "zen": z, "zen_batch": args.batch,
                          "zen_resolution": args.resolution, "zen_repeats": args.repeats,
                          "zen_residual": not args.no_residual})
    elapsed = time.perf_counter() - t0
    rate = len(todo) / elapsed if todo and elapsed > 0 else 0.0
    print(f"scored {len(todo)} archs ({len(done)} already cached) in {elapsed:.1f} s: "
          f"{rate:.3f} archs/s at batch {args.batch}, resolution {args.resolution}; "
          f"cache {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

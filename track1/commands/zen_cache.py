"""``python -m track1 zen-cache``: FLOPs, params and Zen-score of every arch of a Track 1
list, into one JSONL cache (the ranking teacher's ``teacher.cache``)."""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "zen-cache", help="Zen-score, FLOPs and params of a list's archs into a JSONL cache",
        description="One line per arch ({key, arch, flops, params, zen, zen_batch, "
                    "zen_resolution, zen_repeats, zen_residual}), appended and flushed as each "
                    "is scored: an interrupted run loses at most one arch and a rerun skips the "
                    "keys already in the file. The file is what the training config's "
                    "teacher.cache (--teacher-cache) reads. Zen-scores are seeded per arch.")
    p.add_argument("--archs", help="arch list JSON (default: the official 45,000)")
    p.add_argument("--out", default=None,
                   help="JSONL cache (default: runs/zen_cache.jsonl under the project home)")
    p.add_argument("--limit", type=int_at_least(1), help="only the first N archs")
    p.add_argument("--batch", type=int_at_least(1), default=8)
    p.add_argument("--resolution", type=int_at_least(8), default=224)
    p.add_argument("--repeats", type=int_at_least(1), default=1)
    p.add_argument("--no-residual", action="store_true", help="score without shortcuts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch
    from tqdm import tqdm

    from track1.infra import paths
    from track1.infra.resumable import AppendLog
    from track1.proxies.zen import zen_score
    from track1.resnet48.costs import count_costs_many
    from track1.resnet48.official import load_arch_list
    from track1.resnet48.space import ResNet48Space
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = load_arch_list(args.archs)
    items = list(archs.items())[: args.limit] if args.limit else list(archs.items())
    out = Path(args.out) if args.out else paths.runs_dir("zen_cache.jsonl")
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

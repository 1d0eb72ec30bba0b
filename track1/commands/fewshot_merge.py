"""``python -m track1 fewshot-merge OUT PART...``: the trained parts of a few-shot split as
one checkpoint that evaluate, search and export load like any supernet."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fewshot-merge", help="merge the part runs of a few-shot split into one checkpoint",
        description="Few-shot NAS (Zhao et al., ICML 2021): train each part of a split from "
                    "the one-shot supernet, e.g. for Track 1 on the depths of stages 3 and 4 "
                    "(genes 2 and 3 of the genome: 7 x 4 parts), one run per part: `track1 "
                    "train --init-from ONESHOT.pth --name part_4_3 --set 'part={genes: [2, 3], "
                    "values: [4, 3]}'`. Then merge their last.pth files: every part of the "
                    "split must be there once. The result scores each arch with the "
                    "sub-supernet of its part in evaluate, search and export.")
    p.add_argument("out", help="the merged checkpoint (.pth)")
    p.add_argument("parts", nargs="+", metavar="PART", help="the part runs' checkpoints")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from track1.infra.checkpoint import save_atomic
    from track1.train.errors import TrainError
    from track1.train.fewshot import merge_parts
    out = Path(args.out)
    if out.is_dir() or (out.exists() and not args.force):
        raise TrainError(f"{out} {'is a folder' if out.is_dir() else 'exists'}: name a new "
                         ".pth file" + ("" if out.is_dir() else " or pass --force"))
    merged = merge_parts(args.parts)
    save_atomic(merged, out)
    genes = merged["config"]["fewshot"]["genes"]
    print(f"wrote {out}: {len(args.parts)} parts of the split on genes {genes}")
    return 0

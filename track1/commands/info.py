"""``python -m track1 info ARCH [ARCH ...]``: costs and widths of arch codes, one JSON
object per line."""
from __future__ import annotations

import argparse
import json

from track1.commands.argtypes import int_at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="FLOPs, params, depths and widths of arch codes",
                       description="Print one JSON object per arch: arch, flops (Paddle "
                                   "convention), macs, params, depths, widths.")
    p.add_argument("archs", nargs="+", metavar="ARCH", help="52-character arch code")
    p.add_argument("--untied", action="store_true",
                   help="accept codes outside the official list's tied space")
    p.add_argument("--image-size", type=int_at_least(1), default=224)
    p.add_argument("--num-classes", type=int_at_least(1), default=1000)
    p.add_argument("--zen", action="store_true",
                   help="add a 'zen' field: Zen-score (seeded per arch, reproducible)")
    p.add_argument("--zen-batch", type=int_at_least(1), default=8, help="Zen-score batch size")
    p.add_argument("--zen-resolution", type=int_at_least(1), default=224, help="Zen-score input size")
    p.add_argument("--zen-repeats", type=int_at_least(1), default=1, help="Zen-score draws averaged")
    p.add_argument("--zen-no-residual", action="store_true",
                   help="score with the shortcuts removed (Zen-NAS's official variant)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.resnet48.arch import decode
    from track1.resnet48.costs import count_costs
    archs = [decode(code, tied=not args.untied) for code in args.archs]  # all-or-nothing
    for arch in archs:
        row = {"arch": arch.code,
               **count_costs(arch, image_size=args.image_size, num_classes=args.num_classes),
               "depths": list(arch.depths), "widths": arch.widths()}
        if args.zen:
            from track1.proxies.zen import zen_score
            from track1.resnet48.space import ResNet48Space
            row["zen"] = zen_score(ResNet48Space(tied=False), arch, batch=args.zen_batch,
                                   resolution=args.zen_resolution, repeats=args.zen_repeats,
                                   residual=not args.zen_no_residual)
        print(json.dumps(row), flush=True)
    return 0

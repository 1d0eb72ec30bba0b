"""``python -m track1 evaluate``: score the subnet list with a supernet checkpoint and
write the challenge JSON (``bash run.sh evaluate``; ``torchrun --nproc_per_node=K -m
track1 evaluate`` shards the list over K ranks).
"""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least, positive_float
from track1.commands.scoring_args import add_scoring_arguments, scoring_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    from track1.evaluate.defaults import DEFAULT_CPU_LIMIT, DEFAULT_EVAL_IMAGES
    from track1.evaluate.options import EvalOptions
    p = sub.add_parser(
        "evaluate", help="score the 45,000-subnet list, write submission/ JSON",
        description="Top-1 accuracy of every listed subnet of a trained supernet, written as "
                    "the challenge JSON. Resumable: each finished subnet is appended to a "
                    "per-rank log under --results-dir and a rerun skips it.")
    add_scoring_arguments(
        p, EvalOptions(),
        eval_help=f"evaluation images, a fixed seeded subset of val/ (default: all, at most "
                  f"{DEFAULT_EVAL_IMAGES})",
        batch_help="evaluation batch (default 500 on GPU; on CPU 2000 up to 64 px, else 64; "
                   "halved on OOM)",
        fresh_help="discard earlier results in --results-dir",
        fuse_help="also write <out>.fused.json: the subnets ranked by the supernet's top-1 "
                  "fused with proxies.")
    p.add_argument("--archs", default=None,
                   help="subnet list in the official format (default: the official 45,000)")
    p.add_argument("--limit", type=int_at_least(0), default=None,
                   help=f"score only the first N entries; 0 = all (default: all on GPU, "
                        f"{DEFAULT_CPU_LIMIT} on CPU, with a projection for the full list)")
    p.add_argument("--out", default=None,
                   help="output JSON (default: submission/CVPR_2022_NAS_Track1_test.json; a partial "
                        "run writes <name>.partial.json and never replaces a fuller file)")
    p.add_argument("--results-dir", default=None,
                   help="folder of per-rank JSONL results (default: runs/evaluate/<setup hash>)")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast (auto: on for CUDA and for CPUs with native bf16, "
                        "AVX512-BF16/AMX, where it is 1.6-2.0x faster than fp32 with accuracies "
                        "within 0.006; 'off' for fp32 everywhere)")
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="CPU threads (torch.set_num_threads)")
    p.add_argument("--no-prefix-sharing", action="store_true",
                   help="score one subnet at a time in list order instead of in prefix order "
                        "with shared stem/leading-block activations (same numbers, slower)")
    p.add_argument("--prefix-cache-gb", type=positive_float, default=None,
                   help="memory for cached prefix activations (default: 8 GB on CPU, half the "
                        "free memory on a GPU)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.evaluate.options import EvalOptions
    from track1.evaluate.runner import evaluate
    opts = EvalOptions(
        **scoring_kwargs(args), archs=args.archs, limit=args.limit, out=args.out,
        results_dir=args.results_dir, amp={"auto": None, "on": True, "off": False}[args.amp],
        threads=args.threads, prefix_sharing=not args.no_prefix_sharing,
        prefix_cache_bytes=(None if args.prefix_cache_gb is None
                            else int(args.prefix_cache_gb * 1024 ** 3)))
    evaluate(opts)
    return 0

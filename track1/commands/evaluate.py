"""``python -m track1 evaluate``: score the subnet list with a supernet checkpoint and
write the challenge JSON (``bash run.sh evaluate``; ``torchrun --nproc_per_node=K -m
track1 evaluate`` shards the list over K ranks).
"""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least, positive_float


def register(sub: argparse._SubParsersAction) -> None:
    from track1.evaluate.defaults import DEFAULT_CALIB_IMAGES, DEFAULT_CPU_LIMIT, DEFAULT_EVAL_IMAGES
    from track1.scoring.modes import BN_MODES, DEFAULT_BN_MODE
    p = sub.add_parser(
        "evaluate", help="score the 45,000-subnet list, write submission/ JSON",
        description="Top-1 accuracy of every listed subnet of a trained supernet, written as "
                    "the challenge JSON. Resumable: each finished subnet is appended to a "
                    "per-rank log under --results-dir and a rerun skips it.")
    p.add_argument("--checkpoint", default=None,
                   help="supernet checkpoint (default: the latest *.pth under supernet_ckpt/)")
    p.add_argument("--archs", default=None,
                   help="subnet list in the official format (default: the official 45,000)")
    p.add_argument("--data", default=None,
                   help="ImageFolder root with val/ (or test/) and train/, or a .tar/.tar.gz of "
                        "it (default: the embedded CIFAR-10 demo set)")
    p.add_argument("--limit", type=int_at_least(0), default=None,
                   help=f"score only the first N entries; 0 = all (default: all on GPU, "
                        f"{DEFAULT_CPU_LIMIT} on CPU, with a projection for the full list)")
    p.add_argument("--out", default=None,
                   help="output JSON (default: submission/CVPR_2022_NAS_Track1_test.json; a partial "
                        "run writes <name>.partial.json and never replaces a fuller file)")
    p.add_argument("--bn-mode", choices=BN_MODES, default=DEFAULT_BN_MODE,
                   help=f"BN statistics per subnet (default: {DEFAULT_BN_MODE})")
    p.add_argument("--calib-images", type=int_at_least(1), default=DEFAULT_CALIB_IMAGES,
                   help="training images for BN recalibration (fewer when the data has fewer)")
    p.add_argument("--calib-batch-size", type=int_at_least(1), default=None,
                   help="chunk size of the calibration forward (default: the whole set on a GPU, "
                        "bounded on a CPU); the statistics are the whole set's whatever the "
                        "chunking, more chunks only cost more sweeps")
    p.add_argument("--eval-images", type=int_at_least(1), default=None,
                   help=f"evaluation images, a fixed seeded subset of val/ (default: all, at "
                        f"most {DEFAULT_EVAL_IMAGES})")
    p.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help="evaluation batch (default 500 on GPU; on CPU 2000 up to 64 px, else 64; "
                        "halved on OOM)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--results-dir", default=None,
                   help="folder of per-rank JSONL results (default: runs/evaluate/<setup hash>)")
    p.add_argument("--fresh", action="store_true", help="discard earlier results in --results-dir")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast (auto: on for CUDA and for CPUs with native bf16, "
                        "AVX512-BF16/AMX, where it is 1.6-2.0x faster than fp32 with accuracies "
                        "within 0.006; 'off' for fp32 everywhere)")
    p.add_argument("--threads", type=int_at_least(1), default=None,
                   help="CPU threads (torch.set_num_threads)")
    p.add_argument("--cache-dir", default=None,
                   help="decoded-image cache (default: $TRACK1_CACHE_DIR or ~/.cache/track1/decoded)")
    p.add_argument("--no-prefix-sharing", action="store_true",
                   help="score one subnet at a time in list order instead of in prefix order "
                        "with shared stem/leading-block activations (same numbers, slower)")
    p.add_argument("--prefix-cache-gb", type=positive_float, default=None,
                   help="memory for cached prefix activations (default: 8 GB on CPU, half the "
                        "free memory on a GPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.evaluate.runner import EvalOptions, evaluate
    opts = EvalOptions(
        checkpoint=args.checkpoint, archs=args.archs, data=args.data,
        limit=args.limit,
        out=args.out, bn_mode=args.bn_mode, calib_images=args.calib_images,
        eval_images=args.eval_images, batch_size=args.batch_size,
        calib_batch_size=args.calib_batch_size, device=args.device,
        results_dir=args.results_dir, fresh=args.fresh,
        amp={"auto": None, "on": True, "off": False}[args.amp], cache_dir=args.cache_dir,
        progress=not args.no_progress, threads=args.threads,
        prefix_sharing=not args.no_prefix_sharing,
        prefix_cache_bytes=(None if args.prefix_cache_gb is None
                            else int(args.prefix_cache_gb * 1024 ** 3)))
    evaluate(opts)
    return 0

"""The command-line options both scoring commands take (``evaluate``, ``search``), from
one place: their flags, help and defaults (``track1.scoring.options.ScoringOptions``)."""
from __future__ import annotations

import argparse
from typing import Any

from track1.commands.argtypes import int_at_least


def add_scoring_arguments(p: argparse.ArgumentParser, d: Any, *, eval_help: str,
                          batch_help: str, fresh_help: str, fuse_help: str) -> None:
    """The shared flags, with ``d``'s defaults (a ``ScoringOptions``)."""
    from track1.scoring.modes import BN_MODES
    p.add_argument("--checkpoint", default=None,
                   help="supernet checkpoint (default: the latest *.pth under supernet_ckpt/)")
    p.add_argument("--data", default=None,
                   help="ImageFolder root with val/ (or test/) and train/, or a .tar/.tar.gz of "
                        "it (default: the embedded CIFAR-10 demo set)")
    p.add_argument("--eval-images", type=int_at_least(1), default=d.eval_images, help=eval_help)
    p.add_argument("--calib-images", type=int_at_least(1), default=d.calib_images,
                   help=f"training images for BN re-calibration, the same for every subnet "
                        f"(default {d.calib_images}; fewer where the data has fewer)")
    p.add_argument("--calib-batch-size", type=int_at_least(1), default=None,
                   help="chunk size of the calibration forward (default: the whole set on a GPU, "
                        "bounded on a CPU); the statistics are the whole set's whatever the "
                        "chunking, more chunks only cost more sweeps")
    p.add_argument("--bn-mode", choices=BN_MODES, default=d.bn_mode,
                   help=f"BN statistics per subnet (default: {d.bn_mode})")
    p.add_argument("--batch-size", type=int_at_least(1), default=None, help=batch_help)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--fresh", action="store_true", help=fresh_help)
    p.add_argument("--cache-dir", default=None,
                   help="decoded-image cache (default: $TRACK1_CACHE_DIR or ~/.cache/track1/decoded)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--fuse", default=None, metavar="PROXY:W,...",
                   help=fuse_help + " A weighted mean of ranks of the supernet's score (weight "
                        "1 - the others) and these zero-cost proxies, e.g. flops:0.3 (flops and "
                        "params are counted; other proxies come from --fuse-cache or are "
                        "computed). On NAS-Bench-201 it beat both parts (docs/RESULTS.md, "
                        "'Fusion'); off by default")
    p.add_argument("--fuse-cache", default=None, metavar="JSONL",
                   help="precomputed proxy scores per arch (track1 proxy-cache writes one)")


def scoring_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The shared options' values, as ``ScoringOptions`` keyword arguments."""
    return {"checkpoint": args.checkpoint, "data": args.data, "eval_images": args.eval_images,
            "calib_images": args.calib_images, "calib_batch_size": args.calib_batch_size,
            "bn_mode": args.bn_mode, "batch_size": args.batch_size, "device": args.device,
            "fresh": args.fresh, "cache_dir": args.cache_dir, "progress": not args.no_progress,
            "fuse": args.fuse, "fuse_cache": args.fuse_cache}

"""``python -m track1 train-subnet ARCH``: train one arch alone (``bash run.sh
train-subnet``), from scratch or from a supernet's weights.

It is the supernet trainer with one path: every step trains ARCH (the sampler draws only
it; the sandwich, distillation and ranking terms are off), so the run has the trainer's
data, config, checkpoints, resume, ``--val-gt`` and torchrun support. The weights ARCH
uses are exactly a stand-alone network's (the supernet's slices, the others untouched),
so ``track1 export ARCH --checkpoint <run>/last.pth`` gives the trained network.
"""
from __future__ import annotations

import argparse
import hashlib

from track1.commands.train import add_train_arguments
from track1.commands.train import run as run_training

#: the loss of stand-alone training: one path, cross-entropy on the labels
SINGLE_PATH = ["loss.largest=false", "loss.smallest=false", "loss.distill=false",
               "loss.num_random=1", "loss.ranking=none"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-subnet", help="train one arch alone, from scratch or from a supernet's weights",
        description="Stand-alone training of ARCH with the supernet trainer's machinery "
                    "(data, config, atomic checkpoints, --resume, --val-gt, torchrun): every step "
                    "trains ARCH with cross-entropy on the labels, nothing else. This is how to "
                    "make a small ground-truth set for your own supernet (train a few archs "
                    "alone, then `track1 train --val-gt FILE`). With --from-supernet the run "
                    "starts from that checkpoint's weights and takes its space and model; "
                    "without, from scratch in --space. The checkpoint lands in "
                    "<ckpt-dir>/<name>/ (default name subnet-<hash of ARCH>); export the trained "
                    "network with `track1 export ARCH --checkpoint <that>/last.pth`. Defaults: "
                    "the demo config on the embedded data.")
    p.add_argument("arch", metavar="ARCH", help="the arch's code (as in the lists and search "
                                                "outputs)")
    p.add_argument("--from-supernet", metavar="CKPT",
                   help="start from this supernet checkpoint's weights (its space and model)")
    add_train_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    extra: dict = {"subnet": args.arch}
    if args.name is None:
        extra["name"] = "subnet-" + hashlib.sha1(args.arch.encode()).hexdigest()[:10]
    if args.from_supernet:
        if args.init_from:
            from track1.train.errors import TrainError
            raise TrainError("--from-supernet and --init-from both name the starting weights; "
                             "pass one")
        from track1.infra.checkpoint import load_checkpoint
        saved = load_checkpoint(args.from_supernet)["config"]
        extra.update({"init.file": args.from_supernet,
                      "space": saved.get("space", "track1_resnet48"),
                      "model": saved.get("model") or {}})
        if args.space is not None and args.space != extra["space"]:
            from track1.train.errors import TrainError
            raise TrainError(f"--space {args.space} contradicts --from-supernet "
                             f"{args.from_supernet}, a {extra['space']!r} supernet")
    return run_training(args, extra, SINGLE_PATH)

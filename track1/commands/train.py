"""``python -m track1 train``: train the supernet (default: the CPU demo config).

The YAML config (``--config``, default ``demo``) sets the defaults; flags and
``--set key=value`` override them. ``bash run.sh train`` with no arguments trains the
demo on the embedded CIFAR-10 subset and leaves ``supernet_ckpt/demo/last.pth``, which
``bash run.sh evaluate`` picks up.
"""
from __future__ import annotations

import argparse

#: flag dest -> dotted config key
FLAGS = {"epochs": "schedule.epochs", "batch_size": "data.batch_size", "lr": "optim.lr",
         "image_size": "data.image_size", "data": "data.root", "name": "name",
         "resume": "runtime.resume", "init_from": "init.file", "device": "runtime.device",
         "seed": "seed", "workers": "data.workers", "ckpt_dir": "runtime.ckpt_dir",
         "max_steps_per_epoch": "schedule.max_steps_per_epoch", "ranking": "loss.ranking",
         "ranking_mode": "loss.ranking_mode", "teacher": "teacher.priors",
         "teacher_cache": "teacher.cache", "lambda_schedule": "lambda.schedule",
         "margin_threshold": "sampler.threshold", "space": "space", "val_gt": "val_gt.file",
         "val_gt_every": "val_gt.every"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the supernet (sandwich + ranking distillation)",
                       description="Train a weight-sharing supernet. With no arguments: the "
                                   "CPU demo (embedded CIFAR-10 subset, 32x32).")
    add_train_arguments(p)
    p.set_defaults(func=run)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of every training command (``train``, ``train-subnet``)."""
    p.add_argument("--config", default="demo",
                   help="YAML file or shipped config name (demo, track1_imagenet, ...)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, dotted (e.g. loss.num_pairs=2); repeatable")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="per-rank batch size")
    p.add_argument("--lr", type=float, help="base learning rate for a global batch of 256")
    p.add_argument("--image-size", type=int)
    p.add_argument("--data", help="dataset root (train/ and val/ class folders) or CIFAR-10 "
                                  "JPEG tar; default: the embedded CIFAR-10 subset")
    p.add_argument("--name", help="run name: checkpoints go to <ckpt-dir>/<name>/")
    p.add_argument("--ckpt-dir", help="checkpoint root (default supernet_ckpt/)")
    p.add_argument("--resume", help="checkpoint path, or 'auto' (this run's last.pth if any)")
    p.add_argument("--fresh", action="store_true",
                   help="start over even if this run already has a checkpoint (overwrites it)")
    p.add_argument("--init-from", help="start from weights: organisers' .pdparams or a track1 .pth")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="data loader workers (streamed datasets)")
    p.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (quick runs)")
    p.add_argument("--space", help="search space (track1_resnet48, nb201)")
    p.add_argument("--ranking", choices=["none", "hinge", "margin", "diffkendall"])
    p.add_argument("--ranking-mode", choices=["extra", "reuse"])
    p.add_argument("--teacher", help="prior(s): flops, params, zen, or a combination a+b")
    p.add_argument("--teacher-cache", help="JSONL cache of priors (track1 zen-cache)")
    p.add_argument("--lambda-schedule", choices=["constant", "warmup", "sine", "multistage"])
    p.add_argument("--margin-threshold", type=float, help="margin sampler's distance threshold")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.add_argument("--val-gt", metavar="FILE",
                   help="ground truth to rank against during training: the challenge's JSON "
                        "({key: {arch, acc}}) or a CSV with arch + accuracy columns (e.g. "
                        "track1/assets/nb201_cifar10_gt.csv.gz); logs Kendall/Spearman/Pearson "
                        "and keeps best.pth by Kendall (val_gt.* keys for more options)")
    p.add_argument("--val-gt-every", type=int, metavar="N", help="epochs between --val-gt checks")


def run(args: argparse.Namespace, extra: dict | None = None, sets: list[str] = ()) -> int:
    """Train with the flags of ``args``; ``extra`` (dotted key -> value) and ``sets``
    (``--set`` items) come after the flags and before the user's own ``--set`` items."""
    from track1.train.config import resolve_config
    from track1.train.loop import train
    overrides = {key: getattr(args, dest) for dest, key in FLAGS.items()}
    overrides.update(extra or {})
    if args.tensorboard:
        overrides["runtime.tensorboard"] = True
    if args.no_progress:
        overrides["runtime.progress"] = False
    config = resolve_config(args.config, overrides, [*sets, *args.sets])
    if args.fresh:
        if args.resume:
            from track1.train.errors import TrainError
            raise TrainError("--fresh and --resume contradict each other")
        config.runtime.resume = None
    path = train(config)
    import os
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"checkpoint: {path}", flush=True)
    return 0

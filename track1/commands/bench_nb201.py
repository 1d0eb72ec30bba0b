"""``python -m track1 bench-nb201``: rank-consistency bench on NAS-Bench-201 CIFAR-10.

Trains each method (SPOS baselines, RD-NAS variants) at the same budget and seed with
the shared trainer under a named protocol (``--protocol paper``: the RD-NAS authors' 4-op
space, CIFAR-10 train halves, batch 512 x 250 epochs; ``paper5``: the same on all 5 ops;
``quick``: the small default), scores a fixed set of archs at fractions of the budget,
and writes per run ``predictions*.csv`` and ``summary.json`` under ``--out``; finished
runs are skipped and interrupted ones resume. ``--compare-bn RUN`` scores one trained
run under every BN mode.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    from track1.scoring.modes import BN_MODES
    from track1.infra.paths import cifar10_tar
    from track1.bench.methods import METHODS
    from track1.bench.protocols import PROTOCOLS
    p = sub.add_parser("bench-nb201", help="NAS-Bench-201 ranking bench (SPOS vs RD-NAS)",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--protocol", default="quick", choices=sorted(PROTOCOLS),
                   help="paper: the authors' 4-op protocol at their budget (the headline); "
                        "paper5: the same on 5 ops; quick: small CPU-sized default. Every "
                        "option below left unset takes the protocol's value")
    p.add_argument("--out", default=None,
                   help="output folder (resumable; default: runs/bench_nb201 under the project "
                        "home: $TRACK1_HOME, else the working directory)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated, from: {', '.join(METHODS)}")
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--archs", type=int, default=None, help="fixed archs scored (seed 0)")
    p.add_argument("--all", action="store_true", help="score every arch of the protocol's set")
    p.add_argument("--data", default=None,
                   help=f"CIFAR-10 folder or tar, or 'embedded' for the packaged demo "
                        f"subset (default: $TRACK1_CIFAR10, else {cifar10_tar()})")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="cap steps per epoch (CPU budgets); default: the full epoch")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None,
                   help="base lr per 256 images (quick: 0.1 = NB201's 0.025 at batch 64; "
                        "paper: 0.0125 = the authors' 0.025 at batch 512)")
    p.add_argument("--fractions", default=None,
                   help="comma-separated budget fractions at which the set is scored "
                        "(Kendall over training), e.g. 0.1,0.25,0.5,1")
    p.add_argument("--engine", default="auto", choices=("auto", "plain", "fast"),
                   help="training step: fast = one static graph (CUDA graph on a GPU); auto = "
                        "fast on CUDA where the method allows it")
    p.add_argument("--scorer", default="auto", choices=("auto", "fast", "plain"),
                   help="fast: many archs per forward (FastNB201Scorer, for GPUs: fewer launches); "
                        "plain: one arch at a time (faster on a CPU, where the fast scorer's "
                        "gathers are memory-bound); auto: fast on CUDA, plain otherwise")
    p.add_argument("--archs-per-pass", type=int, default=None,
                   help="archs per forward of the fast scorer (default 50 on CUDA, 16 on CPU)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--bn-mode", default="recalibrate", choices=BN_MODES)
    p.add_argument("--compare-bn", default=None, metavar="RUN",
                   help="also score this run (e.g. spos_s0) under every BN mode")
    p.add_argument("--eval-images", type=int, default=None,
                   help="held-out images scored per arch")
    p.add_argument("--calib-images", type=int, default=None,
                   help="training images for BN re-calibration (same for every arch)")
    p.add_argument("--score-batch", type=int, default=256)
    p.add_argument("--target", default="valid", choices=("valid", "test"),
                   help="ground truth: cifar10_valid_acc or cifar10_test_acc")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra trainer config override for every run (dotted key)")
    p.add_argument("--jobs", type=int, default=1,
                   help="train up to N (method, seed) runs at once, each its own process with its "
                        "log in <out>/<run>/log.txt. On a GPU the plain NB201 step is launch-bound: six "
                        "processes gave 3.3x the throughput of one on an H100")
    p.add_argument("--train-only", action="store_true",
                   help="train every run through its fraction points (their checkpoints kept as "
                        "ckpt/supernet/atNNN.pth) and score nothing; a later call without it "
                        "scores them, on this machine or another")
    p.add_argument("--score-only", action="store_true",
                   help="train nothing: score the fraction points whose checkpoints exist (a run "
                        "cut off by a time limit is scored as far as it got)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _child_argv(args: argparse.Namespace, data: str | None, method: str, seed: int) -> list[str]:
    """This command for one (method, seed), every other option as given (``--jobs`` 1)."""
    argv = ["bench-nb201", "--protocol", args.protocol, "--out", str(args.out),
            "--methods", method, "--seeds", str(seed), "--data", data or "embedded",
            "--device", args.device, "--bn-mode", args.bn_mode, "--score-batch",
            str(args.score_batch), "--target", args.target, "--engine", args.engine,
            "--scorer", args.scorer, "--no-progress"]
    for flag in ("archs", "epochs", "steps_per_epoch", "batch_size", "eval_images",
                 "calib_images", "archs_per_pass", "fractions"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.lr is not None:
        argv += ["--lr", repr(args.lr)]
    if args.all:
        argv.append("--all")
    if args.train_only:
        argv.append("--train-only")
    if args.score_only:
        argv.append("--score-only")
    for item in args.set:
        argv += ["--set", item]
    return argv


def run_parallel(args: argparse.Namespace, data: str | None, runs: list[tuple[str, int]],
                 out: Path) -> tuple[list[dict], list[str]]:
    """Run ``runs`` as separate processes, at most ``args.jobs`` at a time; returns the
    summaries of those that finished and a line per failure."""
    import os
    import signal
    from track1.data import decode_to_tensor, resolve_source
    # decode the training images once into the shared cache, so the children only load it
    decode_to_tensor(resolve_source(data, "train"), 32, crop_ratio=1.0,
                     progress=not args.no_progress)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
    pending, active, summaries, failed = list(runs), [], [], []

    def stop(signum: int, frame: object) -> None:  # SIGTERM as Ctrl-C: the children stop too
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        _supervise(args, data, out, env, pending, active, summaries, failed)
    finally:  # interrupted (Ctrl-C, SIGTERM): stop the children; every run resumes later
        for _, _, log, proc in active:
            proc.terminate()
            proc.wait()
            log.close()
        signal.signal(signal.SIGTERM, previous)
    return summaries, failed


def _supervise(args: argparse.Namespace, data: str | None, out: Path, env: dict[str, str],
               pending: list, active: list, summaries: list, failed: list) -> None:
    """Start runs from ``pending`` while fewer than ``--jobs`` are ``active``; move each
    finished one to ``summaries`` or ``failed`` (the lists are the caller's, so that an
    interrupted caller still sees which children are running)."""
    import subprocess
    import sys
    import time
    while pending or active:
        while pending and len(active) < args.jobs:
            method, seed = pending.pop(0)
            run_dir = out / f"{method}_s{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            log = open(run_dir / "log.txt", "a")
            cmd = [sys.executable, "-m", "track1", *_child_argv(args, data, method, seed)]
            active.append((method, seed, log, subprocess.Popen(cmd, stdout=log,
                                                               stderr=subprocess.STDOUT, env=env)))
            print(f"started {run_dir.name} (log: {run_dir / 'log.txt'})", flush=True)
        time.sleep(0.5)
        for item in list(active):
            method, seed, log, proc = item
            if proc.poll() is None:
                continue
            active.remove(item)
            log.close()
            run_dir = out / f"{method}_s{seed}"
            summary = run_dir / "summary.json"
            if proc.returncode == 0 and args.train_only:
                print(f"trained {run_dir.name}", flush=True)
            elif proc.returncode == 0 and summary.exists():
                summaries.append(json.loads(summary.read_text()))
                print(f"finished {run_dir.name}", flush=True)
            else:
                tail = (run_dir / "log.txt").read_text().strip().splitlines()[-1:] or [""]
                failed.append(f"{run_dir.name}: exit {proc.returncode}: {tail[0]}")
                print(f"FAILED {failed[-1]}", flush=True)


def resolve_inputs(args: argparse.Namespace) -> tuple[list[str], list[int], Any, str | None]:
    """Methods, seeds, the protocol with the command line's overrides, and the data; a
    ``BenchError`` line for the first bad input (nothing is written before)."""
    from track1.bench.errors import BenchError
    from track1.bench.methods import METHODS
    from track1.bench.protocols import get_protocol
    from track1.infra.paths import cifar10_tar
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.train_only and args.score_only:
        raise BenchError("--train-only and --score-only exclude each other")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise BenchError(f"unknown bench method(s) {bad}; choose from {list(METHODS)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise BenchError(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    for name in ("archs", "epochs", "batch_size", "eval_images", "calib_images", "score_batch",
                 "jobs", "archs_per_pass", "steps_per_epoch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    protocol = get_protocol(args.protocol).with_overrides(
        archs=args.archs, eval_images=args.eval_images, calib_images=args.calib_images,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    if args.fractions is not None:
        try:
            fractions = tuple(float(f) for f in args.fractions.split(",") if f.strip())
        except ValueError:
            fractions = ()
        if not fractions or not all(0 < f <= 1 for f in fractions):
            raise BenchError(f"--fractions must be comma-separated numbers in (0, 1], "
                             f"got {args.fractions!r}")
        protocol = protocol.with_overrides(fractions=fractions)
    if args.lr is not None and not args.lr > 0:
        raise BenchError(f"--lr must be > 0, got {args.lr}")
    data = args.data or str(cifar10_tar())
    if data == "embedded":
        data = None
    elif not Path(data).exists():
        raise BenchError(f"CIFAR-10 data not found: {data} (pass --data FOLDER_OR_TAR)")
    return methods, seeds, protocol, data


def run(args: argparse.Namespace) -> int:
    from track1.bench.bn_compare import compare_bn_modes
    from track1.bench.data import bench_archs, load_eval_data
    from track1.bench.run import run_method
    from track1.infra import paths
    methods, seeds, protocol, data = resolve_inputs(args)
    out = Path(args.out) if args.out else paths.runs_dir("bench_nb201")
    args.out = str(out)
    codes = bench_archs(protocol.archs, args.all, none_free=protocol.none_free)
    eval_data = load_eval_data(data, protocol.eval_images, protocol.calib_images,
                               protocol=protocol)
    import torch
    cuda = torch.cuda.is_available() and args.device != "cpu"
    options = dict(bn_mode=args.bn_mode, target=args.target, score_batch=args.score_batch,
                   train_kwargs={"data": data, "protocol": protocol, "epochs": protocol.epochs,
                                 "steps_per_epoch": args.steps_per_epoch,
                                 "batch_size": protocol.batch_size, "lr": protocol.lr,
                                 "device": args.device, "engine": args.engine,
                                 "progress": not args.no_progress, "extra": args.set},
                   fractions=protocol.fractions,
                   scorer=args.scorer if args.scorer != "auto" else ("fast" if cuda else "plain"),
                   archs_per_pass=args.archs_per_pass or (50 if cuda else 16))
    out.mkdir(parents=True, exist_ok=True)
    results, failed = [], []
    runs = [(method, seed) for seed in seeds for method in methods]
    names = [f"{m}_s{s}" for m, s in runs]
    if args.jobs > 1 and len(runs) > 1:
        results, failed = run_parallel(args, data, runs, out)
        order = {f"{m}_s{s}": i for i, (m, s) in enumerate(runs)}
        results.sort(key=lambda r: order[r["run"]])
        runs = []  # all done by the child processes
    for method, seed in runs:  # in this process, one after another
        try:
            results.append(run_method(method, seed, out, codes, eval_data,
                                      train_only=args.train_only, score_only=args.score_only,
                                      **options))
        except (ValueError, RuntimeError, ArithmeticError) as e:
            # one failing method (e.g. a teacher that cannot score) must not lose the rest
            failed.append(f"{method}_s{seed}: {type(e).__name__}: {str(e).splitlines()[0]}")
            print(f"FAILED {failed[-1]}", flush=True)
    if args.train_only:
        print(json.dumps({"protocol": protocol.name, "trained": names, "failed": failed}))
        return 1 if failed else 0
    if args.compare_bn:
        compare_bn_modes(args.compare_bn, out, codes, eval_data, target=args.target,
                         score_batch=args.score_batch)
    print(json.dumps({"protocol": protocol.name, "archs": len(codes),
                      "runs": [summary_row(r) for r in results], "failed": failed}, indent=1))
    return 1 if failed else 0


def summary_row(r: dict[str, Any]) -> dict[str, Any]:
    """A run's line of the printed table: Kendall by each key and the noise floor."""
    return {"run": r["run"], **{k: round(r["accuracy"][k], 4)
                                for k in ("kendall", "spearman", "pearson", "top10_precision")},
            "kendall_neg_loss": round(r["neg_loss"]["kendall"], 4),
            "kendall_acc_tiebreak": round(r["acc_tiebreak"]["kendall"], 4),
            # the scorer's noise floor: Kendall between the two halves' scores
            "split_half": {k: round(v, 4) for k, v in r.get("split_half", {}).items()}}

"""The NAS-Bench-201 ranking bench: train supernets at equal budget and seed, score a
fixed set of archs, and measure the ranking against real stand-alone accuracies.

Layout under ``out`` (every step resumable; a finished run is skipped)::

    out/<method>_s<seed>/ckpt/supernet/last.pth   the shared trainer's checkpoint
    out/<method>_s<seed>/predictions.csv          arch, pred, gt, loss (appended per arch)
    out/<method>_s<seed>/summary.json             metrics, budget, wall time (written last)
    out/bn_compare/<run>/predictions_<mode>.csv   one trained supernet under each BN mode
    out/bn_compare/<run>/summary.json

Training is the team's trainer (``track1.train.loop.train``) with ``space: nb201``; a
method is only a set of config overrides (``METHODS``). The SPOS baseline trains two
uniformly drawn single paths per step; every RD-NAS variant trains the same two paths
and ranks them against each other with the teacher's order (``ranking_mode: reuse``),
so both arms run exactly the same forwards and backwards per step: equal budget.
Ground truth is read only after scoring, to measure.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from track1.atomic import atomic_write
from track1.evaluate.bn import BN_MODES
from track1.nb201.ground_truth import TARGETS, fixed_subset, load_ground_truth
from track1.nb201.space import decode

#: the shared CIFAR-10 tarball, relative to the repository root
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10" / \
    "cifar10-jpeg.tar.gz"

_SPOS_LOSS = {"largest": False, "smallest": False, "num_random": 2, "distill": False,
              "ranking": "none"}


def _rdnas(priors: str, ranking: str = "margin", threshold: float = 6.7,
           distance: str = "group") -> dict[str, Any]:
    return {"loss": {**_SPOS_LOSS, "ranking": ranking, "ranking_mode": "reuse"},
            "sampler": {"threshold": threshold, "distance": distance},
            "teacher": {"priors": priors}}


#: method name -> trainer config overrides (on top of the bench's common config)
METHODS: dict[str, dict[str, Any]] = {
    "spos": {"loss": dict(_SPOS_LOSS), "sampler": {"threshold": 0.0, "distance": None}},
    "rdnas_flops": _rdnas("flops"),
    "rdnas_params": _rdnas("params"),
    "rdnas_zen": _rdnas("zen"),
    "rdnas_synflow": _rdnas("synflow"),
    "rdnas_naswot": _rdnas("naswot"),
    "rdnas_flops_nosampler": _rdnas("flops", threshold=0.0),
    "rdnas_flops_hamming": _rdnas("flops", threshold=3.0, distance="hamming"),
    "rdnas_flops_hinge": _rdnas("flops", ranking="hinge"),
    "rdnas_flops_diffkendall": _rdnas("flops", ranking="diffkendall"),
}


class BenchError(ValueError):
    """Bad bench input (unknown method, missing data, ...): one line, exit 2."""


# ------------------------------------------------------------------------ metrics
def rank_metrics(pred: Sequence[float], gt: Sequence[float], top: float = 0.1) -> dict[str, float]:
    """Kendall tau-b, Spearman, Pearson (``track1.evaluate.metrics``, shared with
    evaluate's rank report), and the precision of the predicted top ``top`` share (how
    many of the predicted best 10% are in the true best 10%). A correlation that is
    undefined (a constant side) is reported as 0.0."""
    from track1.evaluate.metrics import kendall, pearson, spearman, top_k_precision
    p = [float(v) for v in pred]
    g = [float(v) for v in gt]
    if len(p) < 2:
        raise BenchError("ranking metrics need at least 2 archs")
    k = max(1, int(round(top * len(p))))
    out = {"kendall": 0.0, "spearman": 0.0, "pearson": 0.0,
           f"top{int(round(top * 100))}_precision": top_k_precision(p, g, k), "n": len(p)}
    for key, fn in (("kendall", kendall), ("spearman", spearman), ("pearson", pearson)):
        v = fn(p, g)
        out[key] = v if math.isfinite(v) else 0.0
    return out


# ------------------------------------------------------------------------ data
def load_eval_data(data: str | os.PathLike | None, eval_images: int, calib_images: int,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed evaluation images (a seeded subset of the held-out split) with labels, and
    fixed calibration images (a seeded subset of the training split), as uint8 tensors
    (the shared ``SubnetScorer`` normalises them once)."""
    import random
    from track1.data import DataError, decode_to_tensor, resolve_source
    try:
        val = resolve_source(data, "val")
        train = resolve_source(data, "train")
    except DataError as e:
        raise BenchError(str(e)) from None
    vi = sorted(random.Random(seed).sample(range(len(val)), min(eval_images, len(val))))
    ti = sorted(random.Random(seed + 1).sample(range(len(train)), min(calib_images, len(train))))
    vx, vy = decode_to_tensor(val, 32, indices=vi, crop_ratio=1.0, progress=False)
    cx, _ = decode_to_tensor(train, 32, indices=ti, crop_ratio=1.0, progress=False)
    return vx, vy, cx


# ------------------------------------------------------------------------ scoring
def _percent(acc: float) -> float:
    return 100.0 * acc


def read_predictions(path: Path) -> dict[str, dict[str, str]]:
    """Rows already written (a torn last line from a crash is dropped)."""
    if not path.exists():
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("loss") not in (None, ""):
                rows[row["arch"]] = row
    return rows


def score_run(supernet: nn.Module, codes: Sequence[str], path: Path, eval_data: tuple,
              bn_mode: str, target: str = "valid", batch: int = 256,
              progress: bool = True) -> dict[str, dict[str, str]]:
    """Score every arch of ``codes`` into ``path`` (CSV appended and flushed per arch;
    archs already in the file are skipped, so an interrupted scoring resumes)."""
    from tqdm import tqdm
    gt = load_ground_truth()
    images, labels, calib = eval_data
    done = read_predictions(path)
    todo = [c for c in codes if c not in done]
    if todo:
        from track1.evaluate import SubnetScorer
        device = next(supernet.parameters()).device
        if path.exists():  # rewrite only complete rows (drops a torn line)
            _write_rows(path, list(done.values()))
        new = not path.exists()
        # The shared engine (the one `evaluate` uses); it restores the supernet's BN
        # buffers on exit. Calibration chunks = the scoring batch, as the bench always had.
        with SubnetScorer(supernet, images, labels, calib if bn_mode == "recalibrate" else None,
                          bn_mode=bn_mode, batch_size=batch, calib_batch_size=batch,
                          device=device) as scorer, open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["arch", "pred", "gt", "loss"])
            for code in tqdm(todo, desc=f"score {path.parent.name} ({bn_mode})", unit="arch",
                             disable=not progress, dynamic_ncols=True, leave=False):
                acc, loss = scorer.evaluate(decode(code))
                row = [code, f"{_percent(acc):.4f}", f"{getattr(gt[code], target):.4f}",
                       f"{loss:.6f}"]
                w.writerow(row)
                f.flush()
                done[code] = dict(zip(["arch", "pred", "gt", "loss"], row))
    return {c: done[c] for c in codes}


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=["arch", "pred", "gt", "loss"])
        w.writeheader()
        w.writerows(rows)
    atomic_write(path, write, binary=False)


def metrics_of(rows: Iterable[dict[str, str]]) -> dict[str, Any]:
    rows = list(rows)
    gt = [float(r["gt"]) for r in rows]
    return {"accuracy": rank_metrics([float(r["pred"]) for r in rows], gt),
            "neg_loss": rank_metrics([-float(r["loss"]) for r in rows], gt)}


# ------------------------------------------------------------------------ orchestration
def bench_config(method: str, seed: int, run_dir: Path, *, data: str, epochs: int,
                 steps_per_epoch: int | None, batch_size: int, lr: float, device: str,
                 progress: bool, extra: Sequence[str] = ()) -> dict:
    """The trainer's resolved config for one bench run (equal for every method but
    the method's own overrides)."""
    from track1.train.config import resolve_config, set_dotted
    if method not in METHODS:
        raise BenchError(f"unknown bench method {method!r}; choose from {sorted(METHODS)}")
    overrides = {
        "name": "supernet", "space": "nb201", "data": data, "image_size": 32,
        "augment": "crop_flip", "batch_size": batch_size, "epochs": epochs,
        "max_steps_per_epoch": steps_per_epoch, "lr": lr, "weight_decay": 5e-4,
        "warmup_epochs": 0.0 if epochs < 3 else 1.0, "momentum": 0.9, "nesterov": True,
        "device": device, "seed": seed, "ckpt_dir": str(run_dir / "ckpt"), "resume": "auto",
        "progress": progress, "log_interval": 50, "save_every_steps": 100,
        # lambda warms up over the first 30% of the run (PGONAS: min(2, e / 10) of 70)
        "lambda.schedule": "warmup", "lambda.cap": 2.0,
        "lambda.epochs_per_unit": max(0.15 * epochs, 1e-6),
    }
    config = resolve_config(None, overrides, list(extra))
    config["model"] = {"num_classes": 10, "C": 16, "N": 5}
    for section, values in METHODS[method].items():
        for key, value in values.items():
            set_dotted(config, f"{section}.{key}", copy.deepcopy(value))
    from track1.train.config import validate
    validate(config)
    return config


def run_method(method: str, seed: int, out: Path, codes: Sequence[str], eval_data: tuple, *,
               bn_mode: str, target: str, train_kwargs: dict, score_batch: int,
               log: Callable[[str], None] = print, batches: Any = None) -> dict:
    """Train (or resume) one method, score ``codes``, write the summary; returns it."""
    from track1.checkpoint import load_checkpoint
    from track1.models import build_supernet
    from track1.train.loop import train
    run_dir = out / f"{method}_s{seed}"
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("archs") == len(codes) and summary.get("bn_mode") == bn_mode:
            log(f"{run_dir.name}: finished earlier, skipped")
            return summary
    run_dir.mkdir(parents=True, exist_ok=True)
    config = bench_config(method, seed, run_dir, **train_kwargs)
    # wall time per trained step, summed over sessions (a killed session's time is lost,
    # its steps are not counted either, so the per-step figure stays honest)
    timing_path = run_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timing = {"train_s": 0.0, "steps_timed": 0, **timing}
    last_path = Path(config["ckpt_dir"]) / config["name"] / "last.pth"
    steps_before = int(load_checkpoint(last_path)["step"]) if last_path.exists() else 0
    t0 = time.perf_counter()
    last = train(config, batches=batches, log=log)
    ckpt = load_checkpoint(last)
    if int(ckpt["step"]) > steps_before:
        timing["train_s"] += time.perf_counter() - t0
        timing["steps_timed"] += int(ckpt["step"]) - steps_before
    _write_json(timing_path, timing)
    supernet = build_supernet(ckpt["config"])
    supernet.load_state_dict(ckpt["model"])
    device = torch.device("cuda" if torch.cuda.is_available() and config["device"] != "cpu"
                          else "cpu")
    supernet.to(device)
    t0 = time.perf_counter()
    rows = score_run(supernet, codes, run_dir / "predictions.csv", eval_data, bn_mode, target,
                     score_batch, progress=config["progress"])
    score_s = time.perf_counter() - t0
    steps = int(ckpt["step"])
    summary = {
        "run": run_dir.name, "method": method, "seed": seed, "archs": len(codes),
        "target": f"cifar10_{target}_acc", "bn_mode": bn_mode,
        **metrics_of(rows.values()),
        "budget": {"epochs": config["epochs"], "steps": steps,
                   "steps_per_epoch": config["max_steps_per_epoch"],
                   "batch_size": config["batch_size"], "paths_per_step": 2,
                   "images_seen": steps * config["batch_size"], "lr": config["lr"],
                   "device": str(device), "threads": torch.get_num_threads(),
                   "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                   else "CPU")},
        "eval": {"images": len(eval_data[0]), "calib_images": len(eval_data[2])},
        "wall_s": {"train": round(timing["train_s"] * steps / max(timing["steps_timed"], 1), 1),
                   "train_per_step": round(timing["train_s"] / max(timing["steps_timed"], 1), 3),
                   "score_this_session": round(score_s, 1)},
        "config": {k: config[k] for k in ("loss", "sampler", "teacher", "lambda")},
    }
    _write_json(summary_path, summary)
    m = summary["accuracy"]
    log(f"{run_dir.name}: Kendall {m['kendall']:.4f} Spearman {m['spearman']:.4f} "
        f"Pearson {m['pearson']:.4f} top10 {m['top10_precision']:.2f} over {len(codes)} archs")
    return summary


def compare_bn_modes(run: str, out: Path, codes: Sequence[str], eval_data: tuple, *,
                     target: str, score_batch: int, modes: Sequence[str] = BN_MODES,
                     log: Callable[[str], None] = print) -> dict:
    """Score one trained run's supernet under each BN mode (picks evaluate's default)."""
    from track1.checkpoint import find_latest, load_checkpoint
    from track1.models import build_supernet
    ckpt_path = out / run / "ckpt" / "supernet" / "last.pth"
    if not ckpt_path.exists():
        raise BenchError(f"no trained supernet for run {run!r} at {ckpt_path}; train it first")
    ckpt = load_checkpoint(ckpt_path)
    supernet = build_supernet(ckpt["config"])
    supernet.load_state_dict(ckpt["model"])
    if torch.cuda.is_available() and ckpt["config"].get("device") != "cpu":
        supernet.cuda()
    cmp_dir = out / "bn_compare" / run
    cmp_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"run": run, "archs": len(codes), "target": f"cifar10_{target}_acc",
                              "eval": {"images": len(eval_data[0]),
                                       "calib_images": len(eval_data[2])}, "modes": {}}
    run_summary = out / run / "summary.json"
    run_mode = json.loads(run_summary.read_text()).get("bn_mode") if run_summary.exists() else None
    for mode in modes:
        t0 = time.perf_counter()
        target_csv = cmp_dir / f"predictions_{mode}.csv"
        if mode == run_mode and not target_csv.exists():
            # the run was already scored in this mode on the same images: reuse its rows
            rows = read_predictions(out / run / "predictions.csv")
            if all(c in rows for c in codes):
                _write_rows(target_csv, [rows[c] for c in codes])
        rows = score_run(supernet, codes, target_csv, eval_data, mode, target, score_batch)
        result["modes"][mode] = {**metrics_of(rows.values()),
                                 "score_s_this_session": round(time.perf_counter() - t0, 1)}
        m = result["modes"][mode]["accuracy"]
        log(f"bn {mode}: Kendall {m['kendall']:.4f} Spearman {m['spearman']:.4f}")
    _write_json(cmp_dir / "summary.json", result)
    return result


def _write_json(path: Path, obj: Any) -> None:
    from track1.evaluate.results import write_json_atomic
    write_json_atomic(obj, path, indent=1)


def bench_archs(n: int, all_archs: bool, seed: int = 0) -> list[str]:
    return fixed_subset(15625 if all_archs else n, seed=seed)


__all__ = ["BN_MODES", "METHODS", "BenchError", "TARGETS", "bench_archs", "bench_config",
           "compare_bn_modes", "load_eval_data", "metrics_of", "rank_metrics",
           "run_method", "score_run"]

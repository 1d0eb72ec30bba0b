"""The NAS-Bench-201 ranking bench: train supernets at equal budget and seed, score a
fixed set of archs, and measure the ranking against real stand-alone accuracies.

Layout under ``out`` (every step resumable; a finished run is skipped)::

    out/<method>_s<seed>/ckpt/supernet/last.pth   the shared trainer's checkpoint
    out/<method>_s<seed>/predictions.csv          arch, pred, gt, loss (appended per arch)
    out/<method>_s<seed>/predictions_at010.csv    the same set scored at 10% of the budget
    out/<method>_s<seed>/summary.json             metrics, curve, protocol, budget, wall time
    out/bn_compare/<run>/predictions_<mode>.csv   one trained supernet under each BN mode
    out/bn_compare/<run>/summary.json

A protocol (``track1.nb201.protocols``: ``paper``, ``paper5``, ``quick``) fixes the
space, data, budget and scored set. Training is the team's trainer
(``track1.train.loop.train``) with ``space: nb201``; a method is only a set of config
overrides (``METHODS``). ``spos`` trains two uniformly drawn single paths per step, as
every RD-NAS variant does (they rank the two against each other with the teacher's order,
``ranking_mode: reuse``): equal budget. ``spos1`` is the authors' one-path SPOS. On a GPU
the step runs as one static graph (``engine: fast``, ``track1.nb201.fast``) and scoring
carries many archs per forward (``track1.nb201.fast_scorer``); both are tested equal to
the plain paths. Ground truth is read only after scoring, to measure.
"""
from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import torch
from torch import nn

from track1.infra.errors import UserError
from track1.evaluate.bn import BN_MODES
from track1.nb201.ground_truth import TARGETS, fixed_subset, load_ground_truth
from track1.nb201.methods import METHODS
from track1.nb201.space import decode
from track1.infra.resumable import AppendLog, read_records, write_records

if TYPE_CHECKING:  # the trainer loads torch-heavy modules: only where a run starts
    from track1.evaluate.engine import SubnetScore
    from track1.train.config import TrainConfig



def lambda_options(base: dict[str, Any], variant: str | None, epochs: float) -> dict[str, Any]:
    """The protocol's lambda schedule, rescaled by a method's ``lambda_variant``."""
    from track1.nb201.protocols import resolve_lambda
    lam = resolve_lambda(base, epochs)
    if variant is None:
        return lam
    if variant == "cap1":
        if lam.get("schedule") == "sine":
            return {**lam, "amplitude": 1.0}
        return {**lam, "cap": 1.0}
    if variant == "ramp":
        return {"schedule": "warmup", "cap": 1.0, "epochs_per_unit": float(epochs)}
    raise ValueError(f"unknown lambda variant {variant!r}")


class BenchError(UserError, ValueError):
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
                   seed: int = 0, protocol: Any = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fixed evaluation images with labels and fixed calibration images, as uint8 tensors
    (the scorers normalise them once). With a ``held_out`` protocol both come from the
    CIFAR-10 training set: evaluation images from the held-out part, calibration images
    from the training part; otherwise evaluation images come from the test split."""
    import random
    from track1.data import DataError, decode_to_tensor, resolve_source
    try:
        train = resolve_source(data, "train")
        val = None if protocol is not None and protocol.eval_source == "held_out" \
            else resolve_source(data, "val")
    except DataError as e:
        raise BenchError(str(e)) from None
    if val is None:
        from track1.data.split import split_indices
        train_part, held_out = split_indices(len(train), protocol.train_fraction,
                                             protocol.split_seed)
        # random.sample's order is random: never the class-sorted storage order
        vi = random.Random(seed).sample(held_out, min(eval_images, len(held_out)))
        ti = random.Random(seed + 1).sample(train_part, min(calib_images, len(train_part)))
        vx, vy = decode_to_tensor(train, 32, indices=vi, crop_ratio=1.0, progress=False)
    else:
        vi = random.Random(seed).sample(range(len(val)), min(eval_images, len(val)))
        ti = random.Random(seed + 1).sample(range(len(train)), min(calib_images, len(train)))
        vx, vy = decode_to_tensor(val, 32, indices=vi, crop_ratio=1.0, progress=False)
    cx, _ = decode_to_tensor(train, 32, indices=ti, crop_ratio=1.0, progress=False)
    return vx, vy, cx


# ------------------------------------------------------------------------ scoring
def _percent(acc: float) -> float:
    return 100.0 * acc


#: columns every predictions CSV has (one scored arch per row)
PREDICTION_FIELDS = ("arch", "pred", "gt", "loss")
#: the same on each half of the evaluation images (scorer 2 on): the noise floor
HALF_FIELDS = ("pred_a", "pred_b", "loss_a", "loss_b")
#: how a run's scores order the archs: top-1, minus the loss, top-1 with its ties broken
#: by minus the loss (top-1 on a few thousand images ties often)
RANK_KEYS = ("accuracy", "neg_loss", "acc_tiebreak")


def read_predictions(path: Path) -> dict[str, dict[str, str]]:
    """Rows already written, by arch (a torn or damaged line from a crash is dropped)."""
    return {r["arch"]: r for r in read_records(path, "arch", PREDICTION_FIELDS)[0]}


def rank_values(rows: Sequence[dict[str, str]], key: str, half: str = "") -> list[float]:
    """The scores that order ``rows`` by ``key`` (``RANK_KEYS``), higher = better; on the
    evaluation images' half ``half`` ('a' or 'b') or on all of them ('')."""
    suffix = f"_{half}" if half else ""
    acc = [float(r["pred" + suffix]) for r in rows]
    neg_loss = [-float(r["loss" + suffix]) for r in rows]
    if key == "accuracy":
        return acc
    if key == "neg_loss":
        return neg_loss
    if key == "acc_tiebreak":
        from track1.evaluate.metrics import tie_broken
        return tie_broken(acc, neg_loss)
    raise ValueError(f"unknown rank key {key!r}; choose from {list(RANK_KEYS)}")


def split_half(rows: Sequence[dict[str, str]]) -> dict[str, float] | None:
    """The scorer's noise floor: Kendall between the archs' scores on the two halves of
    the evaluation images, by each rank key (None where the rows have no halves)."""
    from track1.evaluate.metrics import kendall
    if len(rows) < 2 or not all(r.get(f) not in (None, "") for r in rows for f in HALF_FIELDS):
        return None
    out = {}
    for key in RANK_KEYS:
        v = kendall(rank_values(rows, key, "a"), rank_values(rows, key, "b"))
        out[key] = v if math.isfinite(v) else 0.0
    return out


def score_run(supernet: nn.Module, codes: Sequence[str], path: Path, eval_data: tuple,
              bn_mode: str, target: str = "valid", batch: int = 256,
              progress: bool = True, scorer: str = "plain",
              archs_per_pass: int = 32) -> dict[str, dict[str, str]]:
    """Score every arch of ``codes`` into ``path`` (CSV appended and flushed per arch, or
    per pass of ``archs_per_pass`` with the fast scorer; archs already in the file are
    skipped, so an interrupted scoring resumes). ``scorer``: ``plain`` (the shared
    ``SubnetScorer``, one arch at a time) or ``fast`` (``FastNB201Scorer``). Both
    calibrate in chunks of the scoring batch, as the bench always has."""
    from tqdm import tqdm
    gt = load_ground_truth()
    claim_scorer(path.parent)
    with AppendLog(path, "arch", PREDICTION_FIELDS + HALF_FIELDS) as log, \
            tqdm(total=len(codes), desc=f"score {path.parent.name} ({bn_mode}, {scorer})",
                 unit="arch", disable=not progress, dynamic_ncols=True, leave=False) as bar:
        todo = [c for c in codes if c not in log.done]
        bar.update(len(codes) - len(todo))

        def record(code: str, score: "SubnetScore") -> None:
            (acc_a, acc_b), (loss_a, loss_b) = score.acc_halves, score.loss_halves
            log.append({"arch": code, "pred": f"{_percent(score.acc):.4f}",
                        "gt": f"{getattr(gt[code], target):.4f}", "loss": f"{score.loss:.6f}",
                        "pred_a": f"{_percent(acc_a):.4f}", "pred_b": f"{_percent(acc_b):.4f}",
                        "loss_a": f"{loss_a:.6f}", "loss_b": f"{loss_b:.6f}"})
            bar.update(1)
        if todo:
            run = _score_fast if scorer == "fast" else _score_plain
            run(supernet, todo, eval_data, bn_mode, batch, archs_per_pass, record, log.flush)
        return {c: log.done[c] for c in codes}


def _score_plain(supernet: nn.Module, todo: list[str], eval_data: tuple, bn_mode: str,
                 batch: int, archs_per_pass: int, record: Callable, flush: Callable) -> None:
    from track1.evaluate import SubnetScorer
    images, labels, calib = eval_data
    # the shared engine (the one `evaluate` uses); it restores the supernet's BN buffers
    with SubnetScorer(supernet, images, labels, calib if bn_mode == "recalibrate" else None,
                      bn_mode=bn_mode, batch_size=batch,
                      device=next(supernet.parameters()).device) as scorer:
        for code in todo:
            scorer.score(decode(code))
            record(code, scorer.last)
            flush()


def _score_fast(supernet: nn.Module, todo: list[str], eval_data: tuple, bn_mode: str,
                batch: int, archs_per_pass: int, record: Callable, flush: Callable) -> None:
    from track1.nb201.fast_scorer import FastNB201Scorer
    from track1.nb201.space import encode
    images, labels, calib = eval_data
    scorer = FastNB201Scorer(supernet, images, labels, calib if bn_mode == "recalibrate" else None,
                             bn_mode=bn_mode, batch_size=batch, archs_per_pass=archs_per_pass,
                             device=next(supernet.parameters()).device)
    for lo in range(0, len(todo), archs_per_pass):
        scorer.evaluate_many(todo[lo:lo + archs_per_pass],
                             lambda arch, score: record(encode(arch), score))
        flush()


def metrics_of(rows: Iterable[dict[str, str]]) -> dict[str, Any]:
    """Ranking metrics by every rank key (``RANK_KEYS``) and, where the rows have each
    half's scores, the scorer's noise floor (``split_half``); where the set mixes archs
    with and without ``none`` edges, also over its none-free part (the paper's quantity)."""
    from track1.nb201.ground_truth import has_none
    rows = list(rows)
    gt = [float(r["gt"]) for r in rows]
    out: dict[str, Any] = {key: rank_metrics(rank_values(rows, key), gt) for key in RANK_KEYS}
    noise = split_half(rows)
    if noise is not None:
        out["split_half"] = noise
    free = [r for r in rows if not has_none(r["arch"])]
    if 2 <= len(free) < len(rows):
        out["none_free"] = {k: v for k, v in metrics_of(free).items()}
    return out


def claim_scorer(run_dir: Path) -> None:
    """Tie ``run_dir``'s prediction files to this scorer (``SCORER_VERSION``): scores of
    another scorer (sorted images, chunk-averaged BN statistics) are never mixed in."""
    from track1.evaluate.images import SCORER_VERSION
    marker = run_dir / "scorer.json"
    if marker.exists():
        found = json.loads(marker.read_text()).get("scorer")
    else:
        found = 1 if any(run_dir.glob("predictions*.csv")) else None
    if found is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(marker, {"scorer": SCORER_VERSION})
    elif found != SCORER_VERSION:
        raise BenchError(f"{run_dir}: its predictions come from scorer {found}, this is scorer "
                         f"{SCORER_VERSION}; move its predictions*.csv and summary.json away "
                         "(the checkpoints stay) to score it again, or use another --out")


# ------------------------------------------------------------------------ orchestration
def bench_config(method: str, seed: int, run_dir: Path, *, data: str, protocol: Any = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, device: str = "auto",
                 progress: bool = True, engine: str = "plain",
                 extra: Sequence[str] = ()) -> TrainConfig:
    """The trainer's resolved config for one bench run (equal for every method but
    the method's own overrides). ``protocol`` (default ``quick``) sets everything the
    explicit arguments do not."""
    from track1.nb201.protocols import get_protocol
    from track1.train.config import resolve_config
    if method not in METHODS:
        raise BenchError(f"unknown bench method {method!r}; choose from {sorted(METHODS)}")
    p = protocol or get_protocol("quick")
    epochs = p.epochs if epochs is None else epochs
    warmup = p.warmup_epochs if p.warmup_epochs is not None else (0.0 if epochs < 3 else 1.0)
    overrides = {
        "name": "supernet", "space": "nb201", "data": data, "image_size": 32,
        "augment": "crop_flip", "batch_size": p.batch_size if batch_size is None else batch_size,
        "epochs": epochs, "max_steps_per_epoch": steps_per_epoch,
        "lr": p.lr if lr is None else lr, "min_lr": p.min_lr, "weight_decay": p.weight_decay,
        "warmup_epochs": warmup, "sched_per": p.sched_per, "momentum": 0.9,
        "nesterov": p.nesterov, "device": device, "seed": seed,
        "ckpt_dir": str(run_dir / "ckpt"), "resume": "auto", "progress": progress,
        "log_interval": 50, "save_every_steps": 100, "engine": engine,
        "train_subset": ({"fraction": p.train_fraction, "seed": p.split_seed}
                         if p.train_fraction else None),
    }
    spec = METHODS[method]
    overrides["model"] = p.model()
    overrides["lambda"] = lambda_options(p.lam, spec.get("lambda_variant"), epochs)
    for section, values in spec.items():
        if section not in ("lambda_variant", "fewshot"):
            overrides.update({f"{section}.{key}": copy.deepcopy(value)
                              for key, value in values.items()})
    # --set items last, so they override protocol and method alike
    return resolve_config(None, overrides, list(extra))


def choose_engine(engine: str, config: TrainConfig) -> str:
    """``auto``: the static-graph step on CUDA where the method's step is covered (SPOS,
    reuse-mode hinge/margin pairs), the plain step otherwise (on a CPU the static graph's
    every-op forward costs more FLOPs than it saves launches)."""
    if engine != "auto":
        return engine
    from track1.nb201.fast import FastPathError, check_supported
    if config.device == "cpu" or not torch.cuda.is_available():
        return "plain"
    try:
        check_supported(config.loss, clip_grad=config.clip_grad)
    except FastPathError:
        return "plain"
    return "fast"


def steps_per_epoch_of(config: dict) -> int:
    """The trainer's steps per epoch for ``config`` (drop_last, one process)."""
    from track1.data import resolve_source
    from track1.data.split import training_subset
    n = len(resolve_source(config.data, "train"))
    subset = training_subset(n, config.train_subset)
    steps = (n if subset is None else len(subset)) // config.batch_size
    if config.max_steps_per_epoch:
        steps = min(steps, int(config.max_steps_per_epoch))
    return steps


def fraction_tag(fraction: float) -> str:
    """File-name tag of a budget fraction: '' for the whole run, '_at010' for 10%."""
    return "" if fraction >= 1.0 else f"_at{int(round(fraction * 100)):03d}"


def run_method(method: str, seed: int, out: Path, codes: Sequence[str], eval_data: tuple, *,
               bn_mode: str, target: str, train_kwargs: dict, score_batch: int,
               log: Callable[[str], None] = print, batches: Any = None,
               fractions: Sequence[float] = (1.0,), scorer: str = "plain",
               archs_per_pass: int = 32, train_only: bool = False,
               score_only: bool = False) -> dict:
    """Train (or resume) one method; at each budget fraction score ``codes`` (Kendall over
    training), write the summary; returns it.

    The checkpoint of every fraction point short of the end is kept beside ``last.pth``
    (``at010.pth`` for 10%), so a point the run has trained past is scored from it (a
    new scorer re-scores a finished run without training it again). ``train_only``
    trains through every point, keeping those checkpoints, and scores nothing: a run
    trained on one machine can be scored on another. ``score_only`` trains nothing and
    scores the points whose checkpoints exist (a run cut off by a time limit is scored as
    far as it got; its summary says ``complete: false``)."""
    from track1.infra.checkpoint import load_checkpoint
    from track1.registry import load_supernet
    from track1.train.loop import train
    run_dir = out / f"{method}_s{seed}"
    summary_path = run_dir / "summary.json"
    fractions = sorted({min(1.0, float(f)) for f in fractions} | {1.0})
    protocol = train_kwargs.get("protocol")
    if summary_path.exists() and not train_only:
        summary = json.loads(summary_path.read_text())
        from track1.evaluate.images import SCORER_VERSION
        if summary.get("archs") == len(codes) and summary.get("bn_mode") == bn_mode and \
                summary.get("scorer", 1) == SCORER_VERSION and summary.get("complete", True) and \
                [c["fraction"] for c in summary.get("curve", [{"fraction": 1.0}])] == fractions:
            log(f"{run_dir.name}: finished earlier, skipped")
            return summary
    fewshot = METHODS[method].get("fewshot") if method in METHODS else None
    if fewshot:  # its curve is its end point: the parts exist only after the split
        fractions = [1.0]
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = dict(train_kwargs)
    engine = kwargs.pop("engine", "plain")
    config = bench_config(method, seed, run_dir, **kwargs)
    config.engine = choose_engine(engine, config)
    # wall time per trained step, summed over sessions (a killed session's time is lost,
    # its steps are not counted either, so the per-step figure stays honest)
    timing_path = run_dir / "timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    timing = {"train_s": 0.0, "steps_timed": 0, "score_s": 0.0, **timing}
    last_path = Path(config.ckpt_dir) / config.name / "last.pth"
    total = config.epochs * (len(batches) if batches is not None else steps_per_epoch_of(config))
    device = torch.device("cuda" if torch.cuda.is_available() and config.device != "cpu"
                          else "cpu")
    curve, rows = [], {}
    ckpt = load_checkpoint(last_path) if last_path.exists() else None

    def score_point(fraction: float, point: dict) -> dict[str, dict[str, str]]:
        t0 = time.perf_counter()
        scored = score_run(load_supernet(point, device)[0], codes,
                           run_dir / f"predictions{fraction_tag(fraction)}.csv", eval_data,
                           bn_mode, target, score_batch, progress=config.progress,
                           scorer=scorer, archs_per_pass=archs_per_pass)
        timing["score_s"] += time.perf_counter() - t0
        _write_json(timing_path, timing)
        curve.append(_curve_point(fraction, int(point["step"]), scored))
        log(f"{run_dir.name} at {fraction:.0%} ({int(point['step'])} steps): Kendall "
            f"{curve[-1]['kendall']:.4f} (by -loss {curve[-1]['kendall_neg_loss']:.4f}; the "
            f"scorer's split-half Kendall {curve[-1]['split_half']['accuracy']:.4f})")
        return scored

    for fraction in fractions:
        target_steps = total if fraction >= 1.0 else max(1, int(round(fraction * total)))
        steps_before = int(ckpt["step"]) if ckpt is not None else 0
        snapshot = last_path.with_name(f"at{int(round(fraction * 100)):03d}.pth")
        # the point's own checkpoint, where the run has one
        point = (ckpt if ckpt is not None and steps_before == target_steps else
                 load_checkpoint(snapshot) if fraction < 1.0 and snapshot.exists() else None)
        if point is not None or steps_before > target_steps or score_only:
            if point is None:
                log(f"{run_dir.name}: no checkpoint at {fraction:.0%} of the budget "
                    f"({target_steps} steps; the run is at {steps_before}); that point is "
                    "skipped")
            elif not train_only:
                rows = score_point(fraction, point)
            continue
        if fewshot:
            t0 = time.perf_counter()
            ckpt, trained = train_fewshot(config, fewshot, total, batches, log)
            if trained:
                timing["train_s"] += time.perf_counter() - t0
                timing["steps_timed"] += trained
            _write_json(timing_path, timing)
        else:
            t0 = time.perf_counter()
            train(config, batches=batches, log=log,
                  stop_after_steps=None if fraction >= 1.0 else target_steps)
            ckpt = load_checkpoint(last_path)
            if int(ckpt["step"]) > steps_before:
                timing["train_s"] += time.perf_counter() - t0
                timing["steps_timed"] += int(ckpt["step"]) - steps_before
            _write_json(timing_path, timing)
            if fraction < 1.0 and int(ckpt["step"]) == target_steps:
                shutil.copyfile(last_path, snapshot.with_suffix(".tmp"))
                os.replace(snapshot.with_suffix(".tmp"), snapshot)
            if device.type == "cuda":  # the training graph's memory back before scoring
                import gc
                gc.collect()
                torch.cuda.empty_cache()
        if not train_only:
            rows = score_point(fraction, ckpt)
    if train_only:
        return {"run": run_dir.name, "method": method, "seed": seed, "trained_only": True,
                "steps": int(ckpt["step"]) if ckpt is not None else 0}
    if not rows:
        raise BenchError(f"{run_dir.name}: nothing scored")
    steps = curve[-1]["steps"]
    per_step = timing["train_s"] / max(timing["steps_timed"], 1)
    summary = {
        "run": run_dir.name, "method": method, "seed": seed, "archs": len(codes),
        "target": f"cifar10_{target}_acc", "bn_mode": bn_mode,
        "complete": curve[-1]["fraction"] >= 1.0,
        **metrics_of(rows.values()),
        "curve": curve,
        "protocol": (protocol.to_dict() if protocol is not None else {"name": "quick"}) | {
            "eval_images": len(eval_data[0]), "calib_images": len(eval_data[2])},
        "budget": {"epochs": config.epochs, "steps": steps,
                   "steps_per_epoch": config.max_steps_per_epoch or total // config.epochs,
                   "batch_size": config.batch_size,
                   "paths_per_step": paths_per_step(config),
                   "images_seen": steps * config.batch_size,
                   "lr": config.lr, "engine": config.engine, "scorer": scorer,
                   "device": str(device), "threads": torch.get_num_threads(),
                   "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                   else "CPU")},
        "eval": {"images": len(eval_data[0]), "calib_images": len(eval_data[2]),
                 "images_per_half": len(eval_data[0]) // 2},
        "scorer": json.loads((run_dir / "scorer.json").read_text())["scorer"],
        "teacher_ties": (ckpt.get("teacher") or {}).get("tie_counts"),
        "wall_s": {"train": round(per_step * steps, 1), "train_per_step": round(per_step, 4),
                   "score": round(timing["score_s"], 1)},
        "config": {k: config.to_dict()[k] for k in ("loss", "sampler", "teacher", "lambda",
                                                     "model")},
    }
    _write_json(summary_path, summary)
    m = summary["accuracy"]
    log(f"{run_dir.name}: Kendall {m['kendall']:.4f} Spearman {m['spearman']:.4f} "
        f"Pearson {m['pearson']:.4f} top10 {m['top10_precision']:.2f} over {len(codes)} archs")
    return summary


def _curve_point(fraction: float, steps: int, rows: dict[str, dict[str, str]]) -> dict:
    """One point of a run's Kendall-over-training curve, with its noise floor."""
    m = metrics_of(rows.values())
    return {"fraction": fraction, "steps": steps, "kendall": m["accuracy"]["kendall"],
            "kendall_neg_loss": m["neg_loss"]["kendall"],
            "kendall_acc_tiebreak": m["acc_tiebreak"]["kendall"],
            **({"split_half": m["split_half"]} if "split_half" in m else {}),
            **({"kendall_none_free": m["none_free"]["accuracy"]["kendall"]}
               if "none_free" in m else {})}


def train_fewshot(config: TrainConfig, fewshot: dict[str, Any], total: int, batches: Any,
                  log: Callable[[str], None]) -> tuple[dict[str, Any], int]:
    """Few-shot training at the budget of ``total`` steps: the method one-shot for
    ``share`` of them, then every part of the split on ``genes`` from those weights (a
    fresh optimiser, cosine from the one-shot's lr at the split) for an equal share of the
    rest; the parts merged into one few-shot checkpoint (``track1.nas.fewshot``). Every
    stage resumes. Returns the merged checkpoint and the steps trained in this call."""
    import dataclasses

    from track1.infra.checkpoint import load_checkpoint, save_atomic
    from track1.nas.fewshot import part_key, parts_of
    from track1.registry import build_supernet
    from track1.train.config import PartConfig
    from track1.train.fewshot import merge_parts
    from track1.train.loop import train
    genes = [int(g) for g in fewshot["genes"]]
    root = Path(config.ckpt_dir)
    merged_path = root / "fewshot.pth"
    if merged_path.exists():
        return load_checkpoint(merged_path), 0
    parts = parts_of(build_supernet(config.space, config.model).space, genes)
    # the parts share (1 - share) of the steps equally, the one-shot phase takes the rest:
    # exactly the one-shot method's total
    part_steps = max(1, int((1.0 - float(fewshot.get("share", 0.5))) * total) // len(parts))
    split = total - len(parts) * part_steps
    if split < 1:
        raise BenchError(f"a budget of {total} steps is too small for {len(parts)} parts")
    oneshot = root / config.name / "last.pth"
    done = int(load_checkpoint(oneshot)["step"]) if oneshot.exists() else 0
    trained = 0
    if done < split:
        train(config, batches=batches, log=log, stop_after_steps=split)
        trained += split - done
    at_split = load_checkpoint(oneshot)
    if int(at_split["step"]) != split:
        raise BenchError(f"{oneshot} is at step {at_split['step']}, not at the split ({split})")

    steps_per_epoch = len(batches) if batches is not None else steps_per_epoch_of(config)
    # exactly part_steps each (equal total steps with the one-shot method): the fewest
    # epochs of equal length that fit the data's epoch
    epochs = next(e for e in range(math.ceil(part_steps / steps_per_epoch), part_steps + 1)
                  if part_steps % e == 0 and part_steps // e <= steps_per_epoch)
    per_epoch = part_steps // epochs
    # the one-shot schedule's lr at the split, as a base lr per 256 images
    lr = at_split["optimizer"]["param_groups"][0]["lr"] * 256 / config.batch_size
    paths = []
    for values in parts:
        part = dataclasses.replace(
            config, name=f"part_{part_key(values)}", init_from=str(oneshot), resume="auto",
            part=PartConfig(genes=list(genes), values=list(values)), epochs=epochs,
            max_steps_per_epoch=per_epoch, warmup_epochs=0.0, lr=lr,
            min_lr=min(config.min_lr, lr))
        paths.append(root / part.name / "last.pth")
        before = int(load_checkpoint(paths[-1])["step"]) if paths[-1].exists() else 0
        if before < epochs * per_epoch:
            train(part, batches=batches, log=log)
            trained += int(load_checkpoint(paths[-1])["step"]) - before
    merged = merge_parts(paths)
    steps = split + merged["step"]
    merged["step"] = steps
    merged["config"]["fewshot"].update(share=split / total, part_steps=epochs * per_epoch)
    save_atomic(merged, merged_path)
    log(f"few-shot: {split} one-shot steps, then {len(parts)} parts x {epochs * per_epoch} "
        f"steps (split on genes {genes}); {steps} steps in all")
    return merged, trained


def paths_per_step(config: TrainConfig) -> int:
    """Forward+backward paths per step of a bench method (SPOS / reuse ranking)."""
    return int(config.loss.num_random)


def compare_bn_modes(run: str, out: Path, codes: Sequence[str], eval_data: tuple, *,
                     target: str, score_batch: int, modes: Sequence[str] = BN_MODES,
                     log: Callable[[str], None] = print) -> dict:
    """Score one trained run's supernet under each BN mode (picks evaluate's default)."""
    from track1.infra.checkpoint import find_latest, load_checkpoint
    from track1.registry import load_supernet
    ckpt_path = out / run / "ckpt" / "supernet" / "last.pth"
    if not ckpt_path.exists():
        raise BenchError(f"no trained supernet for run {run!r} at {ckpt_path}; train it first")
    ckpt = load_checkpoint(ckpt_path)
    supernet, _ = load_supernet(ckpt, "cuda" if torch.cuda.is_available()
                                and ckpt["config"].get("device") != "cpu" else "cpu")
    cmp_dir = out / "bn_compare" / run
    cmp_dir.mkdir(parents=True, exist_ok=True)
    claim_scorer(cmp_dir)
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
                write_records(target_csv, [rows[c] for c in codes], PREDICTION_FIELDS + HALF_FIELDS)
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


def bench_archs(n: int, all_archs: bool, seed: int = 0, none_free: bool = False) -> list[str]:
    return fixed_subset(15625 if all_archs else n, seed=seed, none_free=none_free)


__all__ = ["BN_MODES", "METHODS", "BenchError", "TARGETS", "bench_archs", "bench_config",
           "choose_engine", "compare_bn_modes", "fraction_tag", "lambda_options",
           "load_eval_data", "metrics_of", "rank_metrics", "run_method", "score_run",
           "steps_per_epoch_of"]

"""One bench run (a method at a seed): train through the budget's fraction points, score
the fixed arch set at each, write the summary. Every step resumes."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from track1.bench.config import (bench_config, choose_engine, fraction_tag, paths_per_step,
                                 steps_per_epoch_of)
from track1.bench.errors import BenchError
from track1.bench.methods import METHODS
from track1.bench.predictions import metrics_of, score_run, write_json
from track1.infra.folder_lock import FolderLock


class Timing:
    """Wall time per trained step and of scoring, summed over sessions in ``timing.json``
    (a killed session's time is lost, its steps are not counted either, so the per-step
    figure stays honest)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        saved = json.loads(path.read_text()) if path.exists() else {}
        self.data = {"train_s": 0.0, "steps_timed": 0, "score_s": 0.0, **saved}

    def add(self, **amounts: float) -> None:
        for k, v in amounts.items():
            self.data[k] += v
        write_json(self.path, self.data)

    @property
    def per_step(self) -> float:
        return self.data["train_s"] / max(self.data["steps_timed"], 1)


class BenchRun:
    """``out/<method>_s<seed>``: the trainer's run, the checkpoint of every fraction point
    short of the end (``at010.pth`` beside ``last.pth``, so a point the run has trained
    past is scored from it: a new scorer re-scores a finished run without training it
    again), a predictions CSV per point and the summary."""

    def __init__(self, method: str, seed: int, out: Path, codes: Sequence[str],
                 eval_data: tuple, *, bn_mode: str, target: str, train_kwargs: dict,
                 score_batch: int, log: Callable[[str], None] = print, batches: Any = None,
                 fractions: Sequence[float] = (1.0,), scorer: str = "plain",
                 archs_per_pass: int = 32) -> None:
        self.method, self.seed, self.codes, self.eval_data = method, seed, codes, eval_data
        self.bn_mode, self.target, self.score_batch = bn_mode, target, score_batch
        self.log, self.batches, self.scorer, self.archs_per_pass = log, batches, scorer, archs_per_pass
        self.dir = out / f"{method}_s{seed}"
        self.protocol = train_kwargs.get("protocol")
        self.fewshot = METHODS[method].get("fewshot") if method in METHODS else None
        # a few-shot run's curve is its end point: the parts exist only after the split
        self.fractions = [1.0] if self.fewshot else \
            sorted({min(1.0, float(f)) for f in fractions} | {1.0})
        kwargs = dict(train_kwargs)
        engine = kwargs.pop("engine", "plain")
        self.config = bench_config(method, seed, self.dir, **kwargs)
        self.config.runtime.engine = choose_engine(engine, self.config)
        self.last_path = Path(self.config.runtime.ckpt_dir) / self.config.name / "last.pth"
        self.total = self.config.schedule.epochs * (
            len(batches) if batches is not None else steps_per_epoch_of(self.config))
        self.device = torch.device("cuda" if torch.cuda.is_available()
                                   and self.config.runtime.device != "cpu" else "cpu")
        self.curve: list[dict[str, Any]] = []
        self.rows: dict[str, dict[str, str]] = {}

    # ------------------------------------------------------------------ the points
    def target_steps(self, fraction: float) -> int:
        return self.total if fraction >= 1.0 else max(1, int(round(fraction * self.total)))

    def snapshot(self, fraction: float) -> Path:
        return self.last_path.with_name(f"at{int(round(fraction * 100)):03d}.pth")

    def finished(self) -> dict | None:
        """The summary of a complete run of this set, BN mode, scorer and curve, if any."""
        from track1.scoring.modes import SCORER_VERSION
        path = self.dir / "summary.json"
        if not path.exists():
            return None
        s = json.loads(path.read_text())
        same = (s.get("archs") == len(self.codes) and s.get("bn_mode") == self.bn_mode
                and s.get("scorer", 1) == SCORER_VERSION and s.get("complete", True)
                and [c["fraction"] for c in s.get("curve", [{"fraction": 1.0}])] == self.fractions)
        return s if same else None

    def train_to(self, fraction: float, ckpt: dict | None) -> dict:
        """Train (or resume) up to the point; its checkpoint kept for a point short of
        the end. Returns the checkpoint there."""
        from track1.infra.checkpoint import load_checkpoint
        from track1.train.loop import train
        before = int(ckpt["step"]) if ckpt is not None else 0
        timing = Timing(self.dir / "timing.json")
        t0 = time.perf_counter()
        if self.fewshot:
            from track1.bench.fewshot import train_fewshot
            ckpt, trained = train_fewshot(self.config, self.fewshot, self.total, self.batches,
                                          self.log)
        else:
            train(self.config, batches=self.batches, log=self.log,
                  stop_after_steps=None if fraction >= 1.0 else self.target_steps(fraction))
            ckpt = load_checkpoint(self.last_path)
            trained = int(ckpt["step"]) - before
            if fraction < 1.0 and int(ckpt["step"]) == self.target_steps(fraction):
                tmp = self.snapshot(fraction).with_suffix(".tmp")
                shutil.copyfile(self.last_path, tmp)
                os.replace(tmp, self.snapshot(fraction))
        if trained > 0:
            timing.add(train_s=time.perf_counter() - t0, steps_timed=trained)
        if self.device.type == "cuda":  # the training graph's memory back before scoring
            import gc
            gc.collect()
            torch.cuda.empty_cache()
        return ckpt

    def score(self, fraction: float, point: dict) -> None:
        """Score the set with the point's checkpoint; one point of the curve."""
        from track1.registry import load_supernet
        t0 = time.perf_counter()
        self.rows = score_run(load_supernet(point, self.device)[0], self.codes,
                              self.dir / f"predictions{fraction_tag(fraction)}.csv",
                              self.eval_data, self.bn_mode, self.target, self.score_batch,
                              progress=self.config.runtime.progress, scorer=self.scorer,
                              archs_per_pass=self.archs_per_pass)
        Timing(self.dir / "timing.json").add(score_s=time.perf_counter() - t0)
        self.curve.append(curve_point(fraction, int(point["step"]), self.rows))
        c = self.curve[-1]
        self.log(f"{self.dir.name} at {fraction:.0%} ({c['steps']} steps): Kendall "
                 f"{c['kendall']:.4f} (by -loss {c['kendall_neg_loss']:.4f}; the scorer's "
                 f"split-half Kendall {c['split_half']['accuracy']:.4f})")

    # ------------------------------------------------------------------------ run
    def run(self, train_only: bool = False, score_only: bool = False) -> dict:
        """Train and score every point (``train_only``: train through them and score
        nothing, so a run trained on one machine can be scored on another;
        ``score_only``: train nothing and score the points whose checkpoints exist, a run
        cut off by a time limit as far as it got). Returns the summary."""
        done = None if train_only else self.finished()
        if done is not None:
            self.log(f"{self.dir.name}: finished earlier, skipped")
            return done
        # one bench process per run folder: two would score every arch twice
        with FolderLock(self.dir, "bench run", "use another --out", BenchError):
            return self._run(train_only, score_only)

    def _run(self, train_only: bool, score_only: bool) -> dict:
        from track1.infra.checkpoint import load_checkpoint
        ckpt = load_checkpoint(self.last_path) if self.last_path.exists() else None
        for fraction in self.fractions:
            steps = int(ckpt["step"]) if ckpt is not None else 0
            target = self.target_steps(fraction)
            snapshot = self.snapshot(fraction)
            point = (ckpt if ckpt is not None and steps == target else
                     load_checkpoint(snapshot) if fraction < 1.0 and snapshot.exists() else None)
            if point is None and (steps > target or score_only):
                self.log(f"{self.dir.name}: no checkpoint at {fraction:.0%} of the budget "
                         f"({target} steps; the run is at {steps}); that point is skipped")
                continue
            if point is None:
                point = ckpt = self.train_to(fraction, ckpt)
            if not train_only:
                self.score(fraction, point)
        if train_only:
            return {"run": self.dir.name, "method": self.method, "seed": self.seed,
                    "trained_only": True, "steps": int(ckpt["step"]) if ckpt is not None else 0}
        if not self.rows:
            raise BenchError(f"{self.dir.name}: nothing scored")
        summary = self.summary(ckpt)
        write_json(self.dir / "summary.json", summary)
        m = summary["accuracy"]
        self.log(f"{self.dir.name}: Kendall {m['kendall']:.4f} Spearman {m['spearman']:.4f} "
                 f"Pearson {m['pearson']:.4f} top10 {m['top10_precision']:.2f} over "
                 f"{len(self.codes)} archs")
        return summary

    def summary(self, ckpt: dict | None) -> dict:
        """Metrics of the last point scored, the curve, protocol, budget and wall time."""
        config, steps = self.config, self.curve[-1]["steps"]
        images, _, calib = self.eval_data
        timing = Timing(self.dir / "timing.json")
        protocol = self.protocol.to_dict() if self.protocol is not None else {"name": "quick"}
        return {
            "run": self.dir.name, "method": self.method, "seed": self.seed,
            "archs": len(self.codes), "target": f"cifar10_{self.target}_acc",
            "bn_mode": self.bn_mode, "complete": self.curve[-1]["fraction"] >= 1.0,
            **metrics_of(self.rows.values()),
            "curve": self.curve,
            "protocol": protocol | {"eval_images": len(images), "calib_images": len(calib)},
            "budget": {"epochs": config.schedule.epochs, "steps": steps,
                       "steps_per_epoch": (config.schedule.max_steps_per_epoch
                                           or self.total // config.schedule.epochs),
                       "batch_size": config.data.batch_size,
                       "paths_per_step": paths_per_step(config),
                       "images_seen": steps * config.data.batch_size, "lr": config.optim.lr,
                       "engine": config.runtime.engine, "scorer": self.scorer,
                       "device": str(self.device), "threads": torch.get_num_threads(),
                       "device_name": (torch.cuda.get_device_name(self.device)
                                       if self.device.type == "cuda" else "CPU")},
            "eval": {"images": len(images), "calib_images": len(calib),
                     "images_per_half": len(images) // 2},
            "scorer": json.loads((self.dir / "scorer.json").read_text())["scorer"],
            "teacher_ties": ((ckpt or {}).get("teacher") or {}).get("tie_counts"),
            "wall_s": {"train": round(timing.per_step * steps, 1),
                       "train_per_step": round(timing.per_step, 4),
                       "score": round(timing.data["score_s"], 1)},
            "config": {k: config.to_dict()[k] for k in ("loss", "sampler", "teacher", "lambda",
                                                         "model")},
        }


def curve_point(fraction: float, steps: int, rows: dict[str, dict[str, str]]) -> dict:
    """One point of a run's Kendall-over-training curve, with its noise floor."""
    m = metrics_of(rows.values())
    return {"fraction": fraction, "steps": steps, "kendall": m["accuracy"]["kendall"],
            "kendall_neg_loss": m["neg_loss"]["kendall"],
            "kendall_acc_tiebreak": m["acc_tiebreak"]["kendall"],
            **({"split_half": m["split_half"]} if "split_half" in m else {}),
            **({"kendall_none_free": m["none_free"]["accuracy"]["kendall"]}
               if "none_free" in m else {})}


def run_method(method: str, seed: int, out: Path, codes: Sequence[str], eval_data: tuple, *,
               train_only: bool = False, score_only: bool = False, **options: Any) -> dict:
    """``BenchRun(...).run(...)`` in one call."""
    return BenchRun(method, seed, out, codes, eval_data, **options).run(train_only, score_only)

"""How much of the NAS-Bench-201 paper table fits one device command: the planner of
``tools/device_nb201_paper.py``, torch-free so that it is tested on any machine.

From a probe of this GPU (steps/s of each training engine and archs/s of each scorer, one
process; optionally the measured throughput of several plain processes at once, with and
without CUDA MPS), choose the engine, the scorer, the number of processes, the epochs
(complete cosine schedules, at most the paper's 250) and the scoring (archs, budget
fractions, held-out images) that fit the time left, with a safety margin kept for the
final scoring and the collection of results.

Engines are compared by what ALL the processes together do, never by one process's rate:
the plain step is launch-bound, so several processes overlap on one GPU (six gave 3.3x
one on an H100, without MPS), while the static-graph step keeps the GPU busy from about
two processes and holds every op's activations (three at most).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

PAPER_EPOCHS = 250
TRAIN_HALF = 25_000
#: the most files one device call brings back
MAX_FILES = 8
#: throughput of N plain processes over one, where not measured (H100, no MPS: 6 -> 3.3x)
PLAIN_SCALING_CAP, PLAIN_SCALING_PER_JOB = 3.3, 0.55
#: the static-graph step (and the many-archs scorer) saturate the GPU: 2+ processes -> 1.3x
FAST_SCALING_CAP, FAST_JOBS_MAX = 1.3, 3
#: scoring options in order of preference: held-out images first (the scorer's noise floor
#: needs them), then archs, then the Kendall-over-training points
SCORING_OPTIONS: tuple[tuple[int, tuple[float, ...], int], ...] = (
    (4096, (0.1, 0.25, 0.5, 1.0), 25_000),    # every none-free arch of the 4-op space
    (4096, (0.25, 1.0), 25_000),
    (1000, (0.1, 0.25, 0.5, 1.0), 25_000),
    (1000, (0.25, 1.0), 25_000),
    (500, (0.25, 1.0), 25_000),
    (500, (1.0,), 25_000),
    (500, (1.0,), 10_000),
    (500, (1.0,), 5_000),
)
#: the plan when the probe failed: the plain engine (little memory per process), the
#: many-archs scorer, a small budget (never six static-graph processes of 10-15 GB each)
FALLBACK = {"engine": "plain", "scorer": "fast", "jobs": 6, "epochs": 20, "archs": 500,
            "fractions": [0.25, 1.0], "eval_images": 5000}


def plain_aggregate(probe: dict[str, Any], jobs: int) -> tuple[float, str]:
    """Steps/s of ``jobs`` plain processes together: measured where the probe ran that
    many at once (the better of with and without MPS), else the one-process rate scaled
    by the H100 figure."""
    measured = probe.get("concurrent", {}).get("plain", {})
    best = max((v for k, v in measured.items() if k in ("mps_off", "mps_on") and v), default=None)
    if best and measured.get("jobs") == jobs:
        return float(best), "measured"
    one = probe["train"]["plain"]["steps_per_s"]
    return one * min(PLAIN_SCALING_CAP, PLAIN_SCALING_PER_JOB * jobs) if jobs > 1 else one, "assumed"


def aggregate_rates(probe: dict[str, Any], jobs: int) -> dict[str, dict[str, Any]]:
    """Per training engine and per scorer: processes used and their combined rate."""
    train, score = probe["train"], probe["score"]
    plain_all, plain_src = plain_aggregate(probe, jobs)
    fast_jobs = min(jobs, FAST_JOBS_MAX)
    fast_all = train["fast"]["steps_per_s"] * min(FAST_SCALING_CAP, fast_jobs)
    scale = (min(PLAIN_SCALING_CAP, PLAIN_SCALING_PER_JOB * jobs) if jobs > 1 else 1.0)
    return {
        "train": {"plain": {"jobs": jobs, "rate": plain_all, "source": plain_src},
                  "fast": {"jobs": fast_jobs, "rate": fast_all, "source": "assumed"}},
        "score": {"plain": {"rate": score["plain"]["archs_per_s"] * scale},
                  "fast": {"rate": score["fast"]["archs_per_s"] * min(FAST_SCALING_CAP, jobs)}},
    }


def plan_budget(probe: dict[str, Any], remaining_s: float, runs: int, jobs: int, batch: int,
                min_epochs: int = 25, margin: float = 0.15,
                options: Sequence[tuple[int, tuple[float, ...], int]] = SCORING_OPTIONS,
                force: dict[str, Any] | None = None) -> dict[str, Any]:
    """Engine, scorer, processes, epochs and scoring that fit ``remaining_s`` seconds.

    ``probe``: ``{"train": {engine: {"steps_per_s"}}, "score": {scorer: {"archs_per_s"}},
    "args": {"eval_images": images the scorer probe used}, "concurrent": {...}}``.
    ``margin``: the share of the training estimate kept free (an overrun of training
    must not eat the final scoring). ``force``: any of engine, scorer, epochs, archs,
    fractions, eval_images fixed by the caller; the rest is planned around them. The
    first scoring option that reaches ``min_epochs`` (10% of the paper's budget) wins;
    otherwise the last one, with whatever epochs fit.
    """
    force = {k: v for k, v in (force or {}).items() if v is not None}
    rates = aggregate_rates(probe, jobs)
    engine = force.get("engine") or max(("plain", "fast"),
                                        key=lambda e: rates["train"][e]["rate"])
    scorer = force.get("scorer") or max(("plain", "fast"),
                                        key=lambda s: rates["score"][s]["rate"])
    used_jobs = rates["train"][engine]["jobs"]
    step_rate = rates["train"][engine]["rate"]
    probe_images = probe["args"]["eval_images"]
    steps_per_epoch = TRAIN_HALF // batch
    if {"archs", "fractions", "eval_images"} & set(force):
        options = [(force.get("archs", a), tuple(force.get("fractions", f)),
                    force.get("eval_images", e)) for a, f, e in options]
        options = list(dict.fromkeys(options))
    for archs, fractions, images in options:
        arch_rate = rates["score"][scorer]["rate"] * probe_images / images
        score_s = runs * len(fractions) * archs / arch_rate
        overhead = 20.0 * math.ceil(runs / used_jobs) * (1 + len(fractions))
        train_s = (remaining_s - score_s - overhead) / (1.0 + margin)
        epochs = int(max(0.0, train_s) * step_rate / (runs * steps_per_epoch))
        if "epochs" in force:
            epochs = int(force["epochs"])
        last = (archs, fractions, images) == tuple(options[-1])
        if epochs >= min_epochs or last or "epochs" in force:
            epochs = max(1, min(PAPER_EPOCHS, epochs))
            train_est = runs * epochs * steps_per_epoch / step_rate
            return {"engine": engine, "scorer": scorer, "jobs": used_jobs, "epochs": epochs,
                    "archs": archs, "fractions": list(fractions), "eval_images": images,
                    "steps_per_run": epochs * steps_per_epoch,
                    "paper_fraction": round(epochs / PAPER_EPOCHS, 4),
                    "step_rate_all": round(step_rate, 2),
                    "step_rate_source": rates["train"][engine]["source"],
                    "arch_rate_all": round(arch_rate, 3),
                    "train_s_est": round(train_est), "train_s_limit": round(train_est * (1 + margin)),
                    "score_s_est": round(score_s), "overhead_s_est": round(overhead),
                    "remaining_s": round(remaining_s),
                    "rates": {k: {e: round(v["rate"], 2) for e, v in d.items()}
                              for k, d in rates.items()},
                    "forced": sorted(force)}
    raise AssertionError("unreachable")


def files_of(runs: int, per_tar: int) -> int:
    """Files one collection writes: results.tar.gz, the streamed log, and the supernets
    ``per_tar`` to a tar."""
    return 2 + math.ceil(runs / per_tar)


def supernets_per_tar(runs: int, model_bytes: int, max_file_bytes: int = 16 * 2 ** 20) -> int:
    """Supernets per tar so that every tar stays under the size limit and the files
    under ``MAX_FILES``; raises where no packing fits (then fewer models come back)."""
    per = max(1, max_file_bytes // max(1, model_bytes))
    if files_of(runs, per) > MAX_FILES:
        raise ValueError(f"{runs} supernets of {model_bytes / 2 ** 20:.1f} MiB do not fit in "
                         f"{MAX_FILES - 2} files under {max_file_bytes / 2 ** 20:.0f} MiB")
    return per

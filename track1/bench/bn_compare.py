"""One trained run's supernet scored under every BN mode (how evaluate's default was
chosen, and re-checked whenever the scorer changes)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from track1.bench.errors import BenchError
from track1.bench.predictions import (HALF_FIELDS, PREDICTION_FIELDS, claim_scorer, metrics_of,
                                      read_predictions, score_run, write_json)
from track1.infra.resumable import write_records
from track1.scoring.modes import BN_MODES


def compare_bn_modes(run: str, out: Path, codes: Sequence[str], eval_data: tuple, *,
                     target: str, score_batch: int, modes: Sequence[str] = BN_MODES,
                     log: Callable[[str], None] = print) -> dict:
    """Score one trained run's supernet under each BN mode (picks evaluate's default)."""
    from track1.infra.checkpoint import load_checkpoint
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
    write_json(cmp_dir / "summary.json", result)
    return result

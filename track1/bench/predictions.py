"""Scores of the fixed arch set, one CSV row per arch as it lands, and the metrics read
back from those rows: Kendall against the ground truth by each rank key, and the
scorer's own noise floor (split-half Kendall)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from torch import nn

from track1.bench.errors import BenchError
from track1.infra.atomic import write_json_atomic
from track1.infra.resumable import AppendLog, read_records
from track1.nb201.ground_truth import load_ground_truth
from track1.nb201.space import decode, encode

if TYPE_CHECKING:
    from track1.scoring.engine import SubnetScore

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
        from track1.scoring.metrics import tie_broken
        return tie_broken(acc, neg_loss)
    raise ValueError(f"unknown rank key {key!r}; choose from {list(RANK_KEYS)}")


def rank_metrics(pred: Sequence[float], gt: Sequence[float], top: float = 0.1) -> dict[str, float]:
    """Kendall tau-b, Spearman, Pearson and the top-10% precision (``track1.scoring.metrics``);
    a correlation that is undefined (a constant side) is reported as 0.0."""
    from track1.scoring.metrics import rank_metrics as metrics
    if len(pred) < 2:
        raise BenchError("ranking metrics need at least 2 archs")
    return metrics([float(v) for v in pred], [float(v) for v in gt], top=top, undefined=0.0)


def split_half(rows: Sequence[dict[str, str]]) -> dict[str, float] | None:
    """The scorer's noise floor: Kendall between the archs' scores on the two halves of
    the evaluation images, by each rank key (None where the rows have no halves)."""
    from track1.scoring.metrics import kendall
    if len(rows) < 2 or not all(r.get(f) not in (None, "") for r in rows for f in HALF_FIELDS):
        return None
    out = {}
    for key in RANK_KEYS:
        v = kendall(rank_values(rows, key, "a"), rank_values(rows, key, "b"))
        out[key] = v if math.isfinite(v) else 0.0
    return out


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
        out["none_free"] = metrics_of(free)
    return out


def write_json(path: Path, obj: Any) -> None:
    write_json_atomic(obj, path, indent=1)


def claim_scorer(run_dir: Path) -> None:
    """Tie ``run_dir``'s prediction files to this scorer (``SCORER_VERSION``): scores of
    another scorer (sorted images, chunk-averaged BN statistics) are never mixed in."""
    from track1.scoring.modes import SCORER_VERSION
    marker = run_dir / "scorer.json"
    if marker.exists():
        found = json.loads(marker.read_text()).get("scorer")
    else:
        found = 1 if any(run_dir.glob("predictions*.csv")) else None
    if found is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"scorer": SCORER_VERSION})
    elif found != SCORER_VERSION:
        raise BenchError(f"{run_dir}: its predictions come from scorer {found}, this is scorer "
                         f"{SCORER_VERSION}; move its predictions*.csv and summary.json away "
                         "(the checkpoints stay) to score it again, or use another --out")


def score_run(supernet: nn.Module, codes: Sequence[str], path: Path, eval_data: tuple,
              bn_mode: str, target: str = "valid", batch: int = 256,
              progress: bool = True, scorer: str = "plain",
              archs_per_pass: int = 32) -> dict[str, dict[str, str]]:
    """Score every arch of ``codes`` into ``path`` (CSV appended and flushed per arch, or
    per pass of ``archs_per_pass`` with the fast scorer; archs already in the file are
    skipped, so an interrupted scoring resumes). ``scorer``: ``plain`` (the shared
    ``SubnetScorer``, one arch at a time) or ``fast`` (``FastNB201Scorer``). Both
    calibrate BN on the whole calibration set."""
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
            log.append({"arch": code, "pred": f"{100 * score.acc:.4f}",
                        "gt": f"{getattr(gt[code], target):.4f}", "loss": f"{score.loss:.6f}",
                        "pred_a": f"{100 * acc_a:.4f}", "pred_b": f"{100 * acc_b:.4f}",
                        "loss_a": f"{loss_a:.6f}", "loss_b": f"{loss_b:.6f}"})
            bar.update(1)
        if todo:
            run = _score_fast if scorer == "fast" else _score_plain
            run(supernet, todo, eval_data, bn_mode, batch, archs_per_pass, record, log.flush)
        return {c: log.done[c] for c in codes}


def _score_plain(supernet: nn.Module, todo: list[str], eval_data: tuple, bn_mode: str,
                 batch: int, archs_per_pass: int, record: Callable, flush: Callable) -> None:
    from track1.scoring.engine import SubnetScorer
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
    images, labels, calib = eval_data
    scorer = FastNB201Scorer(supernet, images, labels, calib if bn_mode == "recalibrate" else None,
                             bn_mode=bn_mode, batch_size=batch, archs_per_pass=archs_per_pass,
                             device=next(supernet.parameters()).device)
    for lo in range(0, len(todo), archs_per_pass):
        scorer.evaluate_many(todo[lo:lo + archs_per_pass],
                             lambda arch, score: record(encode(arch), score))
        flush()

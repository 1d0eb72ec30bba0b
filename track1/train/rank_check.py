"""Ranking against a ground-truth file during training (``--val-gt FILE``).

The 4th-place Track 1 team kept a few dozen subnets trained stand-alone and computed the
supernet's Kendall tau on them every epoch to choose checkpoints. This module does that
for any space: every ``every`` epochs the supernet scores the listed archs with the
evaluation engine (BN re-calibrated per arch, prefix sharing where the supernet exposes
segments) on a fixed subset of held-out images, and the trainer logs Kendall, Spearman and
Pearson against the file's accuracies (text, TensorBoard, ``val_gt.jsonl``) and keeps
``best.pth`` by Kendall beside ``last.pth``. The ground truth is only measured against:
nothing of it reaches the loss.

Files: the challenge's JSON (``{"key": {"arch": code, "acc": number}}``), or a CSV (gzip
or plain) with an ``arch`` column and an accuracy column (``acc``, else NAS-Bench-201's
``cifar10_valid_acc``; e.g. the shipped ``track1/assets/nb201_cifar10_gt.csv.gz``).
A seeded subset of ``limit`` archs is used when the file lists more; archs outside the
supernet's space (e.g. NB201 archs with ``none`` edges for a 4-op supernet) are skipped
and counted.
"""
from __future__ import annotations

import csv
import gzip
import math
import zlib
import random
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from track1.data.arch_list import ArchListError, read_list_json
from track1.scoring.engine import SubnetScorer
from track1.scoring.images import ScoringImages
from track1.scoring.metrics import kendall, rank_metrics
from track1.scoring.prefix import score_entries
from track1.train.sections import ValGtConfig
from track1.train.errors import TrainError

#: CSV accuracy columns tried in order when the config names none that exists
ACC_COLUMNS = ("acc", "cifar10_valid_acc")


def read_ground_truth(path: str | Path, column: str | None = None) -> dict[str, float]:
    """``{arch code: accuracy}`` of a ground-truth file, in file order; one
    ``TrainError`` line naming the file and the entry or column at fault. A JSON file is
    read as the challenge's lists are (``track1.data.arch_list.read_list_json``)."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"--val-gt {path}: file not found")
    stem = path.name[:-3] if path.suffix == ".gz" else path.name
    if stem.endswith(".csv"):
        rows = _csv_rows(path, column)
    else:
        try:
            data = read_list_json(path)
        except ArchListError as e:
            raise TrainError(f"--val-gt {path}: {e}") from None
        rows = [(e.get("arch") if isinstance(e, dict) else None,
                 e.get("acc") if isinstance(e, dict) else None, f"entry {k!r}")
                for k, e in data.items()]
    out: dict[str, float] = {}
    for arch, acc, where in rows:
        try:
            value = float(acc)
        except (TypeError, ValueError):
            raise TrainError(f"--val-gt {path}: {where} has no numeric accuracy "
                             f"({acc!r})") from None
        if not math.isfinite(value):  # a NaN passed here and crashed after the first epoch
            raise TrainError(f"--val-gt {path}: {where} has a non-finite accuracy ({acc!r})")
        if not isinstance(arch, str) or not arch:
            raise TrainError(f"--val-gt {path}: {where} has no arch string")
        out[arch] = value
    if len(out) < 2:
        raise TrainError(f"--val-gt {path}: {len(out)} arch(s); a ranking needs at least 2")
    return out


def _csv_rows(path: Path, column: str | None) -> list[tuple[str, str, str]]:
    """``(arch, accuracy text, where)`` of every row of a ground-truth CSV (gzip or plain)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            names, rows = reader.fieldnames or [], list(reader)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError, csv.Error) as e:
        raise TrainError(f"--val-gt {path}: cannot read it ({str(e)[:200]})") from None
    col = column or next((c for c in ACC_COLUMNS if c in names), None)
    if "arch" not in names or col not in names:
        raise TrainError(f"--val-gt {path}: a CSV needs an 'arch' column and an accuracy "
                         f"column ({column or ' or '.join(ACC_COLUMNS)}); it has {names}")
    return [(r["arch"], r[col], f"row {i + 2}") for i, r in enumerate(rows)]


class GroundTruthCheck:
    """Scores the ground-truth archs with the supernet and ranks them against the file."""

    def __init__(self, cfg: ValGtConfig, supernet: nn.Module, data: str | None,
                 image_size: int, num_classes: int, device: torch.device,
                 channels_last: bool, log: Callable[[str], None]) -> None:
        self.cfg, self.supernet, self.device = cfg, supernet, device
        self.channels_last = channels_last
        truth = read_ground_truth(cfg.file, cfg.column)
        space = supernet.space
        archs, foreign = {}, 0
        for code, acc in truth.items():
            try:
                archs[code] = (space.decode(code), acc)
            except ValueError:
                foreign += 1
        if len(archs) < 2:
            raise TrainError(f"--val-gt {cfg.file}: {len(archs)} of its {len(truth)} archs are in "
                             f"the {space.name!r} supernet's space; a ranking needs at least 2")
        codes = list(archs)
        if cfg.limit is not None and len(codes) > cfg.limit:
            codes = random.Random(cfg.seed).sample(codes, cfg.limit)
        self.archs = {c: archs[c][0] for c in codes}
        self.truth = {c: archs[c][1] for c in codes}
        self.images = ScoringImages.resolve(data, image_size, num_classes, cfg.eval_images,
                                            cfg.calib_images, cfg.bn_mode == "recalibrate",
                                            what="the supernet")
        self._decoded: tuple | None = None
        log(f"val-gt: {len(codes)} archs of {cfg.file}"
            + (f" ({foreign} outside this space skipped)" if foreign else "")
            + f", {self.images.n_eval} held-out + {self.images.n_calib} calibration images, "
            f"every {cfg.every} epoch(s)")

    def due(self, epoch: int, epochs: int) -> bool:
        """After epoch ``epoch`` (0-based) of ``epochs``."""
        return (epoch + 1) % self.cfg.every == 0 or epoch + 1 == epochs

    def measure(self) -> dict[str, Any]:
        """Kendall, Spearman and Pearson of the supernet's accuracies against the file's,
        and the accuracies themselves (the supernet's BN buffers and modes are restored)."""
        if self._decoded is None:
            self._decoded = self.images.decode(progress=False)
        eval_u8, labels, calib_u8 = self._decoded
        with SubnetScorer(self.supernet, eval_u8, labels, calib_u8, bn_mode=self.cfg.bn_mode,
                          batch_size=self.cfg.batch_size, device=self.device,
                          channels_last=self.channels_last) as scorer:
            pred, halves = {}, {}
            for c, _, acc in score_entries(scorer, list(self.archs.items())):
                pred[c] = acc
                halves[c] = scorer.last
        codes = list(self.archs)
        metrics = rank_metrics([pred[c] for c in codes], [self.truth[c] for c in codes])
        # the scorer's noise floor: how well the two halves of the images agree
        noise = {"split_half_kendall": kendall([halves[c].acc_halves[0] for c in codes],
                                               [halves[c].acc_halves[1] for c in codes]),
                 "split_half_kendall_neg_loss": kendall(
                     [-halves[c].loss_halves[0] for c in codes],
                     [-halves[c].loss_halves[1] for c in codes])}
        noise = {k: (v if math.isfinite(v) else None) for k, v in noise.items()}
        return {**metrics, **noise, "pred": pred}

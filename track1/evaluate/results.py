"""Crash-safe result files: per-rank JSONL logs and the atomically written final JSON.

Why: a 45,000-subnet run must survive being killed at any moment. Every finished
subnet is one JSON line appended and flushed to its rank's log (``track1.infra.resumable``:
a kill loses only the subnets in flight; a damaged line is dropped alone, its subnet
scored again, and counted in ``skipped``). The final JSON is written to a temporary file
and renamed, so a reader never sees a half-written submission.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable

from track1.evaluate.errors import EvaluateError
from track1.infra.folder_lock import FolderLock
from track1.infra.resumable import AppendLog, read_records

RESULTS_GLOB = "rank*.jsonl"


def rank_file(results_dir: str | os.PathLike, rank: int) -> Path:
    return Path(results_dir) / f"rank{rank:03d}.jsonl"


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Valid records of a rank log and the number of damaged lines skipped (a line that
    is not complete, valid JSON with a ``key``: a torn tail from a kill, or damage in the
    middle, is skipped alone)."""
    return read_records(path, "key")


class ResultsLog(AppendLog):
    """One rank's append-only JSONL log of scored subnets (``done``: those already there)."""

    def __init__(self, path: str | os.PathLike, fsync_every: int = 50,
                 fsync_seconds: float = 10.0) -> None:
        super().__init__(path, "key", fsync_every=fsync_every, fsync_seconds=fsync_seconds)


def read_results(results_dir: str | os.PathLike) -> tuple[dict[str, dict], int]:
    """All valid records of every rank file in ``results_dir`` (later files win) and the
    number of damaged lines skipped."""
    out: dict[str, dict] = {}
    damaged = 0
    for path in sorted(Path(results_dir).glob(RESULTS_GLOB)):
        records, bad = read_jsonl(path)
        damaged += bad
        for rec in records:
            out[rec["key"]] = rec
    return out, damaged


def collect(results_dir: str | os.PathLike) -> dict[str, dict]:
    """All valid records of every rank file in ``results_dir`` (later files win)."""
    return read_results(results_dir)[0]


class ResultsLock(FolderLock):
    """An exclusive lock on a results folder for one evaluate run: a second run on the
    same folder, ``--fresh`` or not, stops with one clear error instead of deleting the
    first one's log or scoring everything twice."""

    def __init__(self, results_dir: str | os.PathLike) -> None:
        super().__init__(results_dir, "evaluate", "pass another --results-dir", EvaluateError)


def build_submission(entries: Iterable[tuple[str, str]], results: dict[str, dict]) -> dict:
    """``{key: {"acc": float, "arch": code}}`` in list order; raises KeyError naming the
    first entry without a result, ValueError for a non-finite accuracy."""
    out = {}
    for key, code in entries:
        if key not in results:
            raise KeyError(key)
        acc = float(results[key]["acc"])
        if not math.isfinite(acc):
            raise ValueError(f"entry {key!r} has a non-finite accuracy {acc}")
        out[key] = {"acc": acc, "arch": code}
    return out

"""Crash-safe result files: per-rank JSONL logs and the atomically written final JSON.

Why: a 45,000-subnet run must survive being killed at any moment. Every finished
subnet is one JSON line appended and flushed to its rank's log (fsync'ed at least
every ``fsync_every`` lines or ``fsync_seconds``), so a kill loses only the subnets in
flight. On reopening, a torn last line (the process died mid-write) is cut off and
its subnet is scored again. The final JSON is written to a temporary file and
renamed, so a reader never sees a half-written submission.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Iterable

from track1.atomic import atomic_write

RESULTS_GLOB = "rank*.jsonl"


def rank_file(results_dir: str | os.PathLike, rank: int) -> Path:
    return Path(results_dir) / f"rank{rank:03d}.jsonl"


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict], int]:
    """Valid records of ``path`` and the byte length of its valid prefix.

    Reading stops at the first line that is not complete, valid JSON with a ``key``
    (a torn tail); everything before it is kept.
    """
    records: list[dict] = []
    good = 0
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return records, 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # no newline: torn last line
        try:
            rec = json.loads(data[pos:end])
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if not isinstance(rec, dict) or "key" not in rec:
            break
        records.append(rec)
        pos = good = end + 1
    return records, good


class ResultsLog:
    """Append-only JSONL log of one rank; ``done`` holds the records already there."""

    def __init__(self, path: str | os.PathLike, fsync_every: int = 50,
                 fsync_seconds: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records, good = read_jsonl(self.path)
        if self.path.exists() and self.path.stat().st_size != good:
            with open(self.path, "r+b") as f:  # drop the torn tail before appending
                f.truncate(good)
        self.done: dict[str, dict] = {r["key"]: r for r in records}
        self._f = open(self.path, "a", encoding="utf-8")
        self.fsync_every, self.fsync_seconds = fsync_every, fsync_seconds
        self._unsynced, self._last_sync = 0, time.monotonic()

    def append(self, record: dict) -> None:
        self._f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._f.flush()
        self.done[record["key"]] = record
        self._unsynced += 1
        if self._unsynced >= self.fsync_every or time.monotonic() - self._last_sync > self.fsync_seconds:
            self.sync()

    def sync(self) -> None:
        if self._unsynced:
            os.fsync(self._f.fileno())
        self._unsynced, self._last_sync = 0, time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> "ResultsLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def collect(results_dir: str | os.PathLike) -> dict[str, dict]:
    """All valid records of every rank file in ``results_dir`` (later files win)."""
    out: dict[str, dict] = {}
    for path in sorted(Path(results_dir).glob(RESULTS_GLOB)):
        for rec in read_jsonl(path)[0]:
            out[rec["key"]] = rec
    return out


def write_json_atomic(obj: object, path: str | os.PathLike, indent: int | None = None) -> Path:
    """``json.dump`` to a temporary file in the same folder, fsync, then rename."""
    def write(f) -> None:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    return atomic_write(path, write, binary=False)


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

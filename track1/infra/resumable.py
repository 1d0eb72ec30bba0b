"""Append-only record logs that survive a kill at any moment: the one helper behind every
resumable result file (evaluation's per-rank JSONL, the bench's prediction CSVs, the proxy
and Zen-score caches).

Why: long runs (45,000 subnets, 1,000 archs x several supernets) must resume where they
stopped without losing or repeating work. Each record is one line, appended and flushed
as soon as it exists (``fsync``'ed at least every ``fsync_every`` records or
``fsync_seconds``), so a kill loses only the record in flight. On reopening, a damaged
line (a torn tail from a kill, or damage in the middle) is dropped alone, the file is
rewritten without it before anything is appended, and the count is reported
(``skipped``); its work is simply done again.

Two formats, chosen by the file's suffix: ``.csv`` (a header row naming ``fields``,
values read back as strings) and anything else as JSON lines (one object per line).
A record is complete when it has its ``key`` and every one of ``fields``. A finished log
may be kept gzip-compressed (``.jsonl.gz``, ``.csv.gz``: a 45k-subnet proxy cache is
19 MB plain, 4 MB compressed): ``read_records`` reads it; appending needs the plain file.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from track1.infra.atomic import atomic_write


def _is_csv(path: Path) -> bool:
    return path.name.endswith((".csv", ".csv.gz"))


def _is_gzip(path: Path) -> bool:
    return path.suffix == ".gz"


def _encode(record: dict[str, Any], fields: Sequence[str], as_csv: bool) -> str:
    if not as_csv:
        return json.dumps(record, separators=(",", ":")) + "\n"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([record.get(f, "") for f in fields])
    return buf.getvalue()


def read_records(path: str | os.PathLike, key: str, fields: Sequence[str] = ()
                 ) -> tuple[list[dict[str, Any]], int]:
    """The complete records of ``path`` in file order and the number of damaged lines
    skipped (each alone: every valid record after one is kept; an unterminated last line
counts as damaged). A missing file is empty."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    if _is_gzip(path):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path}: not a complete gzip file ({e})") from None
    need = [key, *fields]
    records: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    # the text after the last newline is a write the kill interrupted: a CSV row cut
    # inside its last value would still parse, with a wrong value, so it never counts
    torn = lines.pop()
    damaged = 1 if torn.strip() else 0
    header: list[str] | None = None
    for raw in lines:
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            if _is_csv(path):
                row = next(csv.reader([text]))
                if header is None:
                    header = row
                    continue
                if len(row) != len(header):
                    raise ValueError("wrong number of columns")
                rec: Any = dict(zip(header, row))
            else:
                rec = json.loads(text)
        except (ValueError, UnicodeDecodeError, StopIteration, csv.Error):
            damaged += 1
            continue
        if not isinstance(rec, dict) or any(rec.get(f) in (None, "") for f in need):
            damaged += 1
            continue
        records.append(rec)
    return records, damaged


def merge_by_key(records: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Every key's records merged in order, later fields winning (records that add fields
    to a key, e.g. proxies scored by a later run)."""
    merged: dict[str, dict[str, Any]] = {}
    for rec in records:
        merged.setdefault(rec[key], {}).update(rec)
    return merged


class AppendLog:
    """An append-only record file, opened for resuming: ``records`` holds what is there
    (``done`` the same by key, later records winning), ``append`` adds one durably."""

    def __init__(self, path: str | os.PathLike, key: str, fields: Sequence[str] = (),
                 fsync_every: int = 50, fsync_seconds: float = 10.0) -> None:
        self.path, self.key, self.fields = Path(path), key, list(fields)
        if _is_gzip(self.path):
            raise ValueError(f"{self.path}: a compressed log is read-only (read_records); "
                             f"append to the plain file (gunzip it first)")
        self.as_csv = _is_csv(self.path)
        if self.as_csv and not self.fields:
            raise ValueError(f"{self.path}: a CSV log needs its fields (the header)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records, self.skipped = read_records(self.path, key, self.fields)
        if self.skipped:  # rewrite without the damaged lines before appending
            self._rewrite()
        self.done: dict[str, dict[str, Any]] = {rec[key]: rec for rec in self.records}
        #: every key's records merged (``merge_by_key``)
        self.merged: dict[str, dict[str, Any]] = merge_by_key(self.records, key)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._f = open(self.path, "a", encoding="utf-8", newline="")
        if new and self.as_csv:
            self._f.write(_encode({f: f for f in self.fields}, self.fields, True))
            self._f.flush()
        self.fsync_every, self.fsync_seconds = fsync_every, fsync_seconds
        self._unsynced, self._last_sync = 0, time.monotonic()

    def _rewrite(self) -> None:
        def write(f) -> None:
            if self.as_csv:
                f.write(_encode({c: c for c in self.fields}, self.fields, True))
            for rec in self.records:
                f.write(_encode(rec, self.fields, self.as_csv))
        atomic_write(self.path, write, binary=False)

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and flush it (fsync by the log's policy)."""
        if self.as_csv:  # what a reader gets back: strings
            record = {f: str(record.get(f, "")) for f in self.fields}
        self._f.write(_encode(record, self.fields, self.as_csv))
        self._f.flush()
        self.records.append(record)
        self.done[record[self.key]] = record
        self.merged.setdefault(record[self.key], {}).update(record)
        self._unsynced += 1
        if self._unsynced >= self.fsync_every or \
                time.monotonic() - self._last_sync > self.fsync_seconds:
            self.sync()

    def flush(self) -> None:
        self._f.flush()

    def sync(self) -> None:
        if self._unsynced:
            self._f.flush()
            os.fsync(self._f.fileno())
        self._unsynced, self._last_sync = 0, time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> "AppendLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records(path: str | os.PathLike, records: Sequence[dict[str, Any]],
                  fields: Sequence[str] = ()) -> None:
    """Replace ``path`` atomically with ``records`` in the log's format (a finished file,
    e.g. a subset of another log's records)."""
    path = Path(path)
    as_csv = _is_csv(path)

    def write(f) -> None:
        if as_csv:
            f.write(_encode({c: c for c in fields}, fields, True))
        for rec in records:
            f.write(_encode(rec, fields, as_csv))
    atomic_write(path, write, binary=False)


def claim_folder(meta: str | os.PathLike, setup: dict[str, Any]) -> list[str] | None:
    """Tie a results folder to the setup its records depend on: ``meta`` (a JSON file in the
    folder) is written with ``setup`` when absent; when present, the keys in which it differs
    from ``setup`` are returned (``['format']`` for an unreadable file), None when it
    matches. Callers refuse to mix records of different setups."""
    meta = Path(meta)
    if not meta.exists():
        meta.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(meta, lambda f: json.dump(setup, f, indent=1), binary=False)
        return None
    try:
        old = json.loads(meta.read_text())
    except (OSError, ValueError):
        old = None
    if old == setup:
        return None
    return sorted(k for k in setup if not isinstance(old, dict) or old.get(k) != setup[k]) \
        or ["format"]

"""``track1.infra.resumable.AppendLog``, the helper behind every resumable result file: a kill
at any byte loses only the record in flight, a damaged line is dropped alone, and a
reopened log appends after what survived, in both of its formats."""
from __future__ import annotations

import csv
import gzip

import pytest

from track1.infra.resumable import AppendLog, read_records, write_records

FIELDS = ("arch", "pred", "loss")


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_kill_at_every_byte_loses_only_the_record_in_flight(tmp_path, name):
    path = tmp_path / name
    rows = [{"arch": f"a{i}", "pred": f"{i}.5", "loss": f"0.{i}"} for i in range(4)]
    with AppendLog(path, "arch", FIELDS) as log:
        for r in rows:
            log.append(r)
    data = path.read_bytes()
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        with AppendLog(path, "arch", FIELDS) as log:
            kept = list(log.done)
            assert kept == [r["arch"] for r in rows[:len(kept)]]  # a prefix, nothing invented
            log.append({"arch": "new", "pred": "1", "loss": "2"})
        records, damaged = read_records(path, "arch", FIELDS)
        assert damaged == 0 and [r["arch"] for r in records] == kept + ["new"], cut
        assert records[:len(kept)] == rows[:len(kept)]


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_a_damaged_middle_line_is_dropped_alone(tmp_path, name):
    path = tmp_path / name
    with AppendLog(path, "arch", FIELDS) as log:
        for i in range(3):
            log.append({"arch": f"a{i}", "pred": "1", "loss": "2"})
    lines = path.read_bytes().split(b"\n")
    lines[-3] = b"\xff garbage"  # the second record
    path.write_bytes(b"\n".join(lines))
    assert [r["arch"] for r in read_records(path, "arch", FIELDS)[0]] == ["a0", "a2"]
    with AppendLog(path, "arch", FIELDS) as log:
        assert log.skipped == 1 and list(log.done) == ["a0", "a2"]
    assert read_records(path, "arch", FIELDS) == ([log.done["a0"], log.done["a2"]], 0)


@pytest.mark.parametrize("name", ["log.csv", "log.jsonl"])
def test_a_compressed_log_reads_as_its_plain_file_and_refuses_appends(tmp_path, name):
    path = tmp_path / name
    with AppendLog(path, "arch", FIELDS) as log:
        for i in range(3):
            log.append({"arch": f"a{i}", "pred": f"{i}", "loss": "2"})
    packed = tmp_path / f"{name}.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert read_records(packed, "arch", FIELDS) == read_records(path, "arch", FIELDS)
    with pytest.raises(ValueError, match="read-only"):
        AppendLog(packed, "arch", FIELDS)
    packed.write_bytes(gzip.compress(path.read_bytes())[:-9])      # cut short
    with pytest.raises(ValueError, match="not a complete gzip file"):
        read_records(packed, "arch", FIELDS)


def test_reads_csv_files_written_by_csv_writer(tmp_path):
    """Prediction files of earlier runs were written by ``csv.writer`` (CRLF endings)."""
    path = tmp_path / "old.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerow(["x", "1.0", "0.5"])
        w.writerow(["y", "2.0", ""])  # incomplete: no loss
    assert read_records(path, "arch", FIELDS) == ([{"arch": "x", "pred": "1.0", "loss": "0.5"}], 1)
    with AppendLog(path, "arch", FIELDS) as log:
        log.append({"arch": "z", "pred": 3, "loss": 1})
    assert [r["arch"] for r in read_records(path, "arch", FIELDS)[0]] == ["x", "z"]


def test_write_records_replaces_the_file(tmp_path):
    path = tmp_path / "sub.csv"
    rows = [{"arch": "b", "pred": "1", "loss": "2"}]
    write_records(path, rows, FIELDS)
    assert read_records(path, "arch", FIELDS) == (rows, 0)
    with pytest.raises(ValueError, match="needs its fields"):
        AppendLog(tmp_path / "x.csv", "arch")


def test_claim_folder_ties_a_folder_to_one_setup(tmp_path):
    from track1.infra.resumable import claim_folder
    meta = tmp_path / "run" / "setup.json"
    setup = {"checkpoint": "a.pth", "images": 500}
    assert claim_folder(meta, setup) is None and meta.exists()   # claimed
    assert claim_folder(meta, dict(setup)) is None                # same setup: fine
    assert claim_folder(meta, {**setup, "images": 100}) == ["images"]
    meta.write_text("{torn")
    assert claim_folder(meta, setup) == ["checkpoint", "images"]

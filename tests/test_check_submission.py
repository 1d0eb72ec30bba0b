"""``python -m track1 check-submission``: accepts a full valid file, rejects each broken case."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from track1.cli import main
from track1.data.arch_list import read_list_json
from track1.resnet48.official import OFFICIAL_LIST

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def valid() -> dict:
    data = read_list_json(OFFICIAL_LIST)
    return {k: {"acc": (i % 997) / 996, "arch": v["arch"]} for i, (k, v) in enumerate(data.items())}


def _write(tmp_path: Path, obj, name="sub.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def test_full_valid_submission_accepted(valid, tmp_path, capsys):
    assert len(valid) == 45_000 and list(valid)[-1] == "arch45000"
    assert main(["check-submission", str(_write(tmp_path, valid))]) == 0
    assert "valid" in capsys.readouterr().out


def test_cli_exit_codes_in_a_subprocess(valid, tmp_path):
    good = _write(tmp_path, valid)
    bad = dict(valid)
    bad["arch7"] = {"acc": 1.5, "arch": valid["arch7"]["arch"]}
    for path, code in ((good, 0), (_write(tmp_path, bad, "bad.json"), 1)):
        r = subprocess.run([sys.executable, "-m", "track1", "check-submission", str(path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == code, r.stderr
    assert "arch7" in r.stderr


def _broken(valid: dict, case: str):
    items = list(valid.items())
    if case == "order":
        items[10], items[11] = items[11], items[10]
        return dict(items), "arch11"
    if case == "missing":
        return dict(items[:-1]), "arch45000"
    if case == "extra":
        return {**valid, "arch45001": {"acc": 0.5, "arch": items[0][1]["arch"]}}, "arch45001"
    if case == "renamed":
        items[99] = ("arch_100", items[99][1])
        return dict(items), "arch_100"
    out = {k: dict(v) for k, v in items}
    if case == "arch":
        code = out["arch5"]["arch"]
        out["arch5"]["arch"] = code[:-1] + ("1" if code[-1] != "1" else "2")
        return out, "arch5"
    if case == "nan":
        out["arch3"]["acc"] = float("nan")
        return out, "arch3"
    if case == "inf":
        out["arch3"]["acc"] = float("inf")
        return out, "arch3"
    if case == "percent":
        out["arch42"]["acc"] = 73.5
        return out, "arch42"
    if case == "negative":
        out["arch42"]["acc"] = -0.01
        return out, "arch42"
    if case == "string":
        out["arch8"]["acc"] = "0.5"
        return out, "arch8"
    if case == "bool":
        out["arch8"]["acc"] = True
        return out, "arch8"
    if case == "no_acc":
        del out["arch9"]["acc"]
        return out, "arch9"
    if case == "not_object":
        out["arch9"] = 0.5
        return out, "arch9"
    if case == "not_json":
        return '{"arch1": {"acc": 0.5,', "JSON"
    if case == "list":
        return "[1, 2]", "object"
    if case == "duplicate":  # 45,001 members, the last repeating arch7: json kept the last
        text = json.dumps(valid)
        return text[:-1] + ', "arch7": ' + json.dumps(valid["arch7"]) + "}", "arch7"
    if case == "deep":
        return "[" * 100_000 + "]" * 100_000, "nested too deeply"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["order", "missing", "extra", "renamed", "arch", "nan", "inf",
                                  "percent", "negative", "string", "bool", "no_acc", "not_object",
                                  "not_json", "list", "duplicate", "deep"])
def test_each_broken_case_rejected_naming_the_problem(valid, tmp_path, capsys, case):
    obj, needle = _broken(valid, case)
    assert main(["check-submission", str(_write(tmp_path, obj))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_custom_list_via_archs(tmp_path, capsys):
    lst = {"arch1": {"acc": 0.0, "arch": "1252233313000000223212122253130000000000006515000000"}}
    archs = _write(tmp_path, lst, "list.json")
    sub = _write(tmp_path, {"arch1": {"acc": 0.25, "arch": lst["arch1"]["arch"]}})
    assert main(["check-submission", str(sub), "--archs", str(archs)]) == 0
    assert main(["check-submission", str(sub)]) == 1  # against the official 45,000
    assert "missing entries" in capsys.readouterr().err
    assert main(["check-submission", str(tmp_path / "absent.json")]) == 1


def test_arch_list_with_a_repeated_key_is_refused(tmp_path, capsys):
    """``evaluate --archs`` kept the last duplicate silently (issue 13, item 10)."""
    code = "1252233313000000223212122253130000000000006515000000"
    path = _write(tmp_path, '{"arch1": {"arch": "%s"}, "arch1": {"arch": "%s"}}' % (code, code),
                  "list.json")
    assert main(["evaluate", "--archs", str(path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "'arch1' appears twice" in err and len(err.strip().splitlines()) == 1


def test_truncated_or_corrupt_gzip_lists_are_one_line(tmp_path, capsys):
    """Issue 19, M5: a truncated .gz gave a traceback in every list reader."""
    import gzip
    from track1.data.arch_list import ArchListError, read_list_json
    from track1.train.errors import TrainError
    from track1.train.rank_check import read_ground_truth
    good = gzip.compress(b'{"arch1": {"arch": "x", "acc": 0.5}}' * 50)
    for name, data in (("cut.json.gz", good[:len(good) // 2]), ("bad.json.gz", good[:10] + b"\0" * 40)):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ArchListError, match="cannot read arch list"):
            read_list_json(path)
        sub = tmp_path / "sub.json"
        sub.write_text('{"arch1": {"acc": 0.5, "arch": "x"}}')
        assert main(["check-submission", str(sub), "--archs", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot read arch list" in err[0]
    csv_gz = tmp_path / "gt.csv.gz"
    rows = "".join(f"arch{i},{(i * 7919) % 1000 / 10}\n" for i in range(3000)).encode()
    packed = gzip.compress(b"arch,acc\n" + rows)
    csv_gz.write_bytes(packed[:len(packed) // 2])
    with pytest.raises(TrainError, match="cannot read it"):
        read_ground_truth(csv_gz)


def test_a_non_finite_ground_truth_is_refused_at_start(tmp_path):
    """Issue 19, M4: a NaN accuracy passed the start-up checks, then crashed after the
    first epoch (and on every restart)."""
    from track1.train.errors import TrainError
    from track1.train.rank_check import read_ground_truth
    path = tmp_path / "gt.csv"
    path.write_text("arch,acc\na,0.5\nb,nan\n")
    with pytest.raises(TrainError, match="row 3 has a non-finite accuracy"):
        read_ground_truth(path)

"""The command line: `python -m track1 info` output and its errors."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.test_costs import REFERENCE_COSTS
from track1.cli import main


def test_info_reproduces_spec_table(capsys):
    assert main(["info", *REFERENCE_COSTS]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["arch"] for r in rows] == list(REFERENCE_COSTS)
    for row in rows:
        flops, macs, params = REFERENCE_COSTS[row["arch"]]
        assert (row["flops"], row["macs"], row["params"]) == (flops, macs, params)
    assert rows[1]["depths"] == [2, 2, 2, 2]
    assert rows[1]["widths"]["stem"] == 48 and rows[1]["widths"]["stages"][3] == [[360, 360]] * 2


def test_info_bad_code_is_one_line_and_exit_2(python_exe):
    good = next(iter(REFERENCE_COSTS))
    bad = good[:10] + "0" + good[11:]
    proc = subprocess.run([python_exe, "-m", "track1", "info", good, bad],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""  # all-or-nothing: no partial output before the error
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "code[10]" in lines[0] and "active block" in lines[0]


def test_info_untied_flag(capsys):
    code = "1252233313000000223112122253130000000000006515000000"
    assert main(["info", code]) == 2
    assert "conv2 tie" in capsys.readouterr().err
    assert main(["info", "--untied", code]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == code


@pytest.mark.parametrize("argv,named", [
    (["evaluate", "--eval-images", "-999"], "--eval-images"),
    (["evaluate", "--eval-images", "-5"], "--eval-images"),
    (["evaluate", "--limit", "-1"], "--limit"),
    (["evaluate", "--batch-size", "-1"], "--batch-size"),
    (["evaluate", "--calib-images", "0"], "--calib-images"),
    (["evaluate", "--calib-batch-size", "0"], "--calib-batch-size"),
    (["evaluate", "--threads", "-1"], "--threads"),
    (["evaluate", "--prefix-cache-gb", "nan"], "--prefix-cache-gb"),
    (["info", "1252233313000000223212122253130000000000006515000000", "--image-size", "0"],
     "--image-size"),
    (["info", "1252233313000000223212122253130000000000006515000000", "--num-classes", "-3"],
     "--num-classes"),
    (["info", "1252233313000000223212122253130000000000006515000000", "--zen-batch", "0"],
     "--zen-batch"),
])
def test_nonsense_numbers_refused_before_any_work(argv, named, capsys):
    """Issue 13, item 7: each used to run (one image scored, all 45,000 for -1, made-up
    costs, -Infinity in JSON); now argparse refuses it naming the flag and the rule."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {named}: must be" in err


def test_run_sh_resolves_relative_paths_against_the_callers_folder(tmp_path):
    """Issue 13, item 4: run.sh changed directory first, so `cd /tmp/x && bash run.sh
    check-submission sub.json` said 'file not found'."""
    import os
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    (tmp_path / "sub.json").write_text("{}")
    r = subprocess.run(["bash", str(root / "run.sh"), "check-submission", "sub.json"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TRACK1_PYTHON": sys.executable})
    assert r.returncode == 1 and "missing entries: 0 of 45000" in r.stderr, r.stderr

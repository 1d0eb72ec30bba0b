"""The rank report (``track1.evaluate.report``, and ``tools/rank_report.py`` over it):
Kendall, Spearman, Pearson between two result files of any kind, matched by arch code."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from track1.evaluate.report import ReportError, load_scores, rank_report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """A submission JSON (predictions) and a ground-truth CSV in another row order."""
    rng = np.random.default_rng(1)
    truth = rng.uniform(size=40)
    pred = truth + rng.normal(scale=0.2, size=40)
    codes = [f"code{i:02d}" for i in range(40)]
    sub = {f"arch{i + 1}": {"acc": float(p), "arch": c} for i, (p, c) in enumerate(zip(pred, codes))}
    (tmp_path / "sub.json").write_text(json.dumps(sub))
    order = rng.permutation(40)  # matched by arch code, not by row position
    with open(tmp_path / "gt.csv", "w") as f:
        f.write("index,arch,gt\n")
        for j, i in enumerate(order):
            f.write(f"{j},{codes[i]},{truth[i]}\n")
    return tmp_path / "sub.json", tmp_path / "gt.csv", pred, truth


def test_rank_report_matches_scipy_and_draws_the_plot(files, tmp_path):
    sub, gt, pred, truth = files
    png = tmp_path / "rank.png"
    report = rank_report(sub, gt, key_b="gt", plot=png)
    assert report["n"] == 40 and report["matched_by"] == "arch"
    assert (report["only_in_a"], report["only_in_b"], report["top_k"]) == (0, 0, 4)
    assert report["kendall"] == pytest.approx(stats.kendalltau(pred, truth).statistic)
    assert report["spearman"] == pytest.approx(stats.spearmanr(pred, truth).statistic)
    assert report["pearson"] == pytest.approx(stats.pearsonr(pred, truth).statistic)
    assert report["plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ReportError, match="has no 'acc' field"):
        rank_report(sub, gt)


def test_jsonl_with_a_torn_line_and_gz_are_read(tmp_path):
    lines = [json.dumps({"key": "a", "arch": "x", "acc": 0.5}),
             json.dumps({"key": "b", "arch": "y", "acc": 0.25}), '{"key": "c", "ar']
    (tmp_path / "r.jsonl").write_text("\n".join(lines))
    (tmp_path / "r.json.gz").write_bytes(gzip.compress(json.dumps(
        {"a": {"acc": 1.0, "arch": "x"}, "b": {"acc": 2.0, "arch": "y"}}).encode()))
    assert load_scores(tmp_path / "r.jsonl", "acc") == ({"a": 0.5, "b": 0.25}, {"a": "x", "b": "y"})
    report = rank_report(tmp_path / "r.jsonl", tmp_path / "r.json.gz")
    assert report["n"] == 2 and report["kendall"] == pytest.approx(-1.0)


def test_tool_is_a_command_line_over_the_module(files):
    """tools/rank_report.py imports the package (no sys.path edits) and exits 2 with one
    line on a bad input."""
    sub, gt, pred, truth = files
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as run.sh gives TRACK1_PYTHON
    tool = [sys.executable, str(ROOT / "tools" / "rank_report.py")]
    ok = subprocess.run(tool + [str(sub), str(gt), "--key-b", "gt", "--json"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["kendall"] == pytest.approx(stats.kendalltau(pred, truth).statistic)
    bad = subprocess.run(tool + [str(sub), str(gt)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "has no 'acc' field" in bad.stderr

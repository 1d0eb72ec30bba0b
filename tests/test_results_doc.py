"""docs/RESULTS.md is what `bash tools/rebuild_results.sh` makes of the committed run
folders (docs/results/ORDER, each folder's COMMAND.txt, NOTES.md): regenerated into a
temporary file, it must equal the committed one, and every folder under docs/results/
follows the one-folder-per-run layout of docs/results/README.md."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"


def test_results_md_rebuilds_from_the_committed_folders(tmp_path):
    out = tmp_path / "RESULTS.md"
    env = {**os.environ, "TRACK1_PYTHON": sys.executable, "RESULTS_OUT": str(out),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run(["bash", str(ROOT / "tools" / "rebuild_results.sh")], env=env, check=True,
                   capture_output=True, text=True, timeout=300)
    assert out.read_text() == (ROOT / "docs" / "RESULTS.md").read_text(), \
        "docs/RESULTS.md is stale: run bash tools/rebuild_results.sh"


def test_every_run_folder_is_named_by_the_scheme_and_has_its_command():
    machine = r"(h100|h200|\d+core-cpu)"
    folders = sorted(p for p in RESULTS.iterdir() if p.is_dir())
    assert folders
    for folder in folders:
        assert re.fullmatch(rf"[a-z0-9]+(-[a-z0-9]+)*-{machine}", folder.name), folder.name
        assert (folder / "COMMAND.txt").read_text().strip(), folder.name
    listed = [line.split()[1] for line in (RESULTS / "ORDER").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert set(listed) <= {p.name for p in folders}


def test_a_later_proxy_report_marks_what_it_replaces_and_adds(tmp_path):
    """Reports merged in order: a proxy reported again with the same figures keeps its
    first source (no mark), one with other figures is a re-run, a new one is added."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_results
    finally:
        sys.path.pop(0)

    def report(folder: str, proxies: dict[str, float]) -> Path:
        d = tmp_path / folder
        d.mkdir()
        nb = {"archs": 200, "label": "fixed200", "subset_seed": 0, "batch": 16,
              "naswot_batch": 64, "zen_batch": 16, "wall_s_this_run": 60.0,
              "proxies": {n: {t: {"kendall": k, "spearman": k, "pearson": k}
                              for t in ("valid", "test")} for n, k in proxies.items()}}
        (d / "summary_nb201_fixed200.json").write_text(json.dumps({"machine": "m", "nb201": nb}))
        return d / "summary_nb201_fixed200.json"
    paths = [report("first", {"flops": 0.5, "naswot": 0.4}),
             report("second", {"flops": 0.5, "naswot": 0.45, "swap": 0.6})]
    lines, _ = make_results.proxy_section(paths, tmp_path / "docs")
    text = "\n".join(lines)
    assert "| flops | 0.500" in text
    assert "| naswot (re-run) | 0.450" in text and "| swap (added) | 0.600" in text


def test_fusion_totals_count_the_runs_fused_beats_both():
    """The totals under the fusion table: per key and proxy, the runs (of every bench)
    where the fused Kendall is strictly above both parts, over every run and over the
    runs whose supernet alone is above 0."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_results
    finally:
        sys.path.pop(0)

    def run(sup: float, proxy: float, fused: float) -> dict:
        cell = {"p": {"supernet": sup, "proxy": proxy, "fused": fused}}
        return {"accuracy": cell, "neg_loss": cell}

    summary = {"proxies": ["p"], "benches": {
        "a": {"m_s0": run(0.3, 0.5, 0.6), "m_s1": run(0.3, 0.5, 0.5)},   # a tie is no win
        "b": {"m_s0": run(-0.2, 0.5, 0.55), "m_s1": run(0.0, 0.5, 0.4)}}}
    rows = make_results.fusion_totals(summary)
    assert rows[0] == "| **all benches** | every run | 4 | accuracy | | (2/4) |"
    assert rows[1] == "| **all benches** | runs whose supernet alone is above 0 | 2 | accuracy | | (1/2) |"
    assert len(rows) == 4 and rows[3].endswith("| neg_loss | | (1/2) |")


def test_transfer_table_compares_each_supernet_with_its_teacher_and_spos():
    """Does a supernet learn its teacher's order: per RD-NAS method, its supernets'
    agreement with their own teacher (mean over seeds) against SPOS's with that teacher,
    and the seeds above SPOS of the same seed; methods whose teacher is not a reported
    proxy are left out."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_results
    finally:
        sys.path.pop(0)

    def run(teacher, **agree: float) -> dict:
        cells = {n: agree.get(n, 0.0) for n in ("f", "m")}
        return {"teacher": teacher, "agreement": {"accuracy": cells,
                                                  "neg_loss": {n: v + 0.1 for n, v in cells.items()}}}

    summary = {"proxies": ["f", "m"], "benches": {"b": {
        "spos_s0": run(None, f=0.2, m=0.5), "spos_s1": run(None, f=0.4, m=0.1),
        "rdnas_f_s0": run("f", f=0.3, m=0.9), "rdnas_f_s1": run("f", f=0.4),   # a tie: not above
        "rdnas_m_s2": run("m", m=0.7), "rdnas_z_s0": run("zen", f=0.9)}}}
    rows = make_results.transfer_table(summary)
    assert rows[2] == "| `b` | rdnas_f | f | 2 | 0.350 / 0.450 | 0.300 / 0.400 (2) | 1 / 1 of 2 |"
    assert rows[3] == "| `b` | rdnas_m | m | 1 | 0.700 / 0.800 | 0.300 / 0.400 (2) | 0 / 0 of 0 |"
    assert len(rows) == 4          # no line for SPOS itself, nor for the zen teacher

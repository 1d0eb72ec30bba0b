"""docs/RESULTS.md is what `bash tools/rebuild_results.sh` makes of the committed run
folders (docs/results/ORDER, each folder's COMMAND.txt, NOTES.md): regenerated into a
temporary file, it must equal the committed one, and every folder under docs/results/
follows the one-folder-per-run layout of docs/results/README.md."""
from __future__ import annotations

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

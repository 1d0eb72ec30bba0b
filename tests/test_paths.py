"""Default locations come from the project home, never from the package's own files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from track1.infra import paths

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_hang_off_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TRACK1_CIFAR10", raising=False)
    monkeypatch.setenv("TRACK1_HOME", str(tmp_path / "clone"))
    assert paths.ckpt_dir() == tmp_path / "clone" / "supernet_ckpt"
    assert paths.submission_dir() == tmp_path / "clone" / "submission"
    assert paths.runs_dir("search") == tmp_path / "clone" / "runs" / "search"
    # the shared data folder sits beside the clone, wherever the clone is
    assert paths.cifar10_tar() == tmp_path / "shared" / "data" / "cifar10" / "cifar10-jpeg.tar.gz"
    monkeypatch.setenv("TRACK1_CIFAR10", str(tmp_path / "c.tar.gz"))
    assert paths.cifar10_tar() == tmp_path / "c.tar.gz"
    monkeypatch.delenv("TRACK1_HOME")
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path and paths.ckpt_dir() == tmp_path / "supernet_ckpt"


def test_the_clones_data_default_finds_the_shared_folder():
    """From this clone (``shared`` beside it, as CI lays it out): the default CIFAR-10
    path is the shared tarball; run.sh makes the repository the home from any folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRACK1_HOME", "TRACK1_CIFAR10")}
    out = subprocess.run([sys.executable, "-c", "from track1.infra.paths import cifar10_tar; "
                          "print(cifar10_tar())"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert Path(out) == ROOT.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.tar.gz"
    assert 'export TRACK1_HOME="${TRACK1_HOME:-$ROOT}"' in (ROOT / "run.sh").read_text()


def test_no_output_folder_is_placed_by_the_package_files():
    offenders = [str(p) for p in (ROOT / "track1").rglob("*.py")
                 if "__file__" in p.read_text() and not any(
                     s in p.read_text() for s in ('"assets"', '"configs"'))]
    assert not offenders, offenders

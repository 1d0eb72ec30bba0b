"""A reader that goes away (``| head``) neither prints a traceback nor stops work
(issue 13, item 11)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = "1252233313000000223212122253130000000000006515000000"


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _first_lines_then_close(cmd: list[str], n: int) -> tuple[int, str]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(n):
        proc.stdout.readline()
    proc.stdout.close()                       # as `| head -n` does
    err = proc.stderr.read()
    return proc.wait(timeout=600), err


def test_info_into_a_closed_pipe_is_quiet():
    rc, err = _first_lines_then_close([sys.executable, "-m", "track1", "info", *[CODE] * 3000], 1)
    assert rc == 0 and "Traceback" not in err and "BrokenPipe" not in err


def test_training_survives_a_closed_stdout_and_saves(tmp_path):
    cmd = [sys.executable, "-m", "track1", "train", "--ckpt-dir", str(tmp_path), "--name", "t",
           "--epochs", "1", "--max-steps-per-epoch", "6", "--batch-size", "4", "--no-progress",
           "--set", "space=nb201", "--set", "model={num_classes: 10, C: 4, N: 1}",
           "--set", "loss.num_random=1", "--set", "loss.num_pairs=1",
           "--set", "sampler.threshold=2", "--set", "runtime.log_interval=1"]
    rc, err = _first_lines_then_close(cmd, 2)
    assert rc == 0 and "Traceback" not in err, err
    from track1.infra.checkpoint import load_checkpoint
    assert load_checkpoint(tmp_path / "t" / "last.pth")["step"] == 6

"""Run a command in a process group of its own and stop the whole group on a deadline.

Why: a command that starts children of its own (``bench-nb201 --jobs N`` starts one
process per run) leaves them running, orphaned, when only its own process is killed at a
time limit; they then compete with whatever runs next and write into folders being
collected. Here the command leads a new session, so SIGINT (the children save what they
can and stop: every run resumes) and then SIGKILL reach all of them.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

#: exit status reported when the deadline stopped the command (as ``timeout`` reports it)
TIMED_OUT = 124


def run_group(cmd: Sequence[str], timeout: float, log: str | os.PathLike, *,
              cwd: str | os.PathLike | None = None, env: Mapping[str, str] | None = None,
              grace_s: float = 20.0) -> int:
    """Run ``cmd`` with its output appended to ``log`` as it is written (nothing held in
    memory: a caller cut off later still has it). At ``timeout`` seconds SIGINT goes to
    the whole group, SIGKILL ``grace_s`` later to whatever is left. Returns the exit
    status, ``TIMED_OUT`` when the deadline stopped it."""
    with open(Path(log), "a") as f:
        proc = subprocess.Popen(list(cmd), stdout=f, stderr=subprocess.STDOUT, cwd=cwd,
                                env=dict(env) if env is not None else None,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(0.1, timeout))
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            rc = TIMED_OUT
        # the leader may be gone while children it started live on: none may
        signal_group(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.wait()
        return rc


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to process group ``pgid``; False when no member is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running; zombies (dead, waiting for
    a parent to reap them) do not count. Reads /proc where there is one."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False

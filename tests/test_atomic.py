"""Atomic writes: stale temporary files of killed writers are cleaned, and written files
get the permissions of the user's umask (issue 13, items 12 and 14)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from track1.infra.atomic import atomic_write, remove_stale_temps


def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.pth"
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from track1.infra.atomic import atomic_write\n"
            "def slow(f):\n    f.write(b'x' * 1000); f.flush(); time.sleep(60)\n"
            "atomic_write(%r, slow)\n") % (os.getcwd(), str(target))
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 30
    while time.time() < deadline and not list(tmp_path.glob(".last.pth.*.tmp")):
        time.sleep(0.05)
    stale = list(tmp_path.glob(".last.pth.*.tmp"))
    assert len(stale) == 1 and f".{proc.pid}." in stale[0].name
    assert remove_stale_temps(target) == []      # its writer is alive: left alone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert stale[0].exists()                     # SIGKILL: the writer could not clean up
    atomic_write(target, lambda f: f.write(b"ok"))
    assert not stale[0].exists() and target.read_bytes() == b"ok"
    assert not list(tmp_path.glob(".*.tmp"))


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write(tmp_path / "a.json", lambda f: f.write("{}"), binary=False)
        assert p.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        q = atomic_write(tmp_path / "b.json", lambda f: f.write("{}"), binary=False)
        assert q.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)

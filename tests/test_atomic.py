"""Atomic writes: stale temporary files of killed writers are cleaned, and written files
get the permissions of the user's umask (issue 13, items 12 and 14)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from track1.infra.atomic import WriteError, atomic_write, remove_stale_temps


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


def test_write_failures_are_one_line_and_keep_the_old_file(tmp_path):
    """Issue 19, M6/M7: every write failure was a traceback (a full disk even as torch's
    'enforce fail at inline_container.cc ... unexpected pos'). Now one WriteError line
    naming the file and what happened to it; the earlier version stays."""
    import errno

    from track1.infra.atomic import WriteError, atomic_write
    target = tmp_path / "last.pth"
    target.write_text("old")

    def full_disk(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    def torch_full_disk(f):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0")
    for write in (full_disk, torch_full_disk):
        with pytest.raises(WriteError, match=r"cannot write .*last.pth: the disk is full; its "
                                             r"previous version is intact"):
            atomic_write(target, write)
        assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(WriteError, match="cannot write .*nothing there was changed"):
        atomic_write(blocker / "x.json", lambda f: f.write(b"{}"))
    with pytest.raises(WriteError, match="name too long"):
        atomic_write(tmp_path / ("n" * 300), lambda f: f.write(b"{}"))
    with pytest.raises(ValueError, match="not a write failure"):   # other errors pass through
        atomic_write(tmp_path / "y", lambda f: (_ for _ in ()).throw(ValueError("not a write failure")))


def test_a_file_in_place_of_the_checkpoint_folder_is_one_line(tmp_path, capsys):
    from track1.cli import main
    blocker = tmp_path / "ck"
    blocker.write_text("not a folder")
    assert main(["train", "--ckpt-dir", str(blocker), "--max-steps-per-epoch", "1",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(blocker) in err[0], err


def test_an_exclusive_write_never_replaces_a_file_that_appeared(tmp_path):
    """Issue 19, L4: two exports to one new --out both 'succeeded' without --force, the
    second replacing the first. An exclusive write puts its file in place only if no file
    is there at that moment."""
    from track1.infra.atomic import WriteError
    target = tmp_path / "sub.pth"

    def another_writer_lands_first(f):
        f.write(b"mine")
        target.write_bytes(b"theirs")
    with pytest.raises(WriteError, match="appeared while it was being written"):
        atomic_write(target, another_writer_lands_first, exclusive=True)
    assert target.read_bytes() == b"theirs" and len(list(tmp_path.iterdir())) == 1
    atomic_write(tmp_path / "new.pth", lambda f: f.write(b"x"), exclusive=True)
    assert (tmp_path / "new.pth").read_bytes() == b"x"


def test_ctrl_c_inside_torch_save_is_an_interruption_not_a_full_disk(tmp_path):
    """L2: a KeyboardInterrupt inside torch.save surfaces as the zip writer's RuntimeError
    ("unexpected pos", which reads like a full disk); the write re-raises the interrupt
    (the CLI's "interrupted", exit 130), keeps the old file and leaves no temporary."""
    path = tmp_path / "ckpt.pth"
    path.write_bytes(b"old")

    def interrupted(f):
        f.write(b"partial")
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pth"]

    def full(f):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0")
    with pytest.raises(WriteError, match="the disk is full"):   # a real full disk still is
        atomic_write(path, full)

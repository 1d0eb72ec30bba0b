"""An exclusive lock on a folder a command appends to (``flock`` on ``<folder>/.lock``).

Why: two commands writing the same folder at once (two trainings on one ``--name``, two
searches in one ``--out``) both "succeed" while one's results overwrite or double the
other's. With the lock the second one stops at once with one line naming the holder.
The lock is released by ``release()``, on leaving a ``with`` block, or when the process
ends (the kernel drops a dead process's ``flock``: no stale lock survives a kill).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


class FolderLock:
    """Hold ``<folder>/.lock`` exclusively, or raise ``error(message)`` naming the holder
    (``what``: the command that locks, ``hint``: the way out)."""

    def __init__(self, folder: str | os.PathLike, what: str, hint: str,
                 error: Callable[[str], Exception]) -> None:
        import fcntl
        self.path = Path(folder) / ".lock"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a+")
        except OSError as e:  # a file in the folder's place, a read-only parent, ...
            raise error(f"cannot use {self.path.parent} for this {what}: "
                        f"{(e.strerror or str(e)).lower()}") from None
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.seek(0)
            holder = self._f.read().strip() or "another process"
            self._f.close()
            raise error(f"{self.path.parent} is in use by another {what} ({holder}); "
                        f"wait for it or {hint}") from None
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"pid {os.getpid()}")
        self._f.flush()

    def release(self) -> None:
        if not self._f.closed:
            self._f.close()  # closing the descriptor releases the flock

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""Atomic file writes: a crash never leaves a truncated file under the real name.

The content goes to a temporary file in the target's folder, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX within one filesystem).
The temporary file's name carries the writer's process id, so a later write of the same
target removes the leftovers of writers that were killed (``remove_stale_temps``), and
the file gets the permissions the user's umask gives new files (not mkstemp's 0600).
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

from track1.infra.errors import UserError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete ``path``'s temporary files left by writers that no longer run (a SIGKILL
    during a save left a 109 MB ``.last.pth.*.tmp`` for ever); returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        parts = tmp.name[len(path.name) + 2:].split(".")
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        if pid is None or pid == os.getpid() or _alive(pid):
            continue  # not ours to judge, or its writer is still at work
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


class WriteError(UserError, OSError):
    """A file could not be written (read-only folder, full disk, a name too long, a folder
    in the way): one line naming the file, saying that what was there is intact."""


def _why(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC or "unexpected pos" in text \
            or "failed writing" in text:   # torch.save on a full disk
        return "the disk is full"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return text.splitlines()[0] if text else type(e).__name__


def _interruption(e: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or SystemExit in ``e``'s chain of causes, if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = True,
                 exclusive: bool = False) -> Path:
    """Call ``write(f)`` on a temporary file, then atomically rename it to ``path``. A write
    that fails for the file system's reasons is one ``WriteError`` line: the file at
    ``path``, if any, is untouched (the temporary file is removed), so a rerun after the
    cause is fixed resumes from it. ``exclusive``: the file is put in place only if none
    is there at that moment (a hard link, which fails on an existing name), so of two
    writers of one new file the second is refused instead of replacing the first's."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {_why(e)}; nothing there was changed") from None
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise WriteError(f"{path} appeared while it was being written (another "
                                 "writer?): left as it is") from None
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        stop = _interruption(e)
        if stop is not None and stop is not e:
            # Ctrl-C (or a SIGTERM's SystemExit) inside torch.save surfaces as the writer's
            # RuntimeError ("unexpected pos": it reads like a full disk): say what happened
            raise stop from None
        if isinstance(e, WriteError):
            raise
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and _why(e) == "the disk is full"):
            raise WriteError(f"cannot write {path}: {_why(e)}; "
                             f"{'its previous version is intact' if path.exists() else 'nothing was written'}"
                             "; rerun once that is fixed: the work resumes") from None
        raise
    return path


def write_json_atomic(obj: object, path: str | os.PathLike, indent: int | None = None) -> Path:
    """``json.dump`` to a temporary file in the same folder, fsync, then rename."""
    def write(f) -> None:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    return atomic_write(path, write, binary=False)

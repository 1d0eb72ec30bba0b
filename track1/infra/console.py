"""Standard output that survives a reader going away: ``track1 info ... | head`` ended in
a BrokenPipeError traceback, and ``track1 train ... | head -2`` killed training on its
third log line, before any checkpoint. Once the pipe is closed, output is dropped and
the work goes on."""
from __future__ import annotations

import os
import sys
from typing import TextIO


class PipeSafeStream:
    """A text stream wrapper whose writes stop (silently) when the reader has gone."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.closed_by_reader = False

    def _gone(self) -> None:
        self.closed_by_reader = True
        try:  # the fd may still hold unflushed bytes: point it at /dev/null for good
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        if self.closed_by_reader:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self) -> None:
        if self.closed_by_reader:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._gone()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def protect_stdout() -> None:
    """Make ``sys.stdout`` pipe-safe for the rest of the process (idempotent)."""
    if not isinstance(sys.stdout, PipeSafeStream):
        sys.stdout = PipeSafeStream(sys.stdout)

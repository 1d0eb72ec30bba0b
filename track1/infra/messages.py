"""Error-message helpers: user input quoted in a message is cut to a readable length
(a 100,000-character arch code used to be echoed whole to stderr)."""
from __future__ import annotations

from typing import Any


def clip(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut in the middle to at most about ``limit`` characters with the
    number of characters left out, e.g. ``'1111...(99,920 more)...1111'``."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = max(8, (limit - 20) // 2)
    return f"{text[:keep]}...({len(text) - 2 * keep:,} more)...{text[-keep:]}"


def first_lines(error: BaseException, lines: int = 2, limit: int = 200) -> str:
    """The first ``lines`` lines of an exception's message joined on one line, cut to
    ``limit`` characters (``load_state_dict`` lists every mismatched tensor)."""
    return " ".join(str(error).strip().splitlines()[:lines])[:limit]

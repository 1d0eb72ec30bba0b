"""Arch lists in the challenge's JSON format: ``{"archN": {"arch": "<code>", "acc": ...}}``.

The format is the competition's, the codes belong to a search space: ``load_arch_list``
reads any such file (gzip or plain) and, given a space's ``decode``, validates every code,
naming the first bad entry's key and the rule it breaks.
"""
from __future__ import annotations

import gzip
import zlib
import json
import os
from pathlib import Path
from typing import Callable

from track1.infra.errors import UserError


class ArchListError(UserError, ValueError):
    """A list file that is missing, unreadable, or has a malformed entry (key named)."""


class DuplicateKeyError(ValueError):
    """A JSON object with the same key twice (``json`` would keep the last silently)."""


def refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook`` for ``json.load``: a dict, or ``DuplicateKeyError`` naming
    the first repeated key and its position among the object's members."""
    out: dict = {}
    for i, (key, value) in enumerate(pairs):
        if key in out:
            raise DuplicateKeyError(f"key {key!r} appears twice (member #{i + 1} repeats it)")
        out[key] = value
    return out


def read_list_json(path: str | os.PathLike) -> dict:
    """The raw ``{"archN": {"acc": ..., "arch": ...}}`` mapping (gzip or plain JSON)."""
    path = Path(path)
    if not path.is_file():
        raise ArchListError(f"arch list not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKeyError as e:
        raise ArchListError(f"arch list {path}: {e}") from None
    except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError,
            RecursionError) as e:  # a truncated or corrupt .gz raises EOFError / zlib.error
        raise ArchListError(f"cannot read arch list {path}: {str(e)[:200]}") from None
    if not isinstance(data, dict) or not data:
        raise ArchListError(f"arch list {path} must be a non-empty JSON object of "
                            '{"archN": {"acc": ..., "arch": "<code>"}}')
    return data


def load_arch_list(path: str | os.PathLike, decode: Callable[[str], object] | None = None
                   ) -> dict[str, str]:
    """``{key: arch code}`` in file order; with ``decode`` (a space's), every code is
    decoded and the first bad entry raises ``ArchListError`` naming its key and the rule."""
    data = read_list_json(path)
    out: dict[str, str] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("arch"), str):
            raise ArchListError(f"entry {key!r}: expected an object with a string 'arch'")
        code = entry["arch"]
        if decode is not None:
            try:
                decode(code)
            except ValueError as e:
                raise ArchListError(f"entry {key!r}: {e}") from None
        out[key] = code
    return out

"""The official Track 1 list of 45,000 subnets, shipped gzipped inside the package.

``load_arch_list()`` returns ``{key: code}`` in file order and validates every entry;
the same call reads any list of the same format (``--archs`` files of the CLI).
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from track1.space.resnet48 import ArchCodeError, decode

ASSETS = Path(__file__).resolve().parent / "assets"
OFFICIAL_LIST = ASSETS / "CVPR_2022_NAS_Track1_test.json.gz"
OFFICIAL_SIZE = 45_000
SUBMISSION_NAME = "CVPR_2022_NAS_Track1_test.json"


class ArchListError(ValueError):
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


def read_list_json(path: str | os.PathLike | None = None) -> dict:
    """The raw ``{"archN": {"acc": ..., "arch": ...}}`` mapping (gzip or plain JSON)."""
    path = Path(path) if path is not None else OFFICIAL_LIST
    if not path.is_file():
        raise ArchListError(f"arch list not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKeyError as e:
        raise ArchListError(f"arch list {path}: {e}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ArchListError(f"cannot read arch list {path}: {str(e)[:200]}") from None
    if not isinstance(data, dict) or not data:
        raise ArchListError(f"arch list {path} must be a non-empty JSON object of "
                            '{"archN": {"acc": ..., "arch": "<52 digits>"}}')
    return data


def load_arch_list(path: str | os.PathLike | None = None, validate: bool = True,
                   tied: bool = True) -> dict[str, str]:
    """``{key: arch code}`` in file order; by default the official list.

    With ``validate`` every code is decoded, and the first bad entry raises
    ``ArchListError`` naming its key and the rule it breaks.
    """
    data = read_list_json(path)
    out: dict[str, str] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("arch"), str):
            raise ArchListError(f"entry {key!r}: expected an object with a string 'arch'")
        code = entry["arch"]
        if validate:
            try:
                decode(code, tied=tied)
            except ArchCodeError as e:
                raise ArchListError(f"entry {key!r}: {e}") from None
        out[key] = code
    return out

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


def read_list_json(path: str | os.PathLike | None = None) -> dict:
    """The raw ``{"archN": {"acc": ..., "arch": ...}}`` mapping (gzip or plain JSON)."""
    path = Path(path) if path is not None else OFFICIAL_LIST
    if not path.is_file():
        raise ArchListError(f"arch list not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArchListError(f"cannot read arch list {path}: {e}") from None
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

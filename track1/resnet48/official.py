"""The official Track 1 list of 45,000 subnets, shipped gzipped inside the package.

``load_arch_list()`` returns ``{key: code}`` in file order and validates every entry as a
(tied) Track 1 code; the same call reads any list of the same format (``--archs`` files).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from track1.data.arch_list import load_arch_list as load_list
from track1.resnet48.arch import decode

ASSETS = Path(__file__).resolve().parent.parent / "assets"
OFFICIAL_LIST = ASSETS / "CVPR_2022_NAS_Track1_test.json.gz"
OFFICIAL_SIZE = 45_000
SUBMISSION_NAME = "CVPR_2022_NAS_Track1_test.json"


def load_arch_list(path: str | os.PathLike | None = None, validate: bool = True,
                   tied: bool = True) -> dict[str, str]:
    """``{key: arch code}`` in file order; by default the official list.

    With ``validate`` every code is decoded, and the first bad entry raises
    ``ArchListError`` naming its key and the rule it breaks.
    """
    return load_list(OFFICIAL_LIST if path is None else path,
                     functools.partial(decode, tied=tied) if validate else None)

"""Validate a submission JSON (the challenge's format) against the list it answers.

Rules (docs/REFERENCE.md §1): the same keys in the same order as the list (arch1..arch45000
for the official one), each entry's ``arch`` string identical to the list's, and
every ``acc`` a finite number in [0, 1]. ``first_problem`` returns the first broken
rule as one line, or None when the file is valid.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from track1.data.arch_list import DuplicateKeyError, read_list_json, refuse_duplicate_keys


def first_problem(path: str | os.PathLike, archs: str | os.PathLike) -> str | None:
    """One line naming the first problem of submission ``path`` against the list file
    ``archs``, or None when valid."""
    path = Path(path)
    if not path.is_file():
        return f"{path}: file not found"
    try:
        with open(path, encoding="utf-8") as f:
            sub = json.load(f, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKeyError as e:
        return f"{path}: {e}"
    except RecursionError:
        return f"{path}: nested too deeply to be a submission"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return f"{path}: not valid JSON ({e})"
    if not isinstance(sub, dict):
        return f"{path}: top level must be a JSON object of {{key: {{acc, arch}}}}"
    reference = read_list_json(archs)
    ref_keys, sub_keys = list(reference), list(sub)
    for i, (want, got) in enumerate(zip(ref_keys, sub_keys)):
        if want != got:
            return f"entry #{i + 1}: key {got!r} where the list has {want!r} (keys must follow the list's order)"
    if len(sub_keys) < len(ref_keys):
        return f"missing entries: {len(sub_keys)} of {len(ref_keys)} present; first missing key {ref_keys[len(sub_keys)]!r}"
    if len(sub_keys) > len(ref_keys):
        return f"extra entries: {len(sub_keys)} where the list has {len(ref_keys)}; first extra key {sub_keys[len(ref_keys)]!r}"
    for key in ref_keys:
        entry = sub[key]
        if not isinstance(entry, dict):
            return f"entry {key!r}: expected an object with 'acc' and 'arch'"
        if entry.get("arch") != reference[key].get("arch"):
            return f"entry {key!r}: arch {entry.get('arch')!r} differs from the list's {reference[key].get('arch')!r}"
        if "acc" not in entry:
            return f"entry {key!r}: no 'acc'"
        acc = entry["acc"]
        if isinstance(acc, bool) or not isinstance(acc, (int, float)):
            return f"entry {key!r}: acc {acc!r} is not a number"
        if not math.isfinite(acc):
            return f"entry {key!r}: acc {acc!r} is not finite"
        if not 0.0 <= acc <= 1.0:
            return f"entry {key!r}: acc {acc!r} is outside [0, 1] (a fraction, not a percentage)"
    return None

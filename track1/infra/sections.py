"""Typed config sections: dataclasses built from YAML-like mappings, and back.

A section is a dataclass; a field whose type is another dataclass (or ``Optional`` of
one) is a nested section. ``build_section`` refuses an unknown key at any depth with its
full dotted path and the keys that section knows, so a typo such as
``sampler.thresold`` stops a run before it starts instead of training without a word.
A field may carry ``metadata={"key": "lambda"}`` when its config key is not a valid
Python name. ``section_to_dict`` gives the plain nested mapping back (what is saved
beside a checkpoint and compared on resume).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, Mapping, Sequence, TypeVar

from track1.infra.messages import clip

T = TypeVar("T")


class SectionError(ValueError):
    """A key or value a section refuses; the message names its full path."""


def config_key(f: dataclasses.Field) -> str:
    """The key of field ``f`` in the mapping (its name unless metadata renames it)."""
    return f.metadata.get("key", f.name)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


@functools.lru_cache(maxsize=None)
def _nested_sections(cls: type) -> dict[str, tuple[type, bool]]:
    """``{field name: (section class, optional)}`` of the fields that are sections."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) \
            else (hint,)
        sections = [a for a in args if dataclasses.is_dataclass(a)]
        if sections:
            out[f.name] = (sections[0], type(None) in args)
    return out


def build_section(cls: type[T], data: Mapping[str, Any] | None, where: str = "") -> T:
    """An instance of dataclass ``cls`` from ``data`` (missing keys take the defaults).

    Raises ``SectionError`` naming the first unknown key by its full path (``where`` is
    the path of ``data`` itself) with the keys the section knows, a section given as
    something other than a mapping, or a value the section's own checks refuse."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SectionError(f"config {where!r} must be a mapping, got {clip(data)}")
    by_key = {config_key(f): f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in by_key]
    if unknown:
        raise SectionError(f"unknown config key {join(where, str(unknown[0]))!r}; known keys of "
                           f"{where or 'the config'!r}: {sorted(by_key)}")
    nested = _nested_sections(cls)
    kwargs = {}
    for key, value in data.items():
        f = by_key[key]
        if f.name in nested:
            section, optional = nested[f.name]
            if not (value is None and optional):
                value = build_section(section, value, join(where, key))
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, SectionError):
            raise
        raise SectionError(f"config {where or 'the config'!r}: {e}") from None


def section_to_dict(obj: Any) -> Any:
    """The plain nested mapping of a section (lists and mappings copied)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {config_key(f): section_to_dict(getattr(obj, f.name))
                for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: section_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [section_to_dict(v) for v in obj]
    return obj


def flatten(mapping: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The leaves of a nested mapping by dotted key (``{"optim": {"lr": 1}}`` ->
    ``{"optim.lr": 1}``); an empty mapping is a leaf of its own."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        path = join(where, str(key))
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def within(key: str, prefixes: Sequence[str]) -> bool:
    """Dotted ``key`` is one of ``prefixes`` or lies inside one (``optim.lr`` in ``optim``)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def differing(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every leaf where two nested mappings
    differ (a leaf missing on one side reads None there), in key order."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb))
            if fa.get(k) != fb.get(k)]


def check_number(value: Any, where: str, *, low: float | None = None, low_open: bool = False,
                 integer: bool = False, high: float | None = None) -> None:
    """``value`` is a finite number (an integer when ``integer``) above ``low`` (strictly
    when ``low_open``) and at most ``high``, else one ``SectionError`` naming the key."""
    kind = "integer" if integer else "number"
    bound = "" if low is None else f" {'>' if low_open else '>='} {low}"
    bound += "" if high is None else f"{' and' if bound else ''} <= {high}"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and (not integer or int(value) == value) and \
        (low is None or (value > low if low_open else value >= low)) and \
        (high is None or value <= high)
    if not ok:
        raise SectionError(f"config {where!r} must be a finite {kind}{bound}, got {value!r}")


def check_choice(value: Any, where: str, allowed: Sequence[Any]) -> None:
    """``value`` is one of ``allowed``, else one ``SectionError`` naming the key."""
    if value not in allowed:
        choices = " or ".join(repr(a) for a in allowed) if len(allowed) <= 3 else \
            f"one of {list(allowed)}"
        raise SectionError(f"config {where!r} must be {choices}, got {value!r}")


def check_flag(value: Any, where: str) -> None:
    """``value`` is a boolean (YAML true/false), else one ``SectionError`` naming the key:
    the string 'false' is true in Python, so a quoted flag would silently mean the opposite."""
    if not isinstance(value, bool):
        raise SectionError(f"config {where!r} must be true or false, got {value!r}")

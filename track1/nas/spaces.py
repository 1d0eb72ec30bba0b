"""The table of search spaces, in timm's ``register_model`` manner: a wing registers its
space by decorating its supernet class, and the pipelines reach every space by name
through ``track1.registry``, which imports the wings. This module knows no wing.

    @register_space("nb201", space=NB201Space, static=NB201Network,
                    about="NAS-Bench-201 cells, 6 edges x 5 ops")
    class NB201Supernet(nn.Module): ...

What a space provides (docs/ADDING_A_SPACE.md walks through it): ``space()`` builds its
``SearchSpace`` (codes, sampling, distance, costs); the supernet class takes its
``model:`` options as keyword arguments and follows ``SupernetProtocol``; ``static(arch,
**options)`` builds one arch as plain layers (what ``export`` writes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class SpaceEntry:
    """One registered search space."""

    name: str
    supernet: Callable[..., Any]          # model options -> supernet (the class)
    space: Callable[[], Any]              # -> the SearchSpace that decodes its codes
    static: Callable[..., Any] | None     # (arch, **options) -> one arch as plain layers
    about: str = ""


_SPACES: dict[str, SpaceEntry] = {}


def register_space(name: str, *, space: Callable[[], Any], static: Callable[..., Any] | None = None,
                   about: str = "") -> Callable[[type], type]:
    """Class decorator: register the decorated supernet class as space ``name``. A name
    registered twice by different classes is an error (a second import of the same class
    is not)."""
    def decorate(cls: type) -> type:
        entry = SpaceEntry(name, cls, space, static, about)
        old = _SPACES.get(name)
        if old is not None and (old.supernet.__module__, old.supernet.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise ValueError(f"search space {name!r} is registered already "
                             f"({old.supernet.__module__}.{old.supernet.__qualname__})")
        _SPACES[name] = entry
        return cls
    return decorate


def unregister_space(name: str) -> None:
    """Remove ``name`` (tests register toy spaces and take them out again)."""
    _SPACES.pop(name, None)


def registered() -> dict[str, SpaceEntry]:
    """The spaces registered so far, by name (a copy)."""
    return dict(_SPACES)

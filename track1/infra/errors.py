"""The one base of every "your input is wrong" error.

The CLI catches ``UserError`` (and ``FileNotFoundError``), prints the message as one line
and exits with status 2; anything else is a bug and keeps its traceback. Each subclass
also derives from the built-in error its callers have always caught (``ValueError`` for a
bad value, ``RuntimeError`` for a bad file), so library users lose nothing.
"""
from __future__ import annotations


class UserError(Exception):
    """A bad input, named with its position and the rule it breaks."""

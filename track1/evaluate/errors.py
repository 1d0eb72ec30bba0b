"""Errors of the evaluation pipeline that mean "the user's setup is wrong" (exit 2)."""
from __future__ import annotations

from track1.infra.errors import UserError


class EvaluateError(UserError, ValueError):
    """An inconsistent evaluation setup, e.g. a results folder made by another setup."""

"""Errors of the evaluation pipeline that mean "the user's setup is wrong" (exit 2)."""
from __future__ import annotations


class EvaluateError(ValueError):
    """An inconsistent evaluation setup, e.g. a results folder made by another setup."""

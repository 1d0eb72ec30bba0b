"""The bench's one error type."""
from __future__ import annotations

from track1.infra.errors import UserError


class BenchError(UserError, ValueError):
    """Bad bench input (unknown method, missing data, ...): one line, exit 2."""

"""The training side's user-facing error: printed as one line by the CLI (exit 2)."""
from __future__ import annotations

from track1.infra.errors import UserError


class TrainError(UserError, ValueError):
    """Bad training input: config, data, checkpoint compatibility, init file."""

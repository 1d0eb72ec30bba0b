"""The training side's user-facing error: printed as one line by the CLI (exit 2)."""


class TrainError(ValueError):
    """Bad training input: config, data, checkpoint compatibility, init file."""

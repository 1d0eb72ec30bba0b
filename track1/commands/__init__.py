"""One module per CLI subcommand; each defines ``register(subparsers)`` (see track1.cli)."""

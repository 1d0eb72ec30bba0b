"""Command-line entry point.

Every module in ``track1.commands`` that defines ``register(subparsers)`` adds one
subcommand (``info``, ``train``, ``evaluate``, ...); ``register`` must call
``parser.set_defaults(func=run)`` where ``run(args) -> int`` returns the exit status.
Expected failures (bad arch code, missing data, bad checkpoint) raise a subclass of
``track1.infra.errors.UserError``; they are printed as one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import track1
import track1.commands
from track1.infra.console import protect_stdout
from track1.infra.errors import UserError

#: exceptions that mean "the user's input is wrong": one line, exit 2, no traceback
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="track1",
        description="One-shot NAS with ranking distillation for the CVPR 2022 Track 1 space.")
    parser.add_argument("--version", action="version", version=f"track1 {track1.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(track1.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"track1.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    protect_stdout()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

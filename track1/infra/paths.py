"""Where the project reads and writes by default: the one module that decides it.

Every default output folder hangs off the project home: ``$TRACK1_HOME`` when set
(``run.sh`` sets it to the repository, so ``bash run.sh ...`` writes under the clone
from any folder), else the working directory. Nothing is placed relative to the
package's own files, so an installed package never writes beside site-packages. The full
CIFAR-10 is ``$TRACK1_CIFAR10``, else ``shared/data/cifar10/cifar10-jpeg.tar.gz`` in a
``shared`` folder beside the home (how this project's machines lay it out: the clone and
``shared/`` side by side). Read at call time, so a changed environment takes effect.
Imports nothing heavy: the CLI's help names these paths.
"""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``$TRACK1_HOME``, else the working directory."""
    return Path(os.environ.get("TRACK1_HOME") or os.getcwd())


def ckpt_dir() -> Path:
    """Supernet checkpoints: ``<home>/supernet_ckpt``."""
    return home() / "supernet_ckpt"


def submission_dir() -> Path:
    """The challenge JSON: ``<home>/submission``."""
    return home() / "submission"


def runs_dir(*parts: str) -> Path:
    """Results of the other commands: ``<home>/runs/<parts>``."""
    return home().joinpath("runs", *parts)


def cifar10_tar() -> Path:
    """The full CIFAR-10 as a JPEG tarball (the NAS-Bench-201 bench and the tools that
    need more than the embedded subset)."""
    if os.environ.get("TRACK1_CIFAR10"):
        return Path(os.environ["TRACK1_CIFAR10"])
    return home().resolve().parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.tar.gz"

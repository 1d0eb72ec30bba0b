"""Where data lives by default, in a module that imports nothing heavy (the CLI's help
names these paths)."""
from __future__ import annotations

import os
from pathlib import Path

#: the full CIFAR-10 as a JPEG tarball, for the NAS-Bench-201 bench and the tools that need
#: more than the embedded subset: ``$TRACK1_CIFAR10``, else ``data/cifar10/cifar10-jpeg.tar.gz``
#: in a ``shared`` folder beside the repository (how this project's machines lay it out)
CIFAR10_TAR = Path(os.environ.get("TRACK1_CIFAR10") or
                   Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar10" /
                   "cifar10-jpeg.tar.gz")

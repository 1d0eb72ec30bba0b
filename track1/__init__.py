"""track1: one-shot NAS with ranking distillation for the CVPR 2022 Track 1 space.

Importing the package is cheap (no torch). It does two things that must happen before
torch loads, so programs import ``track1`` first:

- it sets ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already sets a policy: on a
  shared or small CPU, OpenMP threads that spin-wait for each other slowed training up to
  10x (10.7 s vs 0.69 s per step measured on the 2-core machine), and OpenMP reads the
  policy once, when torch loads it;
- it installs an import hook that, the first time torchvision is imported (directly or
  through timm), applies a compatibility step so that torchvision and timm import on a
  CPU-only torch (see ``track1._compat``).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from track1._compat import install_torchvision_hook  # noqa: E402

install_torchvision_hook()

__version__ = "0.1.0"

"""track1: one-shot NAS with ranking distillation for the CVPR 2022 Track 1 space.

Importing the package is cheap (no torch): it installs an import hook that, the first
time torchvision is imported (directly or through timm), applies a compatibility step so
that torchvision and timm import on a CPU-only torch (see ``track1._compat``).
"""
from track1._compat import install_torchvision_hook

install_torchvision_hook()

__version__ = "0.1.0"

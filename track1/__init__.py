"""track1: one-shot NAS with ranking distillation for the CVPR 2022 Track 1 space.

Importing the package applies a no-op-where-unneeded compatibility step so that
torchvision and timm import on a CPU-only torch (see ``track1._compat``).
"""
from track1._compat import ensure_torchvision_importable

ensure_torchvision_importable()

__version__ = "0.1.0"

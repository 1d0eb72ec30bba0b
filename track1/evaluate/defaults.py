"""The evaluate pipeline's defaults, in a module that imports nothing.

Why a module of their own: ``python -m track1 evaluate --help`` shows them, and the CLI
must answer ``--help`` without loading torch (over a second). The pipeline modules
(``track1.evaluate.bn``, ``track1.evaluate.runner``) take their values from here.
"""
from __future__ import annotations

#: BN statistics per subnet: re-estimated on calibration images, batch statistics, or
#: the supernet's stored ones (``track1.evaluate.bn`` explains each)
BN_MODES: tuple[str, ...] = ("recalibrate", "batch", "stored")
#: the one place the default lives; the NAS-Bench-201 ranking bench decides the final value
DEFAULT_BN_MODE = "recalibrate"
#: on CPU without --limit, score this many entries and project the full run
DEFAULT_CPU_LIMIT = 20
#: training images for BN recalibration (the same tensors for every subnet)
DEFAULT_CALIB_IMAGES = 2048
#: at most this many evaluation images (a fixed seeded subset of val/)
DEFAULT_EVAL_IMAGES = 10_000

"""The evaluate pipeline's defaults, in a module that imports nothing.

Why a module of their own: ``python -m track1 evaluate --help`` shows them, and the CLI
must answer ``--help`` without loading torch (over a second). The pipeline
(``track1.evaluate.runner``) takes its values from here; the BN modes are the scoring
core's (``track1.scoring.modes``).
"""
from __future__ import annotations

#: on CPU without --limit, score this many entries and project the full run
DEFAULT_CPU_LIMIT = 20
#: training images for BN recalibration (the same tensors for every subnet)
DEFAULT_CALIB_IMAGES = 2048
#: at most this many evaluation images (a fixed seeded subset of val/)
DEFAULT_EVAL_IMAGES = 10_000

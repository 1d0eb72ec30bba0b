"""The options of ``track1 evaluate``: the scoring options every scoring command takes,
and evaluation's own. Torch-free: the CLI's help reads the defaults."""
from __future__ import annotations

from dataclasses import dataclass

from track1.evaluate.defaults import DEFAULT_CALIB_IMAGES
from track1.scoring.options import ScoringOptions


@dataclass
class EvalOptions(ScoringOptions):
    """``ScoringOptions`` and what only evaluation takes."""

    eval_images: int | None = None        # None: all of val/, at most DEFAULT_EVAL_IMAGES
    calib_images: int = DEFAULT_CALIB_IMAGES
    archs: str | None = None
    limit: int | None = None
    out: str | None = None
    results_dir: str | None = None
    amp: bool | None = None
    threads: int | None = None
    prefix_sharing: bool = True
    prefix_cache_bytes: int | None = None  # None: 8 GB on CPU, half the free GPU memory

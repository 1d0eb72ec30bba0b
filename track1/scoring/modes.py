"""The scorer's modes and version, in a module that imports nothing (the CLI's help text
reads them without loading torch)."""
from __future__ import annotations

#: BN statistics per subnet: re-estimated on calibration images, batch statistics, or
#: the supernet's stored ones (``track1.scoring.bn`` explains each)
BN_MODES: tuple[str, ...] = ("recalibrate", "batch", "stored")
#: the one place the default lives; the NAS-Bench-201 ranking bench decides the final value
DEFAULT_BN_MODE = "recalibrate"
#: what the scorer computes, in results folders' and caches' keys: 2 = whole-set BN
#: statistics whatever the chunking, images in a seeded random order (1: sorted images,
#: chunk-averaged statistics; its results are not mixed with these)
SCORER_VERSION = 2

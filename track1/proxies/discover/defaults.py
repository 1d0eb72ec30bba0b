"""The discovery's defaults that the command line shows, in a module free of numpy and
torch so ``discover-proxy --help`` answers without them (``tests/test_package.py``)."""
from __future__ import annotations

#: the least search fitness a blend's term beyond the pair must add to be kept
MIN_GAIN = 0.002
#: programs in a blend at most, by default (measured: docs/results/NOTES.md, "Blends of
#: more than two programs")
BLEND_TERMS = 4

"""The options every scoring command shares (evaluate, search): which checkpoint, which
images, which BN mode, what batches, which device. Torch-free: the CLI's help reads the
defaults. Each command's options extend these (``EvalOptions``, ``SearchOptions``)."""
from __future__ import annotations

from dataclasses import dataclass

from track1.scoring.modes import DEFAULT_BN_MODE


@dataclass
class ScoringOptions:
    checkpoint: str | None = None        # None: the latest checkpoint under supernet_ckpt/
    data: str | None = None              # None: the embedded CIFAR-10 demo set
    eval_images: int | None = 1000       # held-out images per subnet (fewer where val/ has fewer)
    calib_images: int = 512              # training images for BN re-calibration
    bn_mode: str = DEFAULT_BN_MODE
    batch_size: int | None = None        # None: by device and image size
    calib_batch_size: int | None = None  # None: track1.scoring.engine.default_calib_chunk
    device: str = "auto"
    fresh: bool = False                  # discard the results folder's earlier records
    progress: bool = True
    cache_dir: str | None = None         # decoded images (None: $TRACK1_CACHE_DIR or ~/.cache)
    fuse: str | None = None              # "flops:0.3,zen:0.1": the supernet fused with proxies
    fuse_cache: str | None = None        # JSONL of precomputed proxy scores (proxy-cache)

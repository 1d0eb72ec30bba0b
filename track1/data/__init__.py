"""Data layer: image sources, decode-once tensors, and deterministic training batches.

    from track1.data import resolve_source, decode_to_tensor, normalize, TrainBatches
    val = resolve_source(None, "val")               # embedded CIFAR-10 demo subset
    images_u8, labels = decode_to_tensor(val, 32)   # decoded once, cached on disk
    batches = TrainBatches(resolve_source(None, "train"), 32, 64, augment="crop_flip")
"""
from track1.data.batches import AUGMENTS, TrainBatches, mix_seed
from track1.data.decode import (EVAL_CROP_RATIO, IMAGENET_MEAN, IMAGENET_STD, decode_to_tensor,
                                default_cache_dir, normalize, preprocess, probe_batch)
from track1.data.sources import (EMBEDDED, BytesSource, DataError, FolderSource, ImageSource,
                                 embedded_source, resolve_source)

__all__ = ["AUGMENTS", "BytesSource", "DataError", "EMBEDDED", "EVAL_CROP_RATIO", "FolderSource",
           "IMAGENET_MEAN", "IMAGENET_STD", "ImageSource", "TrainBatches", "decode_to_tensor",
           "default_cache_dir", "embedded_source", "mix_seed", "normalize", "preprocess",
           "probe_batch", "resolve_source"]

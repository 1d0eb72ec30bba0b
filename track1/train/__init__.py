"""Supernet training: config resolution, the training loop, torchrun helpers and the
Paddle ``.pdparams`` importer. ``train(config)`` runs one resolved config.

Kept import-light (the CLI imports ``TrainError`` from here at start-up).
"""
from track1.train.errors import TrainError

__all__ = ["TrainError"]

"""Supernet training: the typed run config (``config``), the ``Trainer`` (``loop``), the
ground-truth check of ``--val-gt`` (``rank_check``), the external teacher (``kd_teacher``)
and the few-shot merge (``fewshot``). ``loop.train(config)`` runs one resolved config.

Kept import-light (the CLI imports ``TrainError`` from here at start-up).
"""
from track1.train.errors import TrainError

__all__ = ["TrainError"]

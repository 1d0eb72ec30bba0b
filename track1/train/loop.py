"""``train(config)``: build a run's parts, train it to the end (or to a step), return
its ``last.pth`` (``track1.train.trainer.Trainer`` holds the loop)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from track1.train.config import TrainConfig
from track1.train.trainer import Trainer


def train(config: TrainConfig, *, batches: Iterable | None = None,
          log: Callable[[str], None] | None = None, stop_after_steps: int | None = None) -> Path:
    """Train the supernet of ``config`` (resolved, see ``track1.train.config``); returns
    the path of ``last.pth``. ``batches`` injects a data object with the
    ``TrainBatches`` interface; ``stop_after_steps`` ends the run early after that many
    global steps, after saving (it simulates a crash in tests)."""
    return Trainer(config, batches=batches, log=log).fit(stop_after_steps)

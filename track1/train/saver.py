"""A run's checkpoints behind one call, in timm's ``CheckpointSaver`` manner: ``last.pth``
on every save and ``best.pth`` where the ranking check (``--val-gt``) beats every earlier
one, with ``val_gt.jsonl`` the record of the checks."""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from track1.infra import distributed as D
from track1.infra.checkpoint import save_atomic
from track1.infra.resumable import AppendLog, read_records
from track1.train.config import TrainConfig, save_yaml


class CheckpointSaver:
    """Writes ``last.pth`` atomically (with the resolved ``config.yaml`` beside it) on the
    main rank, then meets the other ranks at a barrier; with a ranking check's record,
    also keeps ``best.pth``."""

    def __init__(self, out_dir: Path, config: TrainConfig, info: D.DistInfo) -> None:
        self.out_dir, self.config, self.info = out_dir, config, info
        self.last = out_dir / "last.pth"
        self.best = out_dir / "best.pth"
        self.checks = out_dir / "val_gt.jsonl"
        #: the check ``best.pth`` holds: ``{"epoch", "step", "kendall"}`` (None before one)
        self.best_check: dict[str, Any] | None = None

    def save_config(self) -> None:
        if self.info.is_main:
            save_yaml(self.config, self.out_dir / "config.yaml")

    def save(self, state: Callable[[], dict[str, Any]], check: dict[str, Any] | None = None
             ) -> bool:
        """Write ``last.pth`` (``state()`` is called on the main rank only: building it
        costs a copy). With ``check`` (a ranking check's record: ``epoch``, ``step``,
        ``kendall``, ...) first judge it: the best when its Kendall is finite and beats
        every earlier check's (a NaN never does; ``best_check`` follows, and ``state()``
        sees it); then ``last.pth``, ``best.pth`` (a copy of it) where this check is the
        best, and only then the record in ``val_gt.jsonl``, so a kill in between repeats
        the check. Returns whether this check is the best."""
        is_best = False
        if self.info.is_main:
            if check is not None:
                is_best = self._judge(check)
            save_atomic(state(), self.last)
            self.save_config()
            if check is not None:
                if is_best:
                    tmp = self.best.with_name(self.best.name + ".tmp")
                    shutil.copyfile(self.last, tmp)
                    os.replace(tmp, self.best)
                kendall = check.get("kendall")
                with AppendLog(self.checks, "epoch") as log:
                    log.append({**check, "kendall": kendall if _finite(kendall) else None,
                                "best": is_best})
        D.barrier(self.info)
        return is_best

    def _judge(self, check: dict[str, Any]) -> bool:
        earlier = [r for r in read_records(self.checks, "epoch")[0]
                   if r["epoch"] != check["epoch"] and _finite(r.get("kendall"))]
        is_best = _finite(check.get("kendall")) and all(check["kendall"] > r["kendall"]
                                                        for r in earlier)
        pool = earlier + ([check] if is_best else [])
        top = max(pool, key=lambda r: r["kendall"]) if pool else None
        self.best_check = {k: top[k] for k in ("epoch", "step", "kendall")} if top else None
        return is_best

    def checked_epochs(self) -> set[int]:
        """The epochs whose ranking check is on record."""
        return {r["epoch"] for r in read_records(self.checks, "epoch")[0]}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

"""Few-shot training inside the bench (Zhao et al., ICML 2021): one-shot for a share of
the budget, then every part of a split from those weights, merged into one checkpoint."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from track1.bench.config import steps_per_epoch_of
from track1.bench.errors import BenchError

if TYPE_CHECKING:
    from track1.train.config import TrainConfig


def train_fewshot(config: TrainConfig, fewshot: dict[str, Any], total: int, batches: Any,
                  log: Callable[[str], None]) -> tuple[dict[str, Any], int]:
    """Few-shot training at the budget of ``total`` steps: the method one-shot for
    ``share`` of them, then every part of the split on ``genes`` from those weights (a
    fresh optimiser, cosine from the one-shot's lr at the split) for an equal share of the
    rest; the parts merged into one few-shot checkpoint (``track1.nas.fewshot``). Every
    stage resumes. Returns the merged checkpoint and the steps trained in this call."""
    from track1.infra.checkpoint import load_checkpoint, save_atomic
    from track1.nas.fewshot import part_key, parts_of
    from track1.registry import build_supernet
    from track1.train.sections import PartConfig
    from track1.train.fewshot import merge_parts
    from track1.train.loop import train
    genes = [int(g) for g in fewshot["genes"]]
    root = Path(config.runtime.ckpt_dir)
    merged_path = root / "fewshot.pth"
    if merged_path.exists():
        return load_checkpoint(merged_path), 0
    parts = parts_of(build_supernet(config.space, config.model).space, genes)
    # the parts share (1 - share) of the steps equally, the one-shot phase takes the rest:
    # exactly the one-shot method's total
    part_steps = max(1, int((1.0 - float(fewshot.get("share", 0.5))) * total) // len(parts))
    split = total - len(parts) * part_steps
    if split < 1:
        raise BenchError(f"a budget of {total} steps is too small for {len(parts)} parts")
    oneshot = root / config.name / "last.pth"
    done = int(load_checkpoint(oneshot)["step"]) if oneshot.exists() else 0
    trained = 0
    if done < split:
        train(config, batches=batches, log=log, stop_after_steps=split)
        trained += split - done
    at_split = load_checkpoint(oneshot)
    if int(at_split["step"]) != split:
        raise BenchError(f"{oneshot} is at step {at_split['step']}, not at the split ({split})")

    steps_per_epoch = len(batches) if batches is not None else steps_per_epoch_of(config)
    # exactly part_steps each (equal total steps with the one-shot method): the fewest
    # epochs of equal length that fit the data's epoch
    epochs = next(e for e in range(math.ceil(part_steps / steps_per_epoch), part_steps + 1)
                  if part_steps % e == 0 and part_steps // e <= steps_per_epoch)
    per_epoch = part_steps // epochs
    # the one-shot schedule's lr at the split, as a base lr per 256 images
    lr = at_split["optimizer"]["param_groups"][0]["lr"] * 256 / config.data.batch_size
    paths = []
    for values in parts:
        part = dataclasses.replace(
            config, name=f"part_{part_key(values)}",
            init=dataclasses.replace(config.init, file=str(oneshot)),
            runtime=dataclasses.replace(config.runtime, resume="auto"),
            part=PartConfig(genes=list(genes), values=list(values)),
            optim=dataclasses.replace(config.optim, lr=lr),
            schedule=dataclasses.replace(config.schedule, epochs=epochs,
                                         max_steps_per_epoch=per_epoch, warmup_epochs=0.0,
                                         min_lr=min(config.schedule.min_lr, lr)))
        paths.append(root / part.name / "last.pth")
        before = int(load_checkpoint(paths[-1])["step"]) if paths[-1].exists() else 0
        if before < epochs * per_epoch:
            train(part, batches=batches, log=log)
            trained += int(load_checkpoint(paths[-1])["step"]) - before
    merged = merge_parts(paths)
    steps = split + merged["step"]
    merged["step"] = steps
    merged["config"]["fewshot"].update(share=split / total, part_steps=epochs * per_epoch)
    save_atomic(merged, merged_path)
    log(f"few-shot: {split} one-shot steps, then {len(parts)} parts x {epochs * per_epoch} "
        f"steps (split on genes {genes}); {steps} steps in all")
    return merged, trained

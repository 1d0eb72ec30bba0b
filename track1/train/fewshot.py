"""Merging the trained parts of a few-shot split into one checkpoint.

Each part is an ordinary training run with config ``part: {genes, values}`` that started
from the one-shot supernet (``--init-from``). ``merge_parts`` checks that the runs are one
split (same space, model and genes, every part present once) and writes their weights as
one ``FewShotSupernet`` checkpoint, which ``evaluate``, ``search`` and ``export`` load like
any supernet checkpoint (config ``fewshot: {genes}``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from track1.infra.checkpoint import load_checkpoint
from track1.nas.fewshot import FewShotSupernet, parts_of
from track1.infra.sections import differing, within
from track1.registry import build_supernet, saved_image_size
from track1.train.config import upgrade_flat_keys
from track1.train.errors import TrainError


#: what the parts of one split share besides space, model and genes: the one-shot
#: checkpoint they start from and how they train (images, data, schedule, losses)
PART_RECIPE = ("init.file", "data.image_size", "data.root", "data.batch_size", "data.subset",
               "optim.lr", "optim.weight_decay", "optim.momentum", "schedule.min_lr",
               "schedule.epochs", "schedule.max_steps_per_epoch", "loss", "sampler", "teacher",
               "lambda")


def merge_parts(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """One few-shot checkpoint (a dict for ``save_atomic``) from the part runs' checkpoints;
    one ``TrainError`` line naming the file when they are not one complete split."""
    if not paths:
        raise TrainError("few-shot merge: no part checkpoints given")
    states: dict[tuple[int, ...], Any] = {}
    first = None
    steps = 0
    for path in paths:
        ckpt = load_checkpoint(path)
        config = upgrade_flat_keys(ckpt["config"])
        part = config.get("part")
        if not part:
            raise TrainError(f"{path} is not a few-shot part run (its config has no 'part')")
        key = (config.get("space"), config.get("model"), list(part["genes"]))
        if first is None:
            first = (key, config)
        elif key != first[0]:
            raise TrainError(f"{path} is another split or supernet than {paths[0]} (space, "
                             "model or split genes differ)")
        else:  # one split of ONE one-shot run, trained alike (issue 19, M11)
            differ = [k for k, _, _ in differing(config, first[1]) if within(k, PART_RECIPE)]
            if differ:
                raise TrainError(f"{path} and {paths[0]} are parts of different runs: their "
                                 f"{', '.join(differ)} differ (the parts of a split start from "
                                 "one one-shot checkpoint and train alike)")
        values = tuple(int(v) for v in part["values"])
        if values in states:
            raise TrainError(f"{path}: part {list(values)} is given twice")
        states[values] = ckpt["model"]
        steps += int(ckpt.get("step", 0))
    (space, model, genes), config = first
    def build():
        return build_supernet(space, model)
    expected = parts_of(build().space, genes)
    missing = [list(v) for v in expected if v not in states]
    if missing:
        raise TrainError(f"few-shot merge: {len(missing)} of {len(expected)} parts of the split "
                         f"on genes {genes} are missing, e.g. {missing[0]}")
    net = FewShotSupernet.from_parts(build, genes, states)
    merged_config = {k: v for k, v in config.items() if k != "part"}
    merged_config["fewshot"] = {"genes": list(genes)}
    return {"model": net.state_dict(), "config": merged_config,
            "image_size": saved_image_size(config), "step": steps}

"""The discovered proxy: a program found by ``python -m track1 discover-proxy`` (the
NAS-Bench-201 driver ``track1.bench.discover``), scored like any other proxy.

``PROGRAM`` is the committed program, with where it came from; ``program=`` takes
another one (a dict of genes, or the path of a ``program.json`` the command wrote). Its
ground truth was NAS-Bench-201's (search split only): a NB201 ranking figure with this
proxy as teacher must say so beside it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from track1.proxies.discover.program import AnyProgram, from_dict, score_stats
from track1.proxies.discover.stats import probe_stats

NAME = "discovered"

#: the committed program and its provenance (docs/results/discover-proxy-*)
PROGRAM: dict[str, str] = {
    "a": "a_mineig", "unary_a": "square", "b": "a_mean_abs", "unary_b": "log", "binary": "div",
    "unary_out": "abs", "aggregate": "logsum",
}
#: log(sum over layers of |abs((square(a_mineig) / log(a_mean_abs)))|)
SOURCE = ("discover-proxy on NAS-Bench-201 CIFAR-10: 300 search archs (fitness Kendall vs "
          "valid 0.725), held-out 700 archs Kendall 0.698 valid / 0.708 test (FLOPs there "
          "0.517 / 0.564); docs/results/discover-proxy-nb201-300search-700heldout-2core-cpu")


def load_program(program: str | Path | dict | None) -> AnyProgram:
    """``PROGRAM``, a dict of genes (or a blend's), or a ``program.json`` path (its
    ``program`` entry)."""
    if program is None:
        return from_dict(PROGRAM)
    if isinstance(program, dict):
        return from_dict(program.get("program", program))
    path = Path(program)
    if not path.is_file():
        raise FileNotFoundError(f"discovered proxy program not found: {path}")
    d = json.loads(path.read_text())
    return from_dict(d.get("program", d))


def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None, *,
          seed: int | None = None, program: str | Path | dict | None = None,
          probes: int = 1, **options: Any) -> float:
    """The program's value on the network's per-layer statistics for ``inputs``, averaged
    over ``probes`` probes (``stats.probe_stats``: the images split into that many shares,
    probe k >= 1 on a copy re-initialised from ``seed + k``), as the program was found."""
    if options:
        raise TypeError(f"discovered.score got unknown options {sorted(options)}")
    return score_stats(load_program(program),
                       probe_stats(model, inputs, targets, seed=seed, probes=probes))

"""Teacher priors for ranking distillation: cheap scores that order subnets.

A teacher is one or several named priors: ``flops`` and ``params`` come from the
space's analytic ``cost``; ``zen`` from ``track1.proxies.zen.zen_score``; any other
name in ``track1.proxies.PROXIES`` runs ``get_proxy(name)`` on a fresh
``space.build(arch)`` with a fixed probe batch. Scores are cached per arch code (and
may be preloaded from the JSONL cache ``tools/zen_cache.py`` writes), so each arch is
scored at most once per run; the cache travels in checkpoints.

Several priors combine by mean rank inside the group being compared (units differ:
FLOPs in billions, Zen-scores in tens); ties are broken by the first prior.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Hashable, Sequence

import torch

from track1.nas.space import SearchSpace
from track1.proxies import PROXIES
from track1.resumable import read_records

COST_PRIORS = ("flops", "params")


class Teacher:
    """Scores archs of ``space`` by one prior or the mean rank of several."""

    def __init__(self, space: SearchSpace, priors: str | Sequence[str] = "flops", *,
                 cache_file: str | os.PathLike | None = None, num_classes: int = 10,
                 zen_options: dict[str, Any] | None = None, probe: tuple | None = None,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        names = [priors] if isinstance(priors, str) else list(priors)
        names = [n.strip() for part in names for n in part.split("+") if n.strip()]
        if not names:
            raise ValueError("a teacher needs at least one prior")
        for n in names:
            if n not in PROXIES and n not in COST_PRIORS:
                raise ValueError(f"unknown teacher prior {n!r}; choose from "
                                 f"{sorted(set(PROXIES) | set(COST_PRIORS))}")
        self.space = space
        self.priors = names
        self.num_classes = num_classes
        self.zen_options = dict(zen_options or {})
        self.probe = probe
        self.seed = seed
        self.device = device
        self.cache: dict[str, dict[str, float]] = {n: {} for n in names}
        self.computed = 0
        if cache_file:
            self.load_cache_file(cache_file)

    def load_cache_file(self, path: str | os.PathLike) -> int:
        """Preload scores from a JSONL file of ``{"arch": code, prior: value, ...}``
        lines; returns how many values were read."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"teacher cache file not found: {path}")
        n = 0
        for row in read_records(path, "arch")[0]:  # a torn line from a killed writer: skipped
            for name in self.priors:
                if isinstance(row.get(name), (int, float)):
                    self.cache[name][row["arch"]] = float(row[name])
                    n += 1
        return n

    # ------------------------------------------------------------------- scoring
    def prior(self, name: str, arch: Hashable) -> float:
        """The raw value of prior ``name`` for ``arch`` (computed once, then cached)."""
        code = self.space.encode(arch)
        table = self.cache.setdefault(name, {})
        if code not in table:
            table[code] = self._compute(name, arch, code)
            self.computed += 1
        return table[code]

    def _compute(self, name: str, arch: Hashable, code: str) -> float:
        if name in COST_PRIORS:
            return float(self.space.cost(arch)[name])
        from track1.proxies.zen import arch_seed, zen_score
        if name == "zen":
            return zen_score(self.space, arch, seed=self.seed, num_classes=self.num_classes,
                             device=self.device, **self.zen_options)
        from track1.proxies import get_proxy
        net = self.space.build(arch, num_classes=self.num_classes).to(self.device)
        if self.probe is not None:
            inputs, targets = self.probe
        else:
            g = torch.Generator().manual_seed(self.seed)
            inputs = torch.randn(8, 3, 32, 32, generator=g)
            targets = torch.randint(0, self.num_classes, (8,), generator=g)
        return float(get_proxy(name)(net, inputs.to(self.device), targets.to(self.device),
                                     seed=arch_seed(code, self.seed)))

    def scores(self, archs: Sequence[Hashable]) -> list[float]:
        """Scores of a group (higher = predicted better). One prior: its raw values.
        Several: the mean over priors of each arch's rank inside the group."""
        if len(self.priors) == 1:
            return [self.prior(self.priors[0], a) for a in archs]
        ranks = []
        for name in self.priors:
            values = torch.tensor([self.prior(name, a) for a in archs], dtype=torch.float64)
            ranks.append(_average_ranks(values))
        mean = torch.stack(ranks).mean(0) + 1e-3 * ranks[0] / max(len(archs), 1)
        return mean.tolist()

    # -------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"priors": list(self.priors), "cache": {k: dict(v) for k, v in self.cache.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, table in state.get("cache", {}).items():
            self.cache.setdefault(name, {}).update({str(k): float(v) for k, v in table.items()})


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks (ascending), ties sharing their average rank."""
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(len(values), dtype=values.dtype)
    for v in values.unique():
        mask = values == v
        if mask.sum() > 1:
            ranks[mask] = ranks[mask].mean()
    return ranks

"""Teacher priors for ranking distillation: cheap scores that order subnets.

A teacher is one or several named priors: ``flops`` and ``params`` come from the
space's analytic ``cost``; ``zen`` from ``track1.proxies.zen.zen_score``; any other
name in ``track1.proxies.PROXIES`` runs on a fresh ``space.build(arch)`` whose weights
are seeded by the arch code, with the proxy report's probe batch (``probe="data"``: real
training images chosen by the seed, each proxy seeing its protocol's count of them,
``track1.proxies.protocol``), so the teacher distils exactly the values the report
measured. Scores are cached per arch code (and may be preloaded from the JSONL cache
``track1 proxy-cache`` writes), so each arch is scored at most once per run; the cache
travels in checkpoints.

Several priors (``meco:0.85+synflow:0.15``) combine by the weighted mean of ranks (units
differ: FLOPs in billions, Zen-scores in tens). ``mix="reference"`` (the default) ranks
each prior's value among a fixed, seeded reference sample of ``set_reference`` archs of the
space, so an arch's mixed score does not depend on the group it is compared in, and the
order the teacher teaches is the order of the mix over the whole space. ``mix="group"``
(what runs before ``mix`` existed did) ranks inside the compared group instead: for the
margin sampler's pairs that is a weighted vote, so the heavier prior always wins (equal
weights: the first one), however little it separates the pair and however much the other
does, and a mix teaches nothing its first prior does not. Ties of the reference mix (both
archs in one gap of every prior's reference values) are broken by the group mix, then by
the first prior.

A set proxy (``track1.proxies.SET_PROXIES``: ``az_nas``) ranks archs against a set: its
components are computed once per arch and cached under their own keys
(``az_expressivity``, ...), and an arch's value is AZ-NAS's aggregate of its rank among a
fixed, seeded reference sample of ``set_reference`` archs of the space (with the space's
analytic FLOPs as the complexity view). Ranking inside the compared group instead would
leave a pair tied whenever each arch wins two of the four views (14% of the margin
sampler's pairs on the 4-op NAS-Bench-201 space).

A tied pair teaches nothing (the margin loss is zero when the teacher cannot order it),
and analytic FLOPs tie often: on the 4-op NAS-Bench-201 space pooling and skip both cost
0 and a conv costs the same on every edge, so 5.7% of the margin sampler's pairs tie.
``tie_break`` names a second prior that orders archs the first one ties (computed only
for the archs of a tied group); the teacher counts the pairs it compared, those the
first prior tied and those still tied after the break (``tie_counts``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import torch

from track1.infra.ranks import average_ranks, below_in
from track1.infra.resumable import read_records
from track1.nas.space import SearchSpace
from track1.proxies import PROXIES, SET_PROXIES, cache_keys, scored_how

COST_PRIORS = ("flops", "params")
#: how several priors combine: ranks among the reference sample, or inside the group
MIXES = ("reference", "group")
#: the computed proxies' probe: real training images (``data``, the proxy report's
#: batch), or the 8 Gaussian images of runs before the probe existed
PROBES = ("data", "gaussian")


def parse_priors(priors: str | Sequence[str]) -> tuple[list[str], list[float]]:
    """``"meco:0.85+synflow:0.15"`` (or a list of such parts) -> the prior names and their
    weights in the mean of ranks (1 where none is given). A weight that is not a positive
    number, or a name given twice, is one ``ValueError`` line."""
    parts = [priors] if isinstance(priors, str) else list(priors)
    items = [n.strip() for part in parts for n in str(part).split("+") if n.strip()]
    names: list[str] = []
    weights: list[float] = []
    for item in items:   # "flops" or "flops:0.7"
        name, sep, w = item.partition(":")
        try:
            weight = float(w) if sep else 1.0
        except ValueError:
            weight = -1.0
        if not weight > 0 or name in names:
            raise ValueError(f"teacher prior {item!r}: a name, optionally ':WEIGHT' with a "
                             "positive weight, each name once")
        names.append(name.strip())
        weights.append(weight)
    return names, weights


def describe_way(way: tuple) -> str:
    """``track1.proxies.scored_how``'s tuple in words."""
    kind, *v = way
    if kind == "zen":
        fields = ("images", "px", "repeats", "shortcuts", "classes", "seed", "device")
        return "Zen-score with " + ", ".join(f"{f} {x}" for f, x in zip(fields, v))
    if kind == "proxy-cache":
        return (f"scored by proxy-cache on {v[0]} Gaussian images drawn per arch at {v[1]} px, "
                f"seed {v[2]}")
    return f"on the teacher's probe batch ({v[0]}) at {v[1]} px, seed {v[2]}"


class Teacher:
    """Scores archs of ``space`` by one prior or the mean rank of several."""

    def __init__(self, space: SearchSpace, priors: str | Sequence[str] = "flops", *,
                 cache_file: str | os.PathLike | None = None, num_classes: int = 10,
                 zen_options: dict[str, Any] | None = None,
                 probe: tuple[torch.Tensor, torch.Tensor] | str | None = None,
                 data: str | os.PathLike | None = None, resolution: int = 32,
                 seed: int = 0, device: str | torch.device = "cpu",
                 tie_break: str | None = None, set_reference: int = 256,
                 mix: str = "reference") -> None:
        names, weights = parse_priors(priors)
        if not names:
            raise ValueError("a teacher needs at least one prior")
        tie_break = None if tie_break in (None, "", "none") else str(tie_break).strip()
        for n in names + ([tie_break] if tie_break else []):
            if n not in PROXIES and n not in COST_PRIORS and n not in SET_PROXIES:
                raise ValueError(f"unknown teacher prior {n!r}; choose from "
                                 f"{sorted(set(PROXIES) | set(COST_PRIORS) | set(SET_PROXIES))}")
        if mix not in MIXES:
            raise ValueError(f"teacher mix {mix!r}: choose from {list(MIXES)}")
        self.mix = mix
        if int(set_reference) < 2:
            raise ValueError(f"set_reference must be >= 2 archs, got {set_reference}")
        self.set_reference = int(set_reference)
        self._reference_archs: list[Hashable] | None = None
        self._reference: list[dict[str, float]] | None = None
        self._sorted_reference: dict[str, list[float]] = {}
        if tie_break in names:
            raise ValueError(f"tie_break {tie_break!r} is already one of the priors {names}")
        self.space = space
        self.priors = names
        #: each prior's share of the mean of ranks (several priors), summing to 1
        self.weights = [w / sum(weights) for w in weights]
        self.tie_break = tie_break
        #: pairs compared, pairs the priors tied, pairs still tied after the tie-break
        self.tie_counts = {"pairs": 0, "tied_primary": 0, "tied": 0}
        self.num_classes = num_classes
        self.zen_options = dict(zen_options or {})
        if isinstance(probe, str) and probe not in PROBES:
            raise ValueError(f"teacher probe {probe!r}: choose from {list(PROBES)}")
        self.probe = probe
        self.data = data
        self.resolution = int(resolution)
        self._probe_batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.seed = seed
        self.device = device
        self.cache: dict[str, dict[str, float]] = {k: {} for n in names + (
            [tie_break] if tie_break else []) for k in cache_keys(n)}
        self.computed = 0
        #: per cached key whose file values this teacher would not compute alike: the
        #: file, how they were scored, and the archs the file holds (``load_cache_file``)
        self._foreign: dict[str, tuple[Path, str, frozenset[str]]] = {}
        if cache_file:
            self.load_cache_file(cache_file)

    @property
    def names(self) -> list[str]:
        """Every prior this teacher may compute: the priors, then the tie-break."""
        return self.priors + ([self.tie_break] if self.tie_break else [])

    def load_cache_file(self, path: str | os.PathLike) -> int:
        """Preload scores from a JSONL file of ``{"arch": code, prior: value, ...}``
        lines; returns how many values were read.

        Values that ``track1 proxy-cache`` scored say how (``<proxy>_batch``,
        ``<proxy>_resolution``, Zen-score's options, the seed). A file whose values of one
        prior were scored two ways is refused. Where the file's way is not how this
        teacher computes the prior, its values are kept but the teacher refuses to compute
        that prior for an arch the file lacks (``cannot_extend``, ``missing_from_cache``):
        the two kinds of values do not compare (Zen-score at 64 px sits far above
        Zen-score at 32 px), so mixing them would teach the file's coverage, not the
        prior."""
        from track1.infra.errors import UserError
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"teacher cache file not found: {path}")
        n = 0
        keys = [k for name in self.names for k in cache_keys(name)]
        ways: dict[str, set[tuple]] = {}
        held: dict[str, set[str]] = {}
        for row in read_records(path, "arch")[0]:  # a torn line from a killed writer: skipped
            for key in keys:
                if isinstance(row.get(key), (int, float)):
                    self.cache[key][row["arch"]] = float(row[key])
                    held.setdefault(key, set()).add(row["arch"])
                    n += 1
                    way = scored_how(key, row)
                    if way is not None:
                        ways.setdefault(key, set()).add(way)
        for key, found in ways.items():
            if len(found) > 1:
                a, b = sorted(found, key=repr)[:2]
                raise UserError(f"teacher cache {path}: its {key} values were scored two ways "
                                f"({describe_way(a)}; and {describe_way(b)}): one file, one "
                                f"way of scoring")
            (way,) = found
            if way != self._my_way(key):
                self._foreign[key] = (path, describe_way(way), frozenset(held[key]))
        return n

    def _my_way(self, key: str) -> tuple:
        """How this teacher computes ``key``, in ``scored_how``'s terms."""
        if key == "zen":
            o = {"batch": 8, "resolution": 224, "repeats": 1, "residual": True} | self.zen_options
            return ("zen", o["batch"], o["resolution"], o["repeats"], o["residual"],
                    self.num_classes, int(self.seed), torch.device(self.device).type)
        probe = self.probe if isinstance(self.probe, str) else "given"
        return ("teacher", probe or "data", self.resolution, int(self.seed))

    def cannot_extend(self) -> dict[str, str]:
        """The cached keys this teacher cannot compute alike for archs the cache lacks,
        each with how the cache scored it (empty: the cache, if any, extends freely)."""
        return {k: how for k, (_, how, _) in self._foreign.items()}

    def missing_from_cache(self, codes: Sequence[str]) -> tuple[str, int, str] | None:
        """For archs (codes) this teacher may be asked about: the first cached key it
        cannot extend alike that the cache lacks some of them for, with how many it lacks
        and the first one; None when the cache covers them all."""
        for key, (_, _, held) in self._foreign.items():
            lacking = [c for c in codes if c not in held]
            if lacking:
                return key, len(lacking), lacking[0]
        return None

    # ------------------------------------------------------------------- scoring
    def prior(self, name: str, arch: Hashable) -> float:
        """The raw value of prior ``name`` for ``arch`` (computed once, then cached)."""
        code = self.space.encode(arch)
        table = self.cache.setdefault(name, {})
        if code not in table:
            if name in self._foreign:
                from track1.infra.errors import UserError
                path, how, _ = self._foreign[name]
                raise UserError(f"teacher prior {name!r}: arch {code} is not in the teacher "
                                f"cache {path}, whose {name} values were {how}; this teacher "
                                f"would compute it another way ({describe_way(self._my_way(name))}), "
                                f"and the two do not compare")
            table[code] = self._compute(name, arch, code)
            self.computed += 1
        return table[code]

    def _probe(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe batch the computed proxies see (built on first use)."""
        if self._probe_batch is None:
            if isinstance(self.probe, tuple):
                inputs, targets = self.probe
            elif self.probe == "gaussian":
                g = torch.Generator().manual_seed(self.seed)
                inputs = torch.randn(8, 3, self.resolution, self.resolution, generator=g)
                targets = torch.randint(0, self.num_classes, (8,), generator=g)
            else:   # the proxy report's batch: real training images chosen by the seed
                from track1.data import probe_batch
                from track1.proxies import protocol
                inputs, targets, _ = probe_batch(self.data, protocol.probe_size(self.names),
                                                 self.resolution, self.seed)
                targets = targets % self.num_classes
            self._probe_batch = inputs.to(self.device), targets.to(self.device)
        return self._probe_batch

    def _compute(self, name: str, arch: Hashable, code: str) -> float:
        if name in COST_PRIORS:
            return float(self.space.cost(arch)[name])
        from track1.proxies.zen import arch_seed, zen_score
        if name == "zen":
            return zen_score(self.space, arch, seed=self.seed, num_classes=self.num_classes,
                             device=self.device, **self.zen_options)
        if name in SET_PROXIES:  # az_nas: its components' ranks among the reference sample
            from track1.proxies import az_nas
            return az_nas.against_reference([self._az_row(arch)], self.reference_rows())[0]
        seed = arch_seed(code, self.seed)
        with torch.random.fork_rng(devices=[]):   # the arch's own weights, as the report's
            torch.manual_seed(seed)
            net = self.space.build(arch, num_classes=self.num_classes).to(self.device)
        inputs, targets = self._probe()
        if name.startswith("az_"):  # one AZ-NAS component: all three computed and cached
            from track1.proxies import az_nas
            comps = az_nas.components(net, inputs, seed=seed, in_place=True)  # built for it
            for key, value in comps.items():
                self.cache.setdefault(f"az_{key}", {})[code] = float(value)
            return float(comps[name[len("az_"):]])
        from track1.proxies import protocol
        # a given batch (and the Gaussian one of earlier runs) is seen whole by every proxy
        whole = None if self.probe in (None, "data") else {name: len(inputs)}
        return protocol.run(name, net, inputs, targets, seed=seed, overrides=whole)

    def _az_row(self, arch: Hashable) -> dict[str, float]:
        from track1.proxies import az_nas
        return az_nas.views({k: self.prior(k, arch) for k in az_nas.CACHED})

    def reference_archs(self) -> list[Hashable]:
        """The reference sample: ``set_reference`` archs drawn from the space with a seed of
        their own (the same archs for AZ-NAS's views and for the mix of priors). With a
        cache this teacher cannot extend alike (``load_cache_file``), they are drawn from
        the archs the cache holds with every prior instead, so every value ranked is the
        file's: a Track 1 teacher ``meco_opt+az_nas`` over the list's proxy cache, with
        training restricted to the list (``sampler.archs``), computes nothing."""
        if self._reference_archs is None:
            import random
            rng = random.Random(f"az_nas reference {self.seed}")
            if not self._foreign:
                self._reference_archs = [self.space.sample(rng)
                                         for _ in range(self.set_reference)]
                return self._reference_archs
            held = sorted(frozenset.intersection(*[h for _, _, h in self._foreign.values()]))
            if len(held) < self.set_reference:
                from track1.infra.errors import UserError
                path = next(iter(self._foreign.values()))[0]
                fix = (f"give a reference of at most {len(held)}" if len(held) >= 2 else
                       "it holds too few to rank against")
                raise UserError(f"teacher.reference {self.set_reference}: the teacher cache "
                                f"{path} holds {len(held)} archs with every one of "
                                f"{sorted(self._foreign)}, whose values cannot be extended "
                                f"alike; {fix}")
            self._reference_archs = [self.space.decode(c)
                                     for c in rng.sample(held, self.set_reference)]
        return self._reference_archs

    def reference_rows(self) -> list[dict[str, float]]:
        """AZ-NAS's views of the reference sample, computed once and cached like any
        arch's."""
        if self._reference is None:
            self._reference = [self._az_row(a) for a in self.reference_archs()]
        return self._reference

    def reference_values(self, name: str) -> list[float]:
        """Prior ``name``'s values over the reference sample, sorted ascending."""
        if name not in self._sorted_reference:
            self._sorted_reference[name] = sorted(self.prior(name, a)
                                                  for a in self.reference_archs())
        return self._sorted_reference[name]

    def mixed(self, archs: Sequence[Hashable]) -> list[float]:
        """The weighted mean over priors of each arch's rank among the reference sample,
        in [0, 1] (``mix="reference"``; ties broken by the group mix), or of its rank
        inside ``archs`` (``mix="group"``)."""
        if self.mix == "group":
            return self._group_mix(archs)
        values = [0.0] * len(archs)
        for name, w in zip(self.priors, self.weights):
            ref = self.reference_values(name)
            for i, a in enumerate(archs):
                values[i] += w * below_in(self.prior(name, a), ref) / len(ref)
        values = [round(v, 12) for v in values]   # equal mixes summed in another order
        if not _tied_pairs(values):
            return values
        group = self._group_mix(archs)
        return break_ties(values, lambda i: group[i])

    def _group_mix(self, archs: Sequence[Hashable]) -> list[float]:
        """The weighted mean of ranks inside ``archs``, ties of it ordered by the first
        prior."""
        ranks = [torch.tensor(average_ranks([self.prior(name, a) for a in archs]),
                              dtype=torch.float64) for name in self.priors]
        w = torch.tensor(self.weights, dtype=torch.float64)[:, None]
        return ((torch.stack(ranks) * w).sum(0)
                + 1e-3 * ranks[0] / max(len(archs), 1)).tolist()

    def scores(self, archs: Sequence[Hashable]) -> list[float]:
        """Scores of a group (higher = predicted better). One prior: its raw values.
        Several: ``mixed``, the weighted mean of ranks. With a ``tie_break``, archs the
        priors tie are ordered by it (their scores move apart by less than half the
        smallest gap between untied scores, so no other order changes)."""
        if len(self.priors) == 1:
            values = [self.prior(self.priors[0], a) for a in archs]
        else:
            values = self.mixed(archs)
        tied_primary = _tied_pairs(values)
        if tied_primary and self.tie_break:
            values = break_ties(values, lambda i: self.prior(self.tie_break, archs[i]))
        self.tie_counts["pairs"] += len(values) * (len(values) - 1) // 2
        self.tie_counts["tied_primary"] += tied_primary
        self.tie_counts["tied"] += _tied_pairs(values) if tied_primary else 0
        return values

    def tie_rate(self) -> float:
        """Share of the pairs compared so far that the teacher left tied (nan before any)."""
        n = self.tie_counts["pairs"]
        return self.tie_counts["tied"] / n if n else float("nan")

    # -------------------------------------------------------------- checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"priors": list(self.priors), "tie_break": self.tie_break,
                "tie_counts": dict(self.tie_counts),
                "cache": {k: dict(v) for k, v in self.cache.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, table in state.get("cache", {}).items():
            held = self._foreign[name][2] if name in self._foreign else None
            # a value of a key the cache file cannot be extended for, of an arch the file
            # lacks, was computed another way (a checkpoint of earlier code): dropped
            self.cache.setdefault(name, {}).update({str(k): float(v) for k, v in table.items()
                                                    if held is None or str(k) in held})
        if state.get("tie_break") == self.tie_break and "tie_counts" in state:
            self.tie_counts.update({k: int(v) for k, v in state["tie_counts"].items()
                                    if k in self.tie_counts})


def _tied_pairs(values: Sequence[float]) -> int:
    """Pairs of equal values."""
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sum(k * (k - 1) // 2 for k in counts.values())


def break_ties(values: Sequence[float], second: Callable[[int], float]) -> list[float]:
    """``values`` with each group of equal values ordered by ``second(i)`` (higher =
    better; equal seconds stay tied): a tied value ``v`` becomes ``v + step * (r + 1) /
    (k + 1)`` for the rank ``r`` of its second score among its ``k`` tied peers, where
    ``step`` is half the smallest gap between distinct values, so the order of values
    that were not tied never changes. ``second`` is called only for tied positions."""
    values = [float(v) for v in values]
    distinct = sorted(set(values))
    if len(distinct) == len(values):
        return values
    gaps = [b - a for a, b in zip(distinct, distinct[1:])]
    step = 0.5 * (min(gaps) if gaps else max(abs(distinct[0]), 1.0))
    out = list(values)
    for v in distinct:
        idx = [i for i, x in enumerate(values) if x == v]
        if len(idx) < 2:
            continue
        ranks = average_ranks([float(second(i)) for i in idx])
        for i, r in zip(idx, ranks):
            out[i] = v + step * (r + 1) / (len(idx) + 1)
        if len({out[i] for i in idx}) < len(set(ranks)):  # the offsets vanished in rounding
            raise ValueError(f"cannot break ties at {v!r}: the values are too close for "
                             "float64 to hold the tie-break")
    return out

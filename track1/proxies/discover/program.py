"""Proxy programs over per-layer statistics (``track1.proxies.discover.stats``).

A program is seven genes: two statistics (``a``, ``b``), a unary operation on each, a
binary operation joining them, a unary operation on the result, and an aggregation over
the layers. A ``Blend`` is two or more such programs joined after aggregation, ``first +
weight * second + ...`` (each weight from ``WEIGHTS``, either sign): most good programs
end in a log, so a blend is a weighted product of views of the network, the way ensembles
of proxies (AZ-NAS, mixes of ranks) combine what one view misses. On a set of archs it
evaluates as one numpy expression over a padded archs x layers x statistics array, so
thousands of programs score a thousand archs in seconds. Every operation is total (logs
of magnitudes, guarded divisions); a value that is still not finite counts as the worst
score.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import Callable, Sequence

import numpy as np

from track1.proxies.discover.stats import STAT_NAMES

_EPS = 1e-12


def _guard(x: np.ndarray) -> np.ndarray:
    return x + np.where(x >= 0, _EPS, -_EPS)


UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "id": lambda x: x,
    "abs": np.abs,
    "neg": np.negative,
    "log": lambda x: np.log(np.abs(x) + _EPS),
    "sqrt": lambda x: np.sqrt(np.abs(x)),
    "square": np.square,
    "inv": lambda x: 1.0 / _guard(x),
}
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": lambda x, y: x / _guard(y),
    "first": lambda x, y: x,
}
AGGREGATES = ("sum", "mean", "max", "min", "logsum")
GENES = ("a", "unary_a", "b", "unary_b", "binary", "unary_out", "aggregate")
CHOICES: dict[str, tuple[str, ...]] = {
    "a": STAT_NAMES, "b": STAT_NAMES, "unary_a": tuple(UNARY), "unary_b": tuple(UNARY),
    "binary": tuple(BINARY), "unary_out": tuple(UNARY), "aggregate": AGGREGATES,
}


@dataclass(frozen=True)
class Program:
    """One proxy program; ``formula`` is its readable form."""

    a: str
    unary_a: str
    b: str
    unary_b: str
    binary: str
    unary_out: str
    aggregate: str

    def __post_init__(self) -> None:
        for gene in GENES:
            value = getattr(self, gene)
            if value not in CHOICES[gene]:
                raise ValueError(f"program gene {gene}={value!r}: choose from {list(CHOICES[gene])}")

    @property
    def formula(self) -> str:
        def un(op: str, x: str) -> str:
            return x if op == "id" else f"{op}({x})"
        inner = un(self.unary_a, self.a)
        if self.binary != "first":
            sym = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[self.binary]
            inner = f"{inner} {sym} {un(self.unary_b, self.b)}"
            if self.unary_out != "id":
                inner = f"({inner})"
        body = un(self.unary_out, inner)
        if self.aggregate == "logsum":
            return f"log(sum over layers of |{body}|)"
        return f"{self.aggregate} over layers of {body}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Program":
        unknown = sorted(set(d) - set(GENES) - {"formula"})
        if unknown:
            raise ValueError(f"program keys {unknown} unknown; a program has {list(GENES)}")
        return cls(**{g: d[g] for g in GENES})


def random_program(rng: random.Random) -> Program:
    return Program(**{g: rng.choice(CHOICES[g]) for g in GENES})


def mutate(program: Program, rng: random.Random) -> Program:
    """The program with one gene changed to another of its choices."""
    gene = rng.choice(GENES)
    others = [c for c in CHOICES[gene] if c != getattr(program, gene)]
    return replace(program, **{gene: rng.choice(others)})


def pad(stats: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Archs' layers x statistics arrays as one archs x layers x statistics array (NaN
    past an arch's last layer) and the archs x layers mask of real layers."""
    depth = max(s.shape[0] for s in stats)
    out = np.full((len(stats), depth, len(STAT_NAMES)), np.nan)
    mask = np.zeros((len(stats), depth), dtype=bool)
    for i, s in enumerate(stats):
        out[i, :s.shape[0]] = s
        mask[i, :s.shape[0]] = True
    return out, mask


def evaluate(program: Program, stats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The program's score of every arch of a padded set (-inf where not finite)."""
    col = {name: i for i, name in enumerate(STAT_NAMES)}
    with np.errstate(all="ignore"):
        x = UNARY[program.unary_a](stats[:, :, col[program.a]])
        y = UNARY[program.unary_b](stats[:, :, col[program.b]])
        v = UNARY[program.unary_out](BINARY[program.binary](x, y))
        ok = mask & np.isfinite(v)
        if program.aggregate in ("sum", "logsum"):
            s = np.where(ok, v, 0.0).sum(axis=1)
            out = np.log(np.abs(s) + _EPS) if program.aggregate == "logsum" else s
        elif program.aggregate == "mean":
            out = np.where(ok, v, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
        elif program.aggregate == "max":
            out = np.where(ok, v, -np.inf).max(axis=1)
        else:
            out = np.where(ok, v, np.inf).min(axis=1)
    out = np.where(np.isfinite(out) & (ok.sum(axis=1) > 0), out, -np.inf)
    return out


def score_stats(program: "Program | Blend", stats: np.ndarray) -> float:
    """The program's (or blend's) score of one network from its layers x statistics
    array."""
    padded, mask = pad([stats])
    return float(evaluate_any(program, padded, mask)[0])


#: a blend's weight on its second program (a log-scale ratio of two views, either sign)
WEIGHTS: tuple[float, ...] = tuple(sorted({sg * w for w in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0)
                                          for sg in (-1.0, 1.0)}))


@dataclass(frozen=True)
class Blend:
    """Programs joined after aggregation: ``first + weight * second + sum(w * p for p, w in
    more)`` (``more``: the terms a greedy extension added, ``blend.extend``)."""

    first: Program
    second: Program
    weight: float
    more: tuple[tuple[Program, float], ...] = ()

    def __post_init__(self) -> None:
        for w in (self.weight, *(w for _, w in self.more)):
            if w not in WEIGHTS:
                raise ValueError(f"blend weight {w!r}: choose from {list(WEIGHTS)}")

    @property
    def terms(self) -> tuple[tuple[Program, float], ...]:
        """Every program with its weight, the first one's 1."""
        return ((self.first, 1.0), (self.second, self.weight), *self.more)

    @property
    def formula(self) -> str:
        out = f"[{self.first.formula}]"
        for program, w in self.terms[1:]:
            out += f" {'+' if w > 0 else '-'} {abs(w):g} x [{program.formula}]"
        return out

    def to_dict(self) -> dict:
        out = {"first": self.first.to_dict(), "second": self.second.to_dict(),
               "weight": self.weight}
        if self.more:
            out["more"] = [{"program": p.to_dict(), "weight": w} for p, w in self.more]
        return out


AnyProgram = Program | Blend


def prefixes(blend: Blend) -> list[Blend]:
    """The blend as it grew: its pair, then each further term added (the last is
    ``blend``), so a report can show what each term bought."""
    return [replace(blend, more=blend.more[:k]) for k in range(len(blend.more) + 1)]


def from_dict(d: dict) -> AnyProgram:
    """A program or a blend from its ``to_dict`` form (a blend has ``first``)."""
    if "first" not in d:
        return Program.from_dict(d)
    unknown = sorted(set(d) - {"first", "second", "weight", "more", "formula"})
    if unknown:
        raise ValueError(f"blend keys {unknown} unknown; a blend has first, second, weight "
                         "and optionally more")
    more = tuple((Program.from_dict(t["program"]), float(t["weight"])) for t in d.get("more", ()))
    return Blend(Program.from_dict(d["first"]), Program.from_dict(d["second"]),
                 float(d["weight"]), more)


def evaluate_any(program: AnyProgram, stats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``evaluate`` for a program or a blend (-inf where not finite)."""
    if isinstance(program, Program):
        return evaluate(program, stats, mask)
    with np.errstate(all="ignore"):
        out = sum(w * evaluate(p, stats, mask) for p, w in program.terms)
    return np.where(np.isfinite(out), out, -np.inf)

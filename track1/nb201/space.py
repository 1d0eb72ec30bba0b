"""The NAS-Bench-201 search space as a ``SearchSpace`` (track1/nas/space.py).

An arch is a tuple of 6 op indices into ``OPS``, in the edge order of the string form
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (edges into node 1, then node 2, then node 3;
``~j`` names the source node). The string is the canonical code, exactly as the
NAS-Bench-201 table writes it, so codes join the ground truth directly.
"""
from __future__ import annotations

import itertools
import random
from typing import Iterator, Sequence

from track1.infra.errors import UserError
from track1.nb201.network import NB201Network, stage_layout
# PAPER_OPS: the authors' 4-op subset (4,096 archs), re-exported for the space's users
from track1.nb201.opnames import EDGES, OPS, PAPER_OPS  # noqa: F401
from track1.infra.messages import clip

NB201Arch = tuple[int, int, int, int, int, int]

#: RD-NAS groups (docs/REFERENCE.md §4): parameterised ops vs parameter-free ops
GROUPS: dict[str, int] = {"nor_conv_1x1": 0, "nor_conv_3x3": 0,
                          "skip_connect": 1, "avg_pool_3x3": 1, "none": 1}
NUM_ARCHS = len(OPS) ** len(EDGES)  # 15,625


def check_ops(ops: "Sequence[str] | None") -> tuple[str, ...]:
    """Validate a candidate-op subset (``None`` = all 5), returned in ``OPS`` order."""
    if ops is None:
        return OPS
    if isinstance(ops, str):
        ops = [o.strip() for o in ops.split(",") if o.strip()]
    ops = tuple(ops)
    unknown = [o for o in ops if o not in OPS]
    if unknown:
        raise ValueError(f"unknown NAS-Bench-201 op(s) {unknown}; choose from {list(OPS)}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"candidate ops repeat: {list(ops)}")
    for needed in ("nor_conv_3x3", "skip_connect"):
        if needed not in ops:
            raise ValueError(f"candidate ops {list(ops)} lack {needed!r}, which the sandwich "
                             "rule's largest/smallest arch needs")
    return tuple(o for o in OPS if o in ops)


class NB201CodeError(UserError, ValueError):
    """A NAS-Bench-201 arch string that does not parse; the message names where and why."""


def encode(arch: NB201Arch) -> str:
    """``(3, 3, 1, ...)`` -> ``|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|...|``."""
    parts, e = [], 0
    for to in range(1, 4):
        parts.append("|" + "|".join(f"{OPS[arch[e + j]]}~{j}" for j in range(to)) + "|")
        e += to
    return "+".join(parts)


def decode(code: str) -> NB201Arch:
    """Parse the string form; errors name the node, the edge and the rule broken."""
    if not isinstance(code, str):
        raise NB201CodeError(f"arch code must be a string, got {type(code).__name__}")
    nodes = code.strip().split("+")
    if len(nodes) != 3:
        raise NB201CodeError(f"arch {clip(code)}: expected 3 '+'-separated nodes, got {len(nodes)}")
    ops: list[int] = []
    for to, node in enumerate(nodes, start=1):
        if len(node) < 2 or node[0] != "|" or node[-1] != "|":
            raise NB201CodeError(f"arch {clip(code)}: node {to} {node!r} must start and end with '|'")
        edges = node[1:-1].split("|")
        if len(edges) != to:
            raise NB201CodeError(f"arch {clip(code)}: node {to} must have {to} input edge(s), "
                                 f"got {len(edges)}")
        for j, edge in enumerate(edges):
            name, sep, src = edge.partition("~")
            if not sep or src != str(j):
                raise NB201CodeError(f"arch {clip(code)}: edge {j}->{to} {edge!r} must read "
                                     f"'<op>~{j}'")
            if name not in OPS:
                raise NB201CodeError(f"arch {clip(code)}: edge {j}->{to} has unknown op {name!r}; "
                                     f"choose from {list(OPS)}")
            ops.append(OPS.index(name))
    return tuple(ops)  # type: ignore[return-value]


def all_archs() -> Iterator[NB201Arch]:
    """Every arch of the space (15,625), in lexicographic op-index order."""
    return itertools.product(range(len(OPS)), repeat=len(EDGES))  # type: ignore[return-value]


def group_distance(a: NB201Arch, b: NB201Arch) -> float:
    """RD-NAS eq. 4: per edge 0 if equal, 0.5 if different ops of one group, 2 otherwise."""
    d = 0.0
    for x, y in zip(a, b):
        if x != y:
            d += 0.5 if GROUPS[OPS[x]] == GROUPS[OPS[y]] else 2.0
    return d


def hamming_distance(a: NB201Arch, b: NB201Arch) -> float:
    """The ablation: number of edges whose op differs."""
    return float(sum(x != y for x, y in zip(a, b)))


DISTANCES = {"group": group_distance, "hamming": hamming_distance}


def count_costs(arch: NB201Arch, num_classes: int = 10, C: int = 16, N: int = 5,
                image_size: int = 32) -> dict[str, float]:
    """Exact params (weights + biases + BN affine, as PyTorch counts them) and FLOPs as
    conv + fc multiply-adds at ``image_size`` (BN, ReLU, pooling and adds count 0), the
    convention of the generic ``flops`` proxy. Microseconds per arch."""
    convs = {OPS.index("nor_conv_1x1"): 1, OPS.index("nor_conv_3x3"): 9}
    params = 3 * C * 9 + 2 * C  # stem conv + BN
    flops = 3 * C * 9 * image_size ** 2
    hw = image_size ** 2
    for kind, c_in, c_out in stage_layout(C, N):
        if kind == "reduce":
            hw_out = (image_size // 2) ** 2 if hw == image_size ** 2 else hw // 4
            k = 9 * c_in * c_out + 9 * c_out * c_out + c_in * c_out
            params += k + 4 * c_out
            flops += k * hw_out
            hw = hw_out
        else:
            k = sum(convs.get(o, 0) for o in arch) * c_in * c_out
            params += k + 2 * c_out * sum(o in convs for o in arch)
            flops += k * hw
    params += 2 * 4 * C + 4 * C * num_classes + num_classes
    flops += 4 * C * num_classes
    return {"flops": float(flops), "params": float(params)}


class NB201Space:
    """``SearchSpace`` of NAS-Bench-201 (6 edges x 5 ops, or a subset ``ops`` of them:
    ``PAPER_OPS`` is the authors' 4-op space without ``none``). Archs keep their indices
    into the 5-op ``OPS`` whatever the subset, so codes join the ground truth directly.

    ``largest()`` is all ``nor_conv_3x3`` (most params and FLOPs). ``smallest()`` is all
    ``skip_connect``: zero cell params like all-``none``, but all-``none`` cuts every
    cell's output to zero, so its logits would not depend on the image and the sandwich
    rule's bottom would teach nothing. ``distance`` defaults to the RD-NAS group
    distance; ``distance="hamming"`` is the ablation.
    """

    name = "nb201"

    def __init__(self, distance: str = "group", C: int = 16, N: int = 5,
                 ops: Sequence[str] | None = None) -> None:
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose from {sorted(DISTANCES)}")
        self.distance_name = distance
        self.C, self.N = C, N
        self.ops = check_ops(ops)
        #: allowed op indices (into ``OPS``), ascending
        self.op_indices: tuple[int, ...] = tuple(OPS.index(o) for o in self.ops)

    def with_distance(self, distance: str) -> "NB201Space":
        """The same space (ops, C, N) measuring ``distance``: the margin sampler's twin."""
        return NB201Space(distance=distance, C=self.C, N=self.N, ops=self.ops)

    def contains(self, arch: NB201Arch) -> bool:
        return len(arch) == len(EDGES) and all(o in self.op_indices for o in arch)

    def largest(self) -> NB201Arch:
        return (OPS.index("nor_conv_3x3"),) * len(EDGES)  # type: ignore[return-value]

    def smallest(self) -> NB201Arch:
        return (OPS.index("skip_connect"),) * len(EDGES)  # type: ignore[return-value]

    def sample(self, rng: random.Random) -> NB201Arch:
        allowed = self.op_indices  # the 5-op space draws exactly as it always did
        return tuple(allowed[rng.randrange(len(allowed))] for _ in EDGES)  # type: ignore[return-value]

    def encode(self, arch: NB201Arch) -> str:
        return encode(arch)

    def decode(self, code: str) -> NB201Arch:
        arch = decode(code)
        if not self.contains(arch):
            bad = [f"edge {EDGES[e][1]}->{EDGES[e][0]} {OPS[o]!r}" for e, o in enumerate(arch)
                   if o not in self.op_indices]
            raise NB201CodeError(f"arch {clip(code)}: {', '.join(bad)} not in this space's "
                                 f"candidate ops {list(self.ops)}")
        return arch

    def distance(self, a: NB201Arch, b: NB201Arch) -> float:
        return DISTANCES[self.distance_name](a, b)

    def cost(self, arch: NB201Arch) -> dict[str, float]:
        return count_costs(arch, C=self.C, N=self.N)

    # ------------------------------------------------------------------ genome
    # Search (``track1.search``) sees an arch as one gene per edge: its op index.
    def gene_choices(self) -> list[tuple[int, ...]]:
        return [self.op_indices] * len(EDGES)

    def genes(self, arch: NB201Arch) -> tuple[int, ...]:
        return tuple(arch)

    def from_genes(self, genes: tuple[int, ...]) -> NB201Arch:
        return tuple(genes)  # type: ignore[return-value]

    def build(self, arch: NB201Arch | str, num_classes: int = 10, **options) -> NB201Network:
        """A fresh standalone network (``C``/``N`` default to the space's)."""
        arch = decode(arch) if isinstance(arch, str) else arch
        return NB201Network(arch, num_classes=num_classes, C=options.get("C", self.C),
                            N=options.get("N", self.N))

"""NAS-Bench-201 semantics the bench relies on, checked against independent rules.

- The margin sampler's acceptance rate for the bench's configs equals the exact
  probability computed here from the per-edge distance distribution (5 ops, uniform and
  independent on each of 6 edges: the pair distance is the 6-fold convolution).
- Edge semantics: the archs whose cell output is cut off from its input (no path of
  non-``none`` edges from node 0 to node 3) are exactly the archs the ground truth puts
  at chance, and the supernet's logits for them do not depend on the image.
"""
from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
import torch

import track1  # noqa: F401
from track1.nas.sampler import MarginSampler
from track1.nb201.ground_truth import load_ground_truth
from track1.nb201.space import NB201Space, all_archs, encode
from track1.nb201.supernet import NB201Supernet

# written here, not imported: the rules under test
OP_NAMES = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))   # (to, from), string order
NONE = 0
PARAMETERISED = {"nor_conv_1x1", "nor_conv_3x3"}           # RD-NAS group 0; the rest group 1
CHANCE = 15.0                                              # % (10 classes: chance is 10%)


# ------------------------------------------------------------ sampler acceptance
def _edge_distance(kind: str, x: str, y: str) -> Fraction:
    if x == y:
        return Fraction(0)
    if kind == "hamming":
        return Fraction(1)
    return Fraction(1, 2) if (x in PARAMETERISED) == (y in PARAMETERISED) else Fraction(2)


def exact_acceptance(kind: str, threshold: float) -> float:
    """P(distance(a, b) >= threshold) for two independent uniform archs, exactly."""
    edge: dict[Fraction, Fraction] = {}
    for x, y in itertools.product(OP_NAMES, repeat=2):
        d = _edge_distance(kind, x, y)
        edge[d] = edge.get(d, Fraction(0)) + Fraction(1, len(OP_NAMES) ** 2)
    dist = {Fraction(0): Fraction(1)}
    for _ in EDGES:
        nxt: dict[Fraction, Fraction] = {}
        for a, p in dist.items():
            for b, q in edge.items():
                nxt[a + b] = nxt.get(a + b, Fraction(0)) + p * q
        dist = nxt
    assert sum(dist.values()) == 1
    return float(sum(p for d, p in dist.items() if d >= Fraction(threshold)))


CONFIGS = [("group", 6.7), ("hamming", 3.0), ("hamming", 4.5)]   # the bench's samplers
N_PAIRS = 4000


def test_space_distance_is_the_per_edge_sum_written_here():
    rng = random.Random(0)
    for kind in ("group", "hamming"):
        space = NB201Space(distance=kind)
        for _ in range(500):
            a, b = space.sample(rng), space.sample(rng)
            want = sum(_edge_distance(kind, OP_NAMES[x], OP_NAMES[y]) for x, y in zip(a, b))
            assert space.distance(a, b) == float(want), (kind, a, b)


@pytest.mark.parametrize("kind,threshold", CONFIGS)
def test_random_pair_acceptance_matches_the_exact_rate(kind, threshold):
    space = NB201Space(distance=kind)
    sampler = MarginSampler(space, threshold, seed=1)
    p = exact_acceptance(kind, threshold)
    hits = sum(space.distance(sampler.sample(), sampler.sample()) >= threshold
               for _ in range(N_PAIRS))
    rate = hits / N_PAIRS
    se = math.sqrt(p * (1 - p) / N_PAIRS)
    assert abs(rate - p) <= 3 * se, f"{kind}>={threshold}: empirical {rate:.4f}, exact {p:.5f}"


@pytest.mark.parametrize("kind,threshold", CONFIGS)
def test_margin_sampler_own_acceptance_rate(kind, threshold):
    """``partner`` accepts candidates at the exact rate: accepted / candidates tried
    (each try costs one ``space.distance`` call), and every pair it returns is far
    enough apart."""
    space = NB201Space(distance=kind)
    calls = [0]
    distance = space.distance

    def counting(a, b):
        calls[0] += 1
        return distance(a, b)
    space.distance = counting
    sampler = MarginSampler(space, threshold, seed=2)
    pairs = sampler.pairs(N_PAIRS // 2)
    assert sampler.fallbacks == 0
    assert all(distance(a, b) >= threshold and a != b for a, b in pairs)
    p = exact_acceptance(kind, threshold)
    rate = len(pairs) / calls[0]
    se = p * math.sqrt((1 - p) / len(pairs))    # of accepted / tries (geometric tries)
    assert abs(rate - p) <= 3 * se + 1e-12, f"{kind}>={threshold}: {rate:.4f} vs {p:.5f}"


def test_documented_acceptance_facts():
    h3, h45 = exact_acceptance("hamming", 3.0), exact_acceptance("hamming", 4.5)
    assert h3 > 0.97, f"Hamming >= 3 accepts {h3:.5f} of random pairs"
    assert h45 < h3 - 0.25, f"Hamming >= 4.5 (>= 5) accepts {h45:.5f}, >= 3 accepts {h3:.5f}"
    g = exact_acceptance("group", 6.7)
    assert 0.3 < g < 0.7, f"group >= 6.7 (the mean distance) accepts {g:.5f}"


# ------------------------------------------------------------- edge semantics
def disconnected(arch) -> bool:
    """No path of non-``none`` edges from the cell input (node 0) to its output (3)."""
    reach = {0}
    for node in (1, 2, 3):                    # edges only go forward: one pass suffices
        if any(dst == node and src in reach and arch[e] != NONE
               for e, (dst, src) in enumerate(EDGES)):
            reach.add(node)
    return 3 not in reach


def test_disconnection_rule_on_hand_examples():
    assert disconnected((0,) * 6)
    assert not disconnected((0, 0, 0, 1, 0, 0))                  # 0 -> 3 directly
    assert not disconnected((3, 0, 0, 0, 1, 0))                  # 0 -> 1 -> 3
    assert not disconnected((0, 4, 0, 0, 0, 2))                  # 0 -> 2 -> 3
    assert not disconnected((1, 0, 3, 0, 0, 2))                  # 0 -> 1 -> 2 -> 3
    assert disconnected((1, 1, 3, 0, 0, 0))                      # node 3 fed by none only
    assert disconnected((0, 0, 3, 0, 1, 3))                      # nodes 1, 2 unreachable


def test_disconnected_archs_are_exactly_the_chance_level_ones():
    gt = load_ground_truth()
    codes = {encode(a): disconnected(a) for a in all_archs()}
    assert set(codes) == set(gt)
    cut = {c for c, d in codes.items() if d}
    chance = {c for c, g in gt.items() if g.valid <= CHANCE}
    detail = (f"{len(cut)} disconnected, {len(chance)} at <= {CHANCE}%; "
              f"disconnected above: {[(c, gt[c].valid) for c in sorted(cut - chance)[:5]]}; "
              f"connected at chance: {[(c, gt[c].valid) for c in sorted(chance - cut)[:5]]}")
    assert cut == chance, detail
    # the count, independently: the four 0 -> 3 paths, written out as edge indices
    paths = [(3,), (0, 4), (1, 5), (0, 2, 5)]
    count = sum(4 ** sum(alive) for alive in itertools.product((0, 1), repeat=6)
                if not any(all(alive[e] for e in path) for path in paths))
    assert len(cut) == count == 341, detail
    # a wide gap, so the threshold is not tuned: chance ~10% vs the worst connected net
    assert max(gt[c].valid for c in cut) < 11.0
    assert min(gt[c].valid for c in set(gt) - cut) > 30.0


def test_supernet_logits_of_disconnected_archs_ignore_the_input():
    torch.manual_seed(0)
    net = NB201Supernet(num_classes=10, C=4, N=1)
    x = torch.randn(8, 3, 32, 32)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    rng = random.Random(0)
    for _ in range(3):               # move weights and BN statistics off their init
        net.sample_random(rng)
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    net.eval()
    cut = [a for a in all_archs() if disconnected(a)]
    archs = [(0,) * 6, (0, 0, 3, 0, 1, 3), (1, 1, 3, 0, 0, 0)] + random.Random(1).sample(cut, 5)
    a, b = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for arch in archs:
            assert disconnected(arch)
            net.set_arch(arch)
            assert torch.equal(net(a), net(b)), arch
        # control: connected archs do see the image
        for arch in [(0, 0, 0, 1, 0, 0), (1, 0, 3, 0, 0, 2), net.space.largest()]:
            net.set_arch(arch)
            assert not torch.allclose(net(a), net(b)), arch

"""NAS-Bench-201 space, networks, supernet and shipped ground truth."""
import random

import pytest
import torch

import track1  # noqa: F401
from track1.registry import build_supernet
from track1.nb201.ground_truth import accuracy, fixed_subset, load_ground_truth
from track1.nb201.network import OPS
from track1.nb201.space import (NUM_ARCHS, NB201CodeError, NB201Space, all_archs, count_costs,
                                decode, encode, group_distance)
from track1.nb201.supernet import NB201Supernet
from track1.nas.space import SearchSpace, SupernetProtocol

EXAMPLE = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
           "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")


def test_space_implements_protocol_and_round_trips_every_arch():
    space = NB201Space()
    assert isinstance(space, SearchSpace)
    archs = list(all_archs())
    assert len(archs) == NUM_ARCHS == 15625
    assert all(decode(encode(a)) == a for a in archs)
    assert decode(EXAMPLE) == (3, 3, 4, 1, 3, 1)
    assert space.largest() == (3,) * 6 and space.smallest() == (1,) * 6


def test_every_ground_truth_string_decodes_and_table_is_complete():
    gt = load_ground_truth()
    assert len(gt) == 15625
    assert {encode(decode(k)) for k in gt} == set(gt)
    assert 80 < accuracy(EXAMPLE) < 95


@pytest.mark.parametrize("bad, words", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "3 '+'-separated"),
    ("|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     "edge 0->1 has unknown op 'conv'"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "edge 1->2"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 input edge"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
])
def test_decode_errors_name_the_place_and_rule(bad, words):
    with pytest.raises(NB201CodeError, match=None) as err:
        decode(bad)
    assert words in str(err.value)


def test_group_and_hamming_distance():
    a = (3, 3, 3, 3, 3, 3)
    assert group_distance(a, a) == 0
    assert group_distance(a, (2, 3, 3, 3, 3, 3)) == 0.5  # conv1x1 vs conv3x3: same group
    assert group_distance(a, (1, 3, 3, 3, 3, 3)) == 2.0  # conv vs skip: other group
    assert group_distance((0,) * 6, (4,) * 6) == 3.0  # none vs pool: same group
    assert NB201Space(distance="hamming").distance(a, (1, 2, 3, 3, 3, 3)) == 2
    # the mean random-pair distance is about the paper's mu = 6.7
    rng = random.Random(0)
    space = NB201Space()
    mean = sum(space.distance(space.sample(rng), space.sample(rng)) for _ in range(4000)) / 4000
    assert 6.0 < mean < 7.4
    with pytest.raises(ValueError, match="unknown distance"):
        NB201Space(distance="cosine")


def test_analytic_costs_match_built_network_and_table():
    space = NB201Space()
    gt = load_ground_truth()
    rng = random.Random(1)
    for _ in range(20):
        arch = space.sample(rng)
        net = space.build(arch)
        assert space.cost(arch)["params"] == sum(p.numel() for p in net.parameters())
    # the table's params_mb agrees exactly for the largest arch and the example
    for code in (encode(space.largest()), EXAMPLE):
        assert abs(count_costs(decode(code))["params"] / 1e6 - gt[code].params_mb) < 1e-6
    assert space.cost(space.largest())["flops"] > space.cost(space.smallest())["flops"]


def test_standalone_network_shapes():
    net = NB201Space().build(EXAMPLE, num_classes=7)
    x = torch.randn(2, 3, 32, 32)
    assert net.forward_features(x).shape == (2, 64, 8, 8)
    assert net(x).shape == (2, 7)


def test_supernet_registry_and_extract_equals_path_exactly():
    torch.manual_seed(0)
    net = build_supernet("nb201", {"num_classes": 10, "C": 8, "N": 1})
    assert isinstance(net, NB201Supernet) and isinstance(net, SupernetProtocol)
    x = torch.randn(4, 3, 32, 32)
    rng = random.Random(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(4):  # move weights and BN stats away from their initial values
        net.sample_random(rng)
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    net.eval()
    for arch in [net.space.largest(), (0,) * 6, decode(EXAMPLE), net.space.sample(rng)]:
        net.set_arch(arch)
        static = net.extract().eval()
        assert static.arch == arch
        assert torch.equal(net(x), static(x))
        assert sum(p.numel() for p in static.parameters()) == net.space.cost(arch)["params"]
    net.set_arch(EXAMPLE)
    assert net.arch == decode(EXAMPLE)
    with pytest.raises(ValueError, match="6 op indices"):
        net.set_arch((9, 0, 0, 0, 0, 0))


def test_all_none_cells_give_input_independent_logits():
    net = NB201Space(C=8, N=1).build((0,) * 6).eval()
    a, b = net(torch.randn(1, 3, 32, 32)), net(torch.randn(1, 3, 32, 32))
    assert torch.equal(a, b)
    assert OPS[0] == "none"


def test_fixed_subset_is_deterministic_distinct_and_seeded():
    s = fixed_subset(1000, seed=0)
    assert s == fixed_subset(1000, seed=0) and len(set(s)) == 1000
    assert s != fixed_subset(1000, seed=1)
    assert len(fixed_subset(20000)) == 15625

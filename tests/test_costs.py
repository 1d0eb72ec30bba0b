"""Cost counts: docs/REFERENCE.md §2 to the unit, vectorised == scalar == real modules, fvcore."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

from track1.resnet48.costs import count_costs, count_costs_many, digit_matrix
from track1.resnet48.static import StaticResNet
from track1.resnet48.arch import decode, random_arch

# docs/REFERENCE.md §2: arch -> (Paddle-convention FLOPs, conv+fc MACs, torch params)
REFERENCE_COSTS = {
    "155851" + "11" * 23: (5_292_349_440, 5_282_238_464, 34_043_688),
    "1222277777000000777700000077770000000000007777000000": (946_450_400, 942_812_672, 5_833_080),
    "1458211151515100563636565641111131414141516141000000": (3_501_143_072, 3_493_012_480, 16_528_904),
    "1252233313000000223212122253130000000000006515000000": (2_110_725_120, 2_105_099_904, 9_621_328),
}


@pytest.mark.parametrize("code", list(REFERENCE_COSTS))
def test_spec_table_exact(code):
    flops, macs, params = REFERENCE_COSTS[code]
    costs = count_costs(decode(code))
    assert (costs["flops"], costs["macs"], costs["params"]) == (flops, macs, params)
    assert costs["macs_unpadded"] < macs  # border taps of the 3x3 and 7x7 convs left out


def test_vectorised_equals_scalar_and_random_mean(official_codes):
    codes = official_codes[:300]
    many = count_costs_many(codes)
    for i in range(0, 300, 37):
        assert {k: int(v[i]) for k, v in many.items()} == count_costs(codes[i])
    rng = random.Random(0)
    sample = count_costs_many([random_arch(rng).code for _ in range(2000)])
    gmacs = sample["macs"] / 1e9  # docs/REFERENCE.md §2: about 2.6 GMACs, 1.1-4.4
    assert 2.4 < gmacs.mean() < 2.8 and gmacs.min() > 0.9 and gmacs.max() < 4.6


def test_digit_matrix_rejects_wrong_lengths():
    with pytest.raises(ValueError, match="52"):
        digit_matrix(["123"])


@pytest.mark.parametrize("tied", [True, False])
def test_params_equal_the_real_module(tied):
    rng = random.Random(1 if tied else 2)
    for _ in range(5):
        code = random_arch(rng).code
        if not tied:  # perturb one conv2 code so the stage changes width mid-way
            i = 6 + 2 * 5 + 3  # stage 2, block 2, conv2
            if int(code[2]) >= 2:
                code = code[:i] + str(int(code[i]) % 7 + 1) + code[i + 1:]
        arch = decode(code, tied=tied)
        for num_classes in (1000, 10):
            net = StaticResNet(arch, num_classes=num_classes)
            assert sum(p.numel() for p in net.parameters()) == \
                count_costs(arch, num_classes=num_classes)["params"]


def _macs_by_hooks(net: torch.nn.Module, size: int, unpadded: bool = False) -> int:
    """Conv + fc MACs of ``net`` counted by forward hooks; with ``unpadded``, a conv's
    (output, tap) pairs that meet real input are counted by convolving ones with ones."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, torch.nn.Conv2d):
            if unpadded:
                ones = torch.ones(1, 1, *inp[0].shape[-2:])
                taps = torch.nn.functional.conv2d(ones, torch.ones(1, 1, *m.kernel_size), None,
                                                  m.stride, m.padding).sum()
                total += int(taps) * m.in_channels * m.out_channels
            else:
                total += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += m.in_features * m.out_features
    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


@pytest.mark.parametrize("size", [224, 32, 64])
def test_macs_equal_module_hooks_at_any_resolution(size):
    rng = random.Random(size)
    for _ in range(3):
        arch = random_arch(rng)
        assert _macs_by_hooks(StaticResNet(arch), size) == count_costs(arch, image_size=size)["macs"]


@pytest.mark.parametrize("size", [224, 32, 20])
def test_unpadded_macs_equal_the_real_taps(size):
    rng = random.Random(100 + size)
    for _ in range(3):
        arch = random_arch(rng)
        costs = count_costs(arch, image_size=size)
        assert _macs_by_hooks(StaticResNet(arch), size, unpadded=True) == costs["macs_unpadded"]
    if size == 32:  # stage 4 runs on 1x1 maps, stage 3 on 2x2: many taps are padding
        assert costs["macs_unpadded"] < 0.8 * costs["macs"]


def test_fvcore_cross_check():
    with warnings.catch_warnings():  # fvcore is a source distribution that warns at import
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis
    code = "1458211151515100563636565641111131414141516141000000"
    flops, macs, _ = REFERENCE_COSTS[code]
    analysis = FlopCountAnalysis(StaticResNet(code).eval(), torch.zeros(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    assert by_op["conv"] + by_op["linear"] == macs  # same conv/fc MACs, counted independently
    assert abs(analysis.total() - flops) / flops < 0.002  # + BN: within 0.2% of Paddle's figure

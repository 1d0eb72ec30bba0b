"""Elastic supernet: dynamic subnet == extracted static model, smoke fwd/bwd, BN maths."""
from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from track1.resnet48.costs import count_costs
from track1.registry import build_supernet
from track1.ops.dynamic_ops import DynamicBatchNorm2d
from track1.resnet48.supernet import ResNet48Supernet
from track1.resnet48.arch import ArchCodeError, decode, random_arch

#: max |dynamic - static| relative to the largest |logit|: float rounding only (convs on
#: 1x1 / 2x2 maps run as one matrix product in the supernet, as F.conv2d in the export)
TOL = 1e-5


def _randomise_bn(net: nn.Module, gen: torch.Generator) -> None:
    """Non-trivial BN affine params and statistics, so slicing mistakes would show."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) + 0.5
            m.bias.data = torch.randn(n, generator=gen) * 0.1
            m.running_mean = torch.randn(n, generator=gen) * 0.1
            m.running_var = torch.rand(n, generator=gen) + 0.5
        elif isinstance(m, nn.PReLU):
            m.weight.data = torch.rand(1, generator=gen)


@pytest.fixture(scope="module")
def supernet() -> ResNet48Supernet:
    torch.manual_seed(0)
    net = ResNet48Supernet(num_classes=10)
    _randomise_bn(net, torch.Generator().manual_seed(0))
    return net.eval()


def _max_diff(net: ResNet48Supernet, code_or_arch, x: torch.Tensor) -> float:
    net.set_arch(code_or_arch)
    static = net.extract()
    with torch.no_grad():
        dynamic = net(x)
        return ((dynamic - static.eval()(x)).abs().max() / dynamic.abs().max()).item()


def test_dynamic_equals_static_random_archs(supernet):
    rng = random.Random(0)
    x = torch.randn(2, 3, 64, 64)
    archs = [random_arch(rng) for _ in range(50)]
    diffs = [_max_diff(supernet, arch, x) for arch in archs]
    assert max(diffs) <= TOL, max(diffs)


def test_dynamic_equals_static_official_archs(supernet, official_codes):
    x = torch.randn(2, 3, 64, 64)
    diffs = [_max_diff(supernet, code, x) for code in official_codes[:30]]
    assert max(diffs) <= TOL, max(diffs)


@pytest.mark.parametrize("activation", ["prelu", "mish", "silu", "selu"])
def test_dynamic_equals_static_other_activations(activation):
    net = ResNet48Supernet(num_classes=7, activation=activation)
    _randomise_bn(net, torch.Generator().manual_seed(1))
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    rng = random.Random(5)
    for _ in range(3):
        assert _max_diff(net, random_arch(rng), x) <= TOL


def test_train_mode_matches_static_and_updates_only_the_prefix():
    net = ResNet48Supernet(num_classes=10).train()
    arch = decode("1252233313000000223212122253130000000000006515000000")
    net.set_arch(arch)
    static = net.extract().train()
    before = net.stem_bn.running_mean.clone()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert (net(x) - static(x)).abs().max().item() <= TOL
    c = arch.stem_channels  # 56 of 64
    assert torch.allclose(net.stem_bn.running_mean[:c], static.stem_bn.running_mean, atol=1e-6)
    assert torch.equal(net.stem_bn.running_mean[c:], before[c:])


def test_cumulative_bn_statistics_are_exact():
    """optim.momentum=None over several batches gives the statistics of all the data at once
    (mean exactly; variance as PyTorch defines it, the mean of per-batch unbiased vars)."""
    bn = DynamicBatchNorm2d(16, momentum=None).train()
    batches = [torch.randn(8, 12, 5, 5) * 3 + 1 for _ in range(4)]
    for b in batches:
        bn(b)
    data = torch.cat(batches)
    assert torch.allclose(bn.running_mean[:12], data.mean((0, 2, 3)), atol=1e-5)
    per_batch_var = torch.stack([b.var((0, 2, 3), unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_var[:12], per_batch_var, atol=1e-4)
    assert torch.equal(bn.running_mean[12:], torch.zeros(4))
    assert int(bn.num_batches_tracked) == 4


@pytest.mark.parametrize("size, batch", [(224, 2), (32, 8)])
def test_forward_backward_smoke(size, batch):
    net = ResNet48Supernet(num_classes=10).train()
    rng = random.Random(size)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    for kind in ("largest", "smallest", "random", "random"):
        net.zero_grad(set_to_none=True)
        arch = getattr(net, f"sample_{kind}")(*(() if kind != "random" else (rng,)))
        out = net(x)
        assert out.shape == (batch, 10)
        loss = nn.functional.cross_entropy(out, y)
        assert torch.isfinite(loss)
        loss.backward()
        d4 = arch.depths[3]
        assert net.stages[3][d4 - 1].conv1.weight.grad is not None
        if d4 < 5:  # blocks past the active depth take no gradient
            assert net.stages[3][d4].conv1.weight.grad is None
        c = arch.stem_channels  # only the active channel prefix takes gradient
        g = net.stem_conv.weight.grad
        assert g[:c].abs().sum() > 0 and (c == 64 or g[c:].abs().sum() == 0)


def test_largest_subnet_params_match_count():
    net = ResNet48Supernet()
    static = net.extract(net.space.largest())
    assert sum(p.numel() for p in static.parameters()) == 34_043_688
    assert sum(p.numel() for p in net.parameters()) == 34_043_688  # the supernet is the largest


def test_untied_arch_is_refused_with_a_clear_error():
    code = "1252233313000000223212122253130000000000006515000000"
    untied = code[:19] + "1" + code[20:]
    net = ResNet48Supernet(num_classes=10)
    with pytest.raises(ArchCodeError, match="tied"):
        net.set_arch(decode(untied, tied=False))
    with pytest.raises(ArchCodeError, match="conv2 tie"):
        net.set_arch(untied)


def test_config_build_and_bad_activation():
    net = build_supernet("track1_resnet48", {"num_classes": 5, "activation": "mish"})
    assert net.fc.out_features == 5 and isinstance(net.stages[0][0].act, nn.Mish)
    with pytest.raises(ValueError, match="unknown activation"):
        ResNet48Supernet(activation="gelu-ish")
    with pytest.raises(ValueError, match="unknown search space"):
        build_supernet("nope", {})


def test_static_costs_match_count_for_extracted():
    net = ResNet48Supernet(num_classes=10)
    arch = random_arch(random.Random(9))
    static = net.extract(arch)
    assert sum(p.numel() for p in static.parameters()) == count_costs(arch, num_classes=10)["params"]


def test_cumulative_factor_never_trusts_a_stale_host_count():
    """Exact cumulative averaging reads the batch count from a host copy (no device sync
    per BN layer); any other write to the buffer must make it fall back to the buffer."""
    torch.manual_seed(0)
    bn, ref = DynamicBatchNorm2d(6), nn.BatchNorm2d(6)
    xs = [torch.randn(5, 6, 4, 4) * (i + 1) + i for i in range(4)]
    for m in (bn, ref):
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.inference_mode():
        for x in xs[:2]:
            bn(x), ref(x)
        # an outside write (a restore, load_state_dict) to both counters: 2 -> 7
        bn.num_batches_tracked.fill_(7)
        ref.num_batches_tracked.fill_(7)
        for x in xs[2:]:
            bn(x), ref(x)
    assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 9
    assert torch.allclose(bn.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(bn.running_var, ref.running_var, atol=1e-6)
    fresh = DynamicBatchNorm2d(6)
    fresh.load_state_dict(bn.state_dict())
    fresh.momentum = None
    ref.train()
    with torch.inference_mode():
        fresh(xs[0]), ref(xs[0])
    assert torch.allclose(fresh.running_mean, ref.running_mean, atol=1e-6)


def test_drop_path_only_in_training_and_off_by_default():
    """model.drop_path (issue 14, item 5): stochastic depth on residual branches while
    training; evaluation (and the default 0) are the plain network."""
    import random as _random
    torch.manual_seed(0)
    plain = ResNet48Supernet(num_classes=10)
    torch.manual_seed(0)
    dropping = ResNet48Supernet(num_classes=10, drop_path=0.5)
    arch = plain.sample_random(_random.Random(3))
    dropping.set_arch(arch)
    x = torch.randn(6, 3, 32, 32)
    plain.eval(), dropping.eval()
    assert torch.equal(plain(x), dropping(x))            # evaluation: no drop
    plain.train(), dropping.train()
    torch.manual_seed(1)
    a = dropping(x)
    assert not torch.allclose(a, plain(x))               # training: branches dropped
    a.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in dropping.parameters())
    with pytest.raises(ValueError, match="drop_path"):
        ResNet48Supernet(drop_path=1.0)

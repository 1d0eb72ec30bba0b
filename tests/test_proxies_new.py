"""MeCo, ZiCo and AZ-NAS: each formula against a hand computation, the authors' protocol
choices that change the value (every module hooked, population std, rank aggregation),
and the proxy report's set scoring."""
from __future__ import annotations

import copy
import csv
import json
import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from track1.nb201.space import NB201Space
from track1.proxies import SET_PROXIES, az_nas, meco, meco_opt, swap, zico
from track1.resnet48.space import ResNet48Space

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ MeCo
def test_min_eig_of_correlation_reads_collinearity():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, 64, generator=g)
    collinear = torch.cat([a, 2 * a, -a])                 # one direction: rank 1
    assert meco.min_eig_of_correlation(collinear) == pytest.approx(0.0, abs=1e-9)
    orthogonal = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    assert meco.min_eig_of_correlation(orthogonal) == pytest.approx(1.0)
    # a constant channel has no correlation: the authors' NaN -> 0 gives a zero row
    with_constant = torch.cat([orthogonal, torch.ones(1, 4)])
    assert meco.min_eig_of_correlation(with_constant) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("channels,positions", [(6, 4), (6, 6), (6, 7), (6, 12), (2, 3)])
def test_min_eig_equals_the_full_eigendecomposition(channels, positions):
    # the singular case (channels > positions - 1) skips the eigendecomposition and must
    # give what it gives, 0 up to rounding; at positions = channels + 1 it is not singular
    g = torch.Generator().manual_seed(channels * 100 + positions)
    feature = torch.randn(channels, positions, generator=g)
    full = float(torch.linalg.eigvalsh(torch.corrcoef(feature.to(torch.float64)))[0])
    assert meco.min_eig_of_correlation(feature) == pytest.approx(full, abs=1e-12)
    if positions > channels:
        assert full > 1e-6


def test_min_eig_of_a_singular_correlation_skips_the_eigendecomposition(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a singular correlation needs no eigendecomposition")
    monkeypatch.setattr(torch.linalg, "eigvalsh", refuse)
    assert meco.min_eig_of_correlation(torch.randn(512, 2, 2)) == 0.0


def test_meco_sums_over_every_module_containers_included():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    alone = meco.score(conv, x)
    assert alone == pytest.approx(meco.min_eig_of_correlation(conv(x[:1])[0].detach()))
    # a container's output is counted as well (the authors hook every named module),
    # and a pooled head adds nothing
    net = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    wrapped = nn.Sequential(nn.Sequential(conv), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert meco.score(net, x) == pytest.approx(alone)
    assert meco.score(wrapped, x) == pytest.approx(2 * alone)
    with pytest.raises(ValueError, match="shrinks to 1x1"):
        meco.score(nn.Sequential(nn.Conv2d(3, 4, 8), nn.BatchNorm2d(4)), x)
    # only the first image counts
    assert meco.score(conv, torch.cat([x[:1], 5 * torch.randn(3, 3, 8, 8)])) == pytest.approx(alone)


def test_meco_opt_correlates_drawn_channels_scaled_and_sees_wide_layers():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 24, 3, padding=1)      # 24 channels over 4 x 4 = 16 positions
    x = torch.randn(2, 3, 4, 4)
    feature = conv(x[:1])[0].detach()
    drawn = torch.randperm(24, generator=torch.Generator().manual_seed(7))[:8]
    expected = meco.min_eig_of_correlation(feature[drawn]) * 24 / 8
    assert meco_opt.score(conv, x, seed=7) == pytest.approx(expected)
    # MeCo's 24 x 24 correlation over 16 positions is singular: it adds 0 there
    assert meco.score(conv, x) == 0.0 and expected > 0.01
    assert meco_opt.score(conv, x, seed=7) == meco_opt.score(conv, x, seed=7) != meco_opt.score(conv, x, seed=8)
    # with at most `channels` channels everywhere, it is MeCo
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1))
    assert meco_opt.score(net, x, seed=1) == pytest.approx(meco.score(net, x))
    with pytest.raises(ValueError, match="at least 2 channels"):
        meco_opt.score(net, x, channels=1)


# ------------------------------------------------------------------------------ ZiCo
def test_zico_formula_by_hand():
    # one layer, two weights, two parts: mean|g| = (2, 2), population std = (1, 0):
    # only the first weight varies, 2 / 1 = 2, log 2; a layer seen once adds nothing
    layer = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])]
    assert zico.zico_of_gradients([layer]) == pytest.approx(math.log(2.0))
    assert zico.zico_of_gradients([layer, [torch.tensor([5.0, 1.0])]]) == pytest.approx(math.log(2.0))
    assert zico.zico_of_gradients([[torch.zeros(3), torch.zeros(3)]]) == 0.0


def test_zico_uses_the_gradients_of_each_part():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    grads: list[list[torch.Tensor]] = [[], []]
    for xb, yb in zip(x.chunk(2), y.chunk(2)):
        net.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        grads[0].append(net[0].weight.grad.flatten().clone())
        grads[1].append(net[2].weight.grad.flatten().clone())
    net.zero_grad(set_to_none=True)
    assert zico.score(net, x, y) == pytest.approx(zico.zico_of_gradients(grads))
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(ValueError, match="at least 2 parts"):
        zico.score(net, x, y, batches=1)


# ------------------------------------------------------------------------------ AZ-NAS
def test_isotropy_is_the_entropy_of_the_spectrum():
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(4096, 8, generator=g).reshape(64, 8, 8, 8)   # B x C x H x W, white
    assert az_nas.isotropy(iso) == pytest.approx(math.log(8), abs=0.02)
    one_direction = torch.randn(64, 1, 8, 8, generator=g) * torch.ones(1, 8, 1, 1)
    assert az_nas.isotropy(one_direction) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(az_nas.isotropy(torch.zeros(4, 8, 2, 2)))


@pytest.mark.parametrize("images,channels,side", [(2, 16, 2), (2, 16, 3), (4, 8, 2), (8, 4, 4)])
def test_isotropy_of_few_observations_equals_the_covariance_spectrum(images, channels, side):
    # fewer observations (images x positions) than channels goes through the Gram matrix
    g = torch.Generator().manual_seed(images + channels + side)
    f = torch.randn(images, channels, side, side, generator=g, dtype=torch.float64)
    rows = f.permute(0, 2, 3, 1).reshape(-1, channels)
    rows = rows - rows.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(rows.t() @ rows / rows.shape[0]).clamp(min=0.0)
    p = eig / eig.sum()
    assert az_nas.isotropy(f) == pytest.approx(float(-(p * torch.log(p + 1e-8)).sum()), abs=1e-9)


@pytest.mark.parametrize("n,p,q", [(3, 8, 6), (6, 8, 6), (7, 8, 6), (20, 8, 6), (5, 5, 9)])
def test_largest_singular_value_of_product_equals_the_plain_svd(n, p, q):
    g = torch.Generator().manual_seed(n * p * q)
    a = torch.randn(n, p, generator=g, dtype=torch.float64)
    b = torch.randn(n, q, generator=g, dtype=torch.float64)
    plain = float(torch.linalg.svdvals(a.t() @ b).max())
    assert az_nas.largest_singular_value_of_product(a, b) == pytest.approx(plain, rel=1e-10)


def test_jacobian_score_reads_the_gain_of_a_block():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, 16, 16, requires_grad=True)
    assert az_nas.jacobian_score(x, x * 1.0, g) == -math.inf        # an identity block
    # gain 2: s = 2 (up to the sampling of 65,536 Rademacher rows), -2 - 1/2 + 2
    assert az_nas.jacobian_score(x, 2.0 * x, g) == pytest.approx(-0.5, abs=0.05)
    assert az_nas.jacobian_score(x, 1.1 * x, g) > az_nas.jacobian_score(x, 3.0 * x, g)
    down = nn.functional.avg_pool2d(x, 2)                            # stride 2: unshuffled
    assert math.isfinite(az_nas.jacobian_score(x, down, g))
    assert az_nas.jacobian_score(x, torch.zeros(64, 8, 8, 8), g) < -1e5   # no path at all


def test_aggregate_sums_log_rank_fractions():
    rows = [{"a": 1.0, "b": 30.0}, {"a": 3.0, "b": 10.0}, {"a": 2.0, "b": 20.0}]
    got = az_nas.aggregate(rows, views=("a", "b"))
    want = [math.log(1 / 3) + math.log(3 / 3), math.log(3 / 3) + math.log(1 / 3),
            math.log(2 / 3) + math.log(2 / 3)]
    assert got == pytest.approx(want)
    with pytest.raises(ValueError, match="lack"):
        az_nas.aggregate([{"a": 1.0}])
    with pytest.raises(TypeError, match="set of archs"):
        az_nas.score(nn.Linear(2, 2), torch.zeros(1, 2))
    assert "az_nas" in SET_PROXIES
    # against a fixed reference: the rank among the reference and itself, over R + 1
    ref = [{"a": 1.0, "b": 10.0}, {"a": 2.0, "b": 20.0}, {"a": 3.0, "b": 30.0}]
    assert az_nas.against_reference([{"a": 2.5, "b": 5.0}, {"a": 2.0, "b": 40.0}], ref,
                                    views=("a", "b")) == pytest.approx(
        [math.log(3 / 4) + math.log(1 / 4), math.log(2.5 / 4) + math.log(4 / 4)])


@pytest.mark.parametrize("space", ["nb201", "track1"])
def test_az_nas_components_are_reproducible_and_touch_nothing(space):
    torch.manual_seed(0)
    if space == "nb201":
        net, x = NB201Space(C=8, N=1).build(NB201Space(C=8, N=1).largest()), torch.randn(2, 3, 16, 16)
    else:
        net, x = ResNet48Space().build(ResNet48Space().smallest(), num_classes=10), torch.randn(2, 3, 32, 32)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    a = az_nas.components(net, x, seed=1, batch=8)
    assert a == az_nas.components(net, x, seed=1, batch=8)
    assert a != az_nas.components(net, x, seed=2, batch=8)
    assert set(a) == set(az_nas.COMPONENTS) and all(math.isfinite(v) for v in a.values())
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("space", ["nb201", "track1"])
def test_az_nas_in_place_scores_as_the_copy(space):
    """``in_place=True`` re-initialises the given network instead of a copy: the same
    components, and the network is the one scored (its weights are gone)."""
    torch.manual_seed(0)
    if space == "nb201":
        net, x = NB201Space(C=8, N=1).build(NB201Space(C=8, N=1).largest()), torch.randn(2, 3, 16, 16)
    else:
        net, x = ResNet48Space().build(ResNet48Space().smallest(), num_classes=10), torch.randn(2, 3, 32, 32)
    plain = az_nas.components(net, x, seed=4, batch=8)
    throwaway = copy.deepcopy(net)
    assert az_nas.components(throwaway, x, seed=4, batch=8, in_place=True) == plain
    assert not torch.equal(next(throwaway.parameters()), next(net.parameters()))


def test_az_nas_puts_a_dead_network_last():
    space = NB201Space(C=8, N=1)
    x = torch.randn(2, 3, 16, 16)
    rows = []
    for arch in (space.largest(), (0,) * 6):     # all-none cells: constant features
        torch.manual_seed(0)
        net = space.build(arch)
        rows.append(az_nas.components(net, x, seed=0, batch=8) | {"flops": space.cost(arch)["flops"]})
    assert rows[1]["expressivity"] == -math.inf
    best, dead = az_nas.aggregate(rows)
    assert best > dead


@pytest.mark.filterwarnings("ignore:swap. every count reached its ceiling")  # 5 images, 32 patterns
@pytest.mark.parametrize("n", [5, 62, 63, 130])
def test_swap_counts_the_distinct_unit_patterns(n):
    """SWAP by brute force: the distinct columns of the (images x units) firing matrix
    over every ReLU, for batches that fit one packed word and several; the model and the
    global RNG untouched; the mean over Gaussian re-initialisations; the size factor."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 36, 3),
                        nn.ReLU())           # a 2-D ReLU: not counted
    # three distinct images repeated: at most 8 patterns, so the count is not the units
    x = torch.randn(3, 3, 6, 6)[torch.arange(n) % 3]
    state = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    got = swap.score(net, x, gaussian=False)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    copy = __import__("copy").deepcopy(net).train()
    with torch.no_grad():
        h1 = copy[2](copy[1](copy[0](x)))
        h2 = copy[4](copy[3](h1))
    fire = torch.cat([h1.reshape(n, -1), h2.reshape(n, -1)], dim=1) > 0
    assert got == float(torch.unique(fire.t(), dim=0).shape[0])
    assert 1 < got < fire.shape[1]
    x5 = torch.randn(5, 3, 6, 6)[torch.arange(n) % 5]      # up to 32 patterns
    one = [swap.score(net, x5, seed=s, repeats=1) for s in (3, 4)]
    assert one[0] != one[1] and swap.score(net, x5, seed=3, repeats=1) == one[0]
    four = swap.score(net, x5, seed=3, repeats=4)
    assert four != one[0] and four * 4 == int(four * 4)       # a mean of 4 counts
    kparams = sum(p.numel() for p in net.parameters()) / 1e3
    assert swap.score(net, x, gaussian=False, mu=kparams + 0.1, sigma=0.02) == \
        pytest.approx(got * math.exp(-0.01 / 0.02))


def test_swap_packing_keeps_rows_apart():
    bits = torch.rand(500, 130) > 0.5
    bits[7] = bits[3]
    packed = swap.pack(bits)
    assert packed.shape == (500, 3) and bool((packed >= 0).all())
    assert swap.distinct_rows(packed) == torch.unique(bits, dim=0).shape[0] == 499


@pytest.mark.parametrize("n", [1, 7, 16, 20])
def test_swap_bitmap_counts_as_the_sort_does(n):
    """The table of 2^n flags counts the distinct patterns over every layer added, as
    torch.unique over all of them does: repeats inside a layer and across layers counted
    once, a reset forgetting them."""
    g = torch.Generator().manual_seed(n)
    layers = [torch.rand(n, units, generator=g) > 0.5 for units in (300, 1, 2000)]
    layers.append(layers[0][:, :50])                  # patterns a later layer repeats
    flat = torch.cat(layers, dim=1)
    want = torch.unique(flat.t(), dim=0).shape[0]
    fast, plain = swap.PatternCounter(n), swap.PatternCounter(n, bitmap_max=0)
    assert fast.bitmap and not plain.bitmap
    for counter in (fast, plain):
        for fire in layers:
            counter.add(fire)
        assert counter.count() == want
        counter.reset()
        counter.add(layers[1])
        assert counter.count() == 1
    assert swap.codes(flat).tolist() == [sum(int(b) << i for i, b in enumerate(col))
                                         for col in flat.t().tolist()]
    with pytest.raises(ValueError, match="at most 62 rows"):
        swap.codes(torch.zeros(63, 2, dtype=torch.bool))


def test_swap_fast_count_scores_as_the_sort(monkeypatch):
    """SWAP of a NAS-Bench-201 network on the authors' 16 images: the same score with
    the table of flags as with torch.unique over the packed patterns."""
    torch.manual_seed(0)
    net = NB201Space(C=8, N=1).build(NB201Space(C=8, N=1).largest())
    x = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    fast = swap.score(net, x, seed=2, repeats=2)
    monkeypatch.setattr(swap, "BITMAP_MAX_IMAGES", 0)
    assert swap.score(net, x, seed=2, repeats=2) == fast
    assert 1 < fast < 2 ** 16


def test_swap_warns_at_its_ceiling():
    """With 2 images there are 4 patterns; a network with many units reaches all 4 at
    every re-init and says so; a batch below its ceiling does not warn."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(RuntimeWarning, match=r"ceiling 2\^2 = 4"):
        assert swap.score(net, x, seed=0, repeats=2) == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert swap.score(net, torch.randn(12, 3, 8, 8), seed=0, repeats=1) < 2 ** 12


def test_proxy_report_scores_a_set_and_resumes(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import proxy_report
    finally:
        sys.path.pop(0)
    args = ["--archs", "3", "--proxies", "flops,meco,az_nas", "--batch", "4",
            "--naswot-batch", "4", "--threads", "1", "--out", str(tmp_path)]
    assert proxy_report.main(args) == 0
    (cache,) = tmp_path.glob("cache_nb201_*.jsonl")
    lines = [json.loads(l) for l in cache.read_text().splitlines()]
    assert len(lines) == 3 and all("az_expressivity" in l and "meco" in l for l in lines)
    (table,) = tmp_path.glob("nb201_fixed3_*.csv")
    rows = list(csv.DictReader(table.open()))
    want = az_nas.aggregate([{k: l[f"az_{k}"] for k in az_nas.COMPONENTS} | {"flops": l["flops"]}
                             for l in lines])
    assert [float(r["az_nas"]) for r in rows] == pytest.approx(want)
    # a second run finds everything cached: nothing appended
    assert proxy_report.main(args) == 0
    assert len(cache.read_text().splitlines()) == 3


def test_proxy_report_reads_a_track1_proxy_cache(tmp_path):
    """``--track1-cache``: the proxies' mutual Kendall over the archs of a proxy-cache file
    that hold every proxy asked for (an arch's lines joined; an arch lacking one is left
    out; a torn last line ignored), written as the report's Track 1 part."""
    from scipy.stats import kendalltau
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import proxy_report
    finally:
        sys.path.pop(0)
    rng = torch.Generator().manual_seed(0)
    vals = torch.rand(6, 3, generator=rng).tolist()
    lines = [{"key": f"arch{i}", "arch": "x", "flops": f, "params": p} for i, (f, p, _) in enumerate(vals)]
    lines += [{"key": f"arch{i}", "meco": m, "meco_batch": 8, "meco_resolution": 64}
              for i, (_, _, m) in enumerate(vals[:5])]                 # arch5 lacks meco
    cache = tmp_path / "t1.jsonl"
    cache.write_text("".join(json.dumps(l) + "\n" for l in lines) + '{"key": "arch9", "fl')
    out = tmp_path / "rep"
    assert proxy_report.main(["--archs", "0", "--proxies", "flops,params,meco",
                              "--track1-cache", str(cache), "--out", str(out)]) == 0
    t1 = json.loads((out / "summary_track1.json").read_text())["track1"]
    assert (t1["archs"], t1["of"], t1["resolution"], t1["batch"]) == (5, 6, 64, 8)
    cols = list(zip(*vals[:5]))
    assert t1["mutual_kendall"]["flops"]["meco"] == pytest.approx(
        kendalltau(cols[0], cols[2]).statistic, abs=1e-4)
    assert t1["mutual_kendall"]["params"]["params"] == 1.0
    assert "held by a proxy-cache file" in t1["selection"]      # a part of the list
    with pytest.raises(SystemExit, match="at least 2"):
        proxy_report.main(["--archs", "0", "--proxies", "flops,zico", "--track1-cache",
                           str(cache), "--out", str(out)])
    # a file holding every subnet of the official list says so
    from track1.resnet48.official import load_arch_list
    keys = list(load_arch_list(validate=False))
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(json.dumps({"key": k, "flops": i, "params": -i}) + "\n"
                             for i, k in enumerate(keys)))
    assert proxy_report.main(["--archs", "0", "--proxies", "flops,params", "--track1-cache",
                              str(whole), "--out", str(out)]) == 0
    t1 = json.loads((out / "summary_track1.json").read_text())["track1"]
    assert t1["archs"] == len(keys) and t1["selection"].startswith("(the whole official")
    assert t1["mutual_kendall"]["flops"]["params"] == -1.0


def test_proxy_report_shards_merge_into_the_single_run(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import proxy_report
    finally:
        sys.path.pop(0)
    common = ["--archs", "4", "--proxies", "flops,meco", "--batch", "4", "--naswot-batch", "4",
              "--threads", "1"]
    for k in range(2):
        assert proxy_report.main(common + ["--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}")]) == 0
    merged = tmp_path / "all"
    merged.mkdir()
    (name,) = {p.name for p in (tmp_path / "s0").glob("cache_*.jsonl")}
    (merged / name).write_text("".join((tmp_path / f"s{k}" / name).read_text() for k in range(2)))
    assert proxy_report.main(common + ["--out", str(merged)]) == 0
    assert len((merged / name).read_text().splitlines()) == 4          # nothing scored again
    assert proxy_report.main(common + ["--out", str(tmp_path / "one")]) == 0
    table = lambda d: next(d.glob("nb201_fixed4_*.csv")).read_text()
    assert table(merged) == table(tmp_path / "one")
    with pytest.raises(SystemExit):
        proxy_report.main(common + ["--shard", "2/2", "--out", str(tmp_path / "bad")])


def test_teacher_distils_the_values_the_report_measured(tmp_path):
    """The ranking teacher computes a proxy exactly as the proxy report scored it (the
    report's real-image probe batch, each proxy's count of its images from
    ``track1.proxies.protocol``, the arch's own seeded weights), whatever the global RNG
    and whatever other priors share its probe: the report's Kendall is the teacher's."""
    from track1.nas.teacher import Teacher
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import proxy_report
    finally:
        sys.path.pop(0)
    # az_nas first: it re-initialises the report's network in place, so it must run last
    assert proxy_report.main(["--archs", "2", "--proxies", "az_nas,meco,naswot,synflow",
                              "--threads", "1", "--out", str(tmp_path)]) == 0
    (cache,) = tmp_path.glob("cache_nb201_*.jsonl")
    rows = [json.loads(l) for l in cache.read_text().splitlines()]
    space = NB201Space()
    for name in ("meco", "naswot", "synflow"):
        torch.manual_seed(123)                     # the trainer's RNG is wherever it is
        alone = Teacher(space, name)               # a probe of this proxy's images only
        both = Teacher(space, f"{name}+meco" if name != "meco" else "meco+naswot")
        for row in rows:
            arch = space.decode(row["arch"])
            assert alone.prior(name, arch) == row[name]
            assert both.prior(name, arch) == row[name]

"""Proxy discovery: statistics, programs, evolution and the NB201 driver's splits.
Each piece against a hand computation or the rule it promises."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from track1.proxies import get_proxy
from track1.proxies.discover.evolve import evolve
from track1.proxies.discover.program import (CHOICES, GENES, Program, evaluate, mutate, pad,
                                             random_program, score_stats)
from track1.proxies.discover.stats import STAT_NAMES, layer_stats

COL = {n: i for i, n in enumerate(STAT_NAMES)}


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def test_layer_stats_match_the_tensors_they_summarise():
    net = _net()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 3, (6,))
    s = layer_stats(net, x, y)
    assert s.shape == (2, len(STAT_NAMES))
    ref = _net()
    out = {}

    def keep(m, i, o):
        o.retain_grad()
        out["a"] = o
    ref[0].register_forward_hook(keep)
    nn.functional.cross_entropy(ref(x), y).backward()
    w, g, a = ref[0].weight.detach(), ref[0].weight.grad, out["a"].detach()
    a_grad = out["a"].grad
    assert s[0, COL["w_norm"]] == pytest.approx(float(w.norm()))
    assert s[0, COL["g_mean_abs"]] == pytest.approx(float(g.abs().mean()))
    assert s[0, COL["wg_abs"]] == pytest.approx(float((w * g).abs().sum()), rel=1e-5)
    # a sum of terms that cancel (about 5e-7 from terms summing to 0.45 in absolute value):
    # the reference in float64, as the stats are, so the float32 order of summation (which
    # changes with the thread count) does not decide the test
    terms = a.double() * a_grad.double()
    assert s[0, COL["ad"]] == pytest.approx(float(terms.sum()), abs=1e-9 * float(terms.abs().sum()))
    assert s[0, COL["a_std"]] == pytest.approx(float(a.std(unbiased=False)), rel=1e-5)
    assert s[0, COL["channels"]] == 4 and s[0, COL["fan_in"]] == 27 and s[0, COL["spatial"]] == 64
    assert s[1, COL["spatial"]] == 1 and s[1, COL["a_mineig"]] == 0.0
    assert all(p.grad is None for p in net.parameters())          # the caller's model untouched


def test_program_evaluates_the_formula_it_prints():
    stats = [np.arange(3 * len(STAT_NAMES), dtype=float).reshape(3, -1) + 1.0,
             np.ones((2, len(STAT_NAMES)))]
    padded, mask = pad(stats)
    assert padded.shape == (2, 3, len(STAT_NAMES)) and mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    p = Program("w_norm", "log", "g_std", "square", "mul", "id", "sum")
    assert p.formula == "sum over layers of log(w_norm) * square(g_std)"
    a, b = COL["w_norm"], COL["g_std"]
    want = [sum(math.log(r[a]) * r[b] ** 2 for r in stats[0]), 0.0]
    assert evaluate(p, padded, mask) == pytest.approx(want, abs=1e-9)
    q = Program("w_norm", "id", "g_std", "id", "first", "id", "max")
    assert evaluate(q, padded, mask).tolist() == [stats[0][:, a].max(), 1.0]  # padding ignored
    assert score_stats(q, stats[0]) == stats[0][:, a].max()
    assert Program("w_norm", "id", "g_std", "id", "div", "id", "logsum").formula == \
        "log(sum over layers of |w_norm / g_std|)"
    # a score that is not finite is the worst, never NaN
    dead = Program("w_norm", "id", "g_std", "id", "sub", "log", "sum")
    assert evaluate(dead, *pad([np.ones((2, len(STAT_NAMES)))]))[0] == pytest.approx(2 * math.log(1e-12))
    with pytest.raises(ValueError, match="gene aggregate='median'"):
        Program("w_norm", "id", "g_std", "id", "mul", "id", "median")
    assert Program.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_mutation_changes_exactly_one_gene():
    rng = random.Random(0)
    p = random_program(rng)
    for _ in range(50):
        q = mutate(p, rng)
        assert sum(getattr(p, g) != getattr(q, g) for g in GENES) == 1
        assert all(getattr(q, g) in CHOICES[g] for g in GENES)


def test_evolution_finds_a_planted_signal_and_keeps_diversity():
    rng = np.random.default_rng(0)
    n, layers = 60, 4
    stats = np.abs(rng.normal(size=(n, layers, len(STAT_NAMES))))
    truth = stats[:, :, COL["g_std"]].sum(axis=1)              # a planted program's value
    mask = np.ones((n, layers), dtype=bool)
    from scipy.stats import kendalltau

    def fitness(scores):
        return float(kendalltau(scores, truth).statistic)
    out = evolve(stats, mask, fitness, population=20, sample=5, cycles=1500, seed=1)
    assert out.best.fitness > 0.95
    assert fitness(evaluate(out.best.program, stats, mask)) == pytest.approx(out.best.fitness)
    assert out.rejected_similar > 0                          # look-alike children were redrawn
    assert [h["best"] for h in out.history] == sorted(h["best"] for h in out.history)
    again = evolve(stats, mask, fitness, population=20, sample=5, cycles=1500, seed=1)
    assert again.best.program == out.best.program            # seeded
    with pytest.raises(ValueError, match="diversity"):
        evolve(stats, mask, fitness, diversity=0.0)


def test_the_discovered_proxy_scores_like_its_program(tmp_path):
    net = _net()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 3, (6,))
    from track1.proxies.discovered import PROGRAM, load_program
    p = load_program(None)
    assert p == Program.from_dict(PROGRAM)
    assert get_proxy("discovered")(net, x, y) == pytest.approx(score_stats(p, layer_stats(net, x, y)))
    other = Program("w_norm", "id", "g_std", "id", "first", "id", "sum")
    path = tmp_path / "program.json"
    path.write_text(json.dumps({"program": other.to_dict(), "formula": other.formula}))
    assert get_proxy("discovered")(net, x, y, program=str(path)) == pytest.approx(
        float(layer_stats(net, x, y)[:, COL["w_norm"]].sum()))


def test_probes_average_the_network_and_fresh_inits_on_shares_of_the_batch():
    """``probe_stats``: probe 0 is the network as given on the first share of the images,
    probe k >= 1 a copy re-initialised from seed + k (PyTorch's default init, the global
    RNG untouched) on the k-th share; the proxy scores the program on their mean."""
    from track1.proxies.discover.stats import probe_net, probe_stats
    net = _net()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 3, (6,))
    assert np.array_equal(probe_stats(net, x, y, seed=5), layer_stats(net, x, y, seed=5))
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    two = probe_stats(net, x, y, seed=5, probes=2)
    assert torch.rand(1) == before                                   # global RNG untouched
    fresh = _net()
    torch.manual_seed(5 + 1)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    assert torch.equal(probe_net(net, 1, 5)[0].weight, fresh[0].weight)
    assert not torch.equal(fresh[0].weight, net[0].weight)
    want = (layer_stats(net, x[:3], y[:3], seed=5) + layer_stats(fresh, x[3:], y[3:], seed=5)) / 2
    np.testing.assert_allclose(two, want, rtol=1e-12)
    p = Program("w_norm", "id", "a_std", "log", "mul", "id", "sum")
    assert get_proxy("discovered")(net, x, y, seed=5, program=p.to_dict(), probes=2) == \
        pytest.approx(score_stats(p, want))
    with pytest.raises(ValueError, match="equal shares"):
        probe_stats(net, x[:5], y[:5], probes=2)


def test_the_driver_averages_its_cached_probes_as_the_proxy_does(tmp_path):
    """``discover(probes=2)`` caches each probe's statistics and evolves on their mean:
    for an arch, the mean of its two cached files equals ``probe_stats`` of the same
    network on the same images (the proxy's path), so a program found on the cache scores
    the same through the proxy."""
    from track1.bench import discover as drv
    from track1.data import probe_batch
    from track1.nb201.space import NB201Space
    from track1.proxies.discover.stats import probe_share, probe_stats
    from track1.proxies.zen import arch_seed
    codes = drv.splits(2, 2, 0)[0][:1]
    x, y, _ = probe_batch(None, 4, 32, 0)
    got = [drv.arch_stats(codes, tmp_path / f"p{k}", probe_share(x, k, 2), probe_share(y, k, 2),
                          0, progress=False, probe=k)[0] for k in range(2)]
    space = NB201Space()
    torch.manual_seed(arch_seed(codes[0], 0))
    net = space.build(space.decode(codes[0]))
    np.testing.assert_allclose((got[0] + got[1]) / 2,
                               probe_stats(net, x, y, seed=arch_seed(codes[0], 0), probes=2),
                               rtol=1e-9, atol=1e-12)


def test_driver_splits_are_disjoint_and_bounded():
    from track1.bench.discover import splits
    from track1.bench.errors import BenchError
    s, h = splits(100, 300, seed=0)
    assert len(s) == 100 and len(h) == 300 and not set(s) & set(h)
    assert splits(100, 300, seed=0) == (s, h) and splits(100, 300, seed=1) != (s, h)
    with pytest.raises(BenchError, match="at most 1,000"):
        splits(1001, 10, seed=0)
    small_s, small_h = splits(30, 50, seed=0)                # a smaller run is part of it
    assert small_s == s[:30] and small_h == h[:50]
    assert not set(splits(1000, 100, seed=0)[0]) & set(h)    # held-out never searched
    with pytest.raises(BenchError, match="together"):
        splits(1000, 15000, seed=0)
    with pytest.raises(BenchError, match="held-out archs"):
        splits(10, 14700, seed=0)


def test_a_blend_evaluates_first_plus_weight_times_second_and_round_trips(tmp_path):
    from track1.proxies.discover.program import Blend, evaluate_any, from_dict, prefixes
    stats = [np.arange(3 * len(STAT_NAMES), dtype=float).reshape(3, -1) + 1.0,
             np.ones((2, len(STAT_NAMES)))]
    padded, mask = pad(stats)
    p = Program("w_norm", "log", "g_std", "square", "mul", "id", "sum")
    q = Program("w_norm", "id", "g_std", "id", "first", "id", "max")
    b = Blend(p, q, -0.5)
    assert b.formula == f"[{p.formula}] - 0.5 x [{q.formula}]"
    assert evaluate_any(b, padded, mask) == pytest.approx(
        evaluate(p, padded, mask) - 0.5 * evaluate(q, padded, mask))
    assert evaluate_any(p, padded, mask).tolist() == evaluate(p, padded, mask).tolist()
    dead = Program("w_norm", "id", "g_std", "id", "sub", "log", "max")
    assert not np.isnan(evaluate_any(Blend(p, dead, -1.0), padded, mask)).any()
    assert from_dict(json.loads(json.dumps(b.to_dict()))) == b
    assert from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="blend weight"):
        Blend(p, q, 0.3)
    r = Program("g_std", "id", "w_norm", "id", "first", "id", "mean")
    b3 = Blend(p, q, -0.5, ((r, 2.0),))                        # a greedy extension's term
    assert b3.formula == f"{b.formula} + 2 x [{r.formula}]"
    assert evaluate_any(b3, padded, mask) == pytest.approx(
        evaluate(p, padded, mask) - 0.5 * evaluate(q, padded, mask) + 2.0 * evaluate(r, padded, mask))
    assert from_dict(json.loads(json.dumps(b3.to_dict()))) == b3
    assert "more" not in b.to_dict()                           # two-term files as before
    assert prefixes(b3) == [b, b3] and prefixes(b) == [b]
    with pytest.raises(ValueError, match="blend weight"):
        Blend(p, q, 1.0, ((r, 3.0),))
    net = _net()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 3, (6,))
    path = tmp_path / "program_blend.json"
    path.write_text(json.dumps({"program": b.to_dict(), "formula": b.formula}))
    assert get_proxy("discovered")(net, x, y, program=str(path)) == pytest.approx(
        score_stats(b, layer_stats(net, x, y)))
    from track1.proxies.discover.stats import probe_stats
    from track1.proxies.discovered_blend import PROBES, PROGRAM   # the committed blend
    from track1.proxies.protocol import images_for
    assert isinstance(from_dict(PROGRAM), Blend) and images_for("discovered_blend") == 16 * PROBES
    assert get_proxy("discovered_blend")(net, x, y, seed=3) == pytest.approx(
        score_stats(from_dict(PROGRAM), probe_stats(net, x, y, seed=3, probes=PROBES)))


def test_a_blend_grows_by_the_terms_that_pay_their_way():
    """The truth is a sum of three aggregates, each a program of the pool: the pair gets
    two of them, the greedy extension adds the third (the blend then ranks exactly as the
    truth), and stops there: no fourth term adds MIN_GAIN. Asked for two terms, or for a
    gain no term can bring, it stays the pair."""
    from scipy.stats import kendalltau

    from track1.proxies.discover.blend import best_blend
    from track1.proxies.discover.evolve import Member
    from track1.proxies.discover.program import Blend, evaluate_any
    rng = np.random.default_rng(3)
    stats = np.abs(rng.normal(size=(120, 4, len(STAT_NAMES)))) + 0.1
    mask = np.ones(stats.shape[:2], dtype=bool)
    parts = [Program(a, "id", a, "id", "first", "id", agg)
             for a, agg in (("g_std", "logsum"), ("w_norm", "max"), ("a_std", "min"))]
    noise = [Program(a, "id", a, "id", "first", "id", "mean")
             for a in ("d_std", "wg_abs", "ad_abs", "numel")]
    truth = evaluate(parts[0], stats, mask) + 2.0 * evaluate(parts[1], stats, mask) + \
        0.5 * evaluate(parts[2], stats, mask)

    def fitness(scores):
        return float(kendalltau(scores, truth).statistic)
    archive = []
    for prog in (*parts, *noise):
        s = evaluate(prog, stats, mask)
        archive.append(Member(prog, fitness(s), np.argsort(np.argsort(s)).astype(float), s))
    archive.sort(key=lambda m: -abs(m.fitness))
    blend, f = best_blend(archive, fitness, terms=4)
    assert isinstance(blend, Blend) and len(blend.terms) == 3 and f == pytest.approx(1.0)
    assert {p for p, _ in blend.terms} == set(parts)
    assert fitness(evaluate_any(blend, stats, mask)) == pytest.approx(f)
    pair, f2 = best_blend(archive, fitness, terms=2)
    assert not pair.more and f2 < f - 0.01
    assert best_blend(archive, fitness, terms=4, min_gain=1.0) == (pair, f2)


def test_pairing_the_archive_finds_a_planted_product_one_program_cannot_write():
    """The truth is log(sum g_std) + log(max w_norm): two aggregates, out of one program's
    reach. Evolution archives programs near both halves among its most telling; pairing
    them ranks far better than the best program."""
    from track1.proxies.discover.blend import best_blend, distinct
    from track1.proxies.discover.program import Blend, evaluate_any
    rng = np.random.default_rng(0)
    n, layers = 80, 4
    stats = np.abs(rng.normal(size=(n, layers, len(STAT_NAMES)))) + 0.1
    truth = np.log(stats[:, :, COL["g_std"]].sum(axis=1)) + \
        np.log(stats[:, :, COL["w_norm"]].max(axis=1))
    mask = np.ones((n, layers), dtype=bool)
    from scipy.stats import kendalltau

    def fitness(scores):
        return float(kendalltau(scores, truth).statistic)
    out = evolve(stats, mask, fitness, population=20, sample=5, cycles=600, seed=1,
                 archive=200)
    assert out.best.fitness < 0.8
    fits = [abs(m.fitness) for m in out.archive]
    assert fits == sorted(fits, reverse=True) and len(out.archive) == 200
    assert fits[0] >= out.best.fitness         # redrawn look-alikes and inverses are kept
    assert all(fitness(m.scores) == pytest.approx(m.fitness) for m in out.archive[:5])
    blend, f = best_blend(out.archive, fitness, size=25)
    assert isinstance(blend, Blend) and f > out.best.fitness + 0.05
    assert fitness(evaluate_any(blend, stats, mask)) == pytest.approx(f)
    pool = distinct(out.archive, 25)
    assert len({m.program for m in pool}) == len(pool)
    plain = evolve(stats, mask, fitness, population=20, sample=5, cycles=600, seed=1)
    assert plain.archive == [] and plain.best.program == out.best.program   # same search

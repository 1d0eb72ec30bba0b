"""Ranking losses, margin sampler, lambda schedules, teacher and the training step."""
from __future__ import annotations

import json
import math
import random

import pytest
import torch
from scipy.stats import kendalltau

from track1.resnet48.costs import count_costs
from track1.resnet48.supernet import ResNet48Supernet
from track1.nas import schedules
from track1.nas.ranking import (diff_kendall, diff_kendall_loss, hinge_pair_loss,
                                margin_ranking_loss, pair_margin)
from track1.nas.sampler import MarginSampler
from track1.nas.step import LossConfig, train_step
from track1.nas.teacher import Teacher
from track1.resnet48.arch import decode, hamming_distance
from track1.resnet48.space import ResNet48Space


# ------------------------------------------------------------------------ losses
def test_hinge_pushes_b_below_a_when_teacher_prefers_b():
    la = torch.tensor(1.0, requires_grad=True)
    lb = torch.tensor(1.5, requires_grad=True)
    loss = hinge_pair_loss(la, lb, pa=1.0, pb=2.0)       # b predicted better
    assert loss.item() == pytest.approx(0.5)             # relu(Lb - La)
    loss.backward()
    assert la.grad is None or la.grad.item() == 0.0      # La is detached
    assert lb.grad.item() == pytest.approx(1.0)          # descending lowers Lb
    # already in the teacher's order: no loss
    assert hinge_pair_loss(torch.tensor(2.0), torch.tensor(1.0), 1.0, 2.0).item() == 0.0


def test_hinge_other_direction():
    la = torch.tensor(1.0, requires_grad=True)
    lb = torch.tensor(0.25, requires_grad=True)
    loss = hinge_pair_loss(la, lb, pa=3.0, pb=2.0)       # a predicted better
    assert loss.item() == pytest.approx(0.75)            # relu(La - Lb)
    loss.backward()
    assert lb.grad.item() == pytest.approx(-1.0)         # descending raises Lb
    assert hinge_pair_loss(torch.tensor(0.5), torch.tensor(0.9), 3.0, 2.0).item() == 0.0


def test_margin_grows_with_distance_and_ranking_loss_values():
    assert pair_margin(0.0, 0.1, 0.01) == pytest.approx(0.1)
    assert pair_margin(40.0, 0.1, 0.01) == pytest.approx(0.5)
    la, lb = torch.tensor(2.0), torch.tensor(1.8)        # b better by 0.2
    # teacher prefers b: loss = relu(m - (La - Lb))
    assert margin_ranking_loss(la, lb, 1.0, 2.0, margin=0.5).item() == pytest.approx(0.3)
    assert margin_ranking_loss(la, lb, 1.0, 2.0, margin=0.1).item() == 0.0
    near = margin_ranking_loss(la, lb, 1.0, 2.0, margin=pair_margin(10, 0, 0.02))
    far = margin_ranking_loss(la, lb, 1.0, 2.0, margin=pair_margin(40, 0, 0.02))
    assert far.item() > near.item()
    # teacher prefers a: loss = relu(m - (Lb - La)) = 0.5 + 0.2
    assert margin_ranking_loss(la, lb, 2.0, 1.0, margin=0.5).item() == pytest.approx(0.7)
    assert margin_ranking_loss(la, lb, 1.0, 1.0, margin=0.5).item() == 0.0   # teacher tie


def test_diff_kendall_sign_limits_and_agreement_with_kendall():
    x = torch.arange(6.0)
    assert 0 < diff_kendall(x, x).item() < 1
    assert -1 < diff_kendall(x, -x).item() < 0
    assert diff_kendall(x, x, alpha=200).item() == pytest.approx(1.0, abs=1e-3)
    assert diff_kendall(x, -x, alpha=200).item() == pytest.approx(-1.0, abs=1e-3)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(10, generator=g), torch.randn(10, generator=g)
    tau = kendalltau(a.numpy(), b.numpy()).statistic
    assert diff_kendall(a, b, alpha=1e4).item() == pytest.approx(tau, abs=1e-3)
    # the loss prefers lower CE for higher prior: gradient lowers CE of the best prior
    ce = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    diff_kendall_loss(ce, [1.0, 2.0, 3.0]).backward()
    assert ce.grad[0] < 0 < ce.grad[2]     # descent: CE of prior 3 falls, of prior 1 rises
    with pytest.raises(ValueError):
        diff_kendall(torch.zeros(1), torch.zeros(1))


# ----------------------------------------------------------------------- sampler
def test_margin_sampler_respects_threshold_and_tied_space():
    space = ResNet48Space()
    sampler = MarginSampler(space, threshold=33, seed=1)
    for a, b in sampler.pairs(40):
        assert hamming_distance(a, b) >= 33
        decode(a.code, tied=True), decode(b.code, tied=True)     # inside the tied space
    chain = sampler.chain(5)
    assert all(hamming_distance(p, q) >= 33 for p, q in zip(chain, chain[1:]))
    assert sampler.fallbacks == 0


def test_margin_sampler_state_roundtrip_and_fallback():
    space = ResNet48Space()
    s1 = MarginSampler(space, threshold=20, seed=3)
    s1.pairs(3)
    state = json.loads(json.dumps(s1.state_dict()))
    s2 = MarginSampler(space, threshold=20, seed=99)
    s2.load_state_dict(state)
    assert [tuple(map(str, p)) for p in s1.pairs(4)] == [tuple(map(str, p)) for p in s2.pairs(4)]
    impossible = MarginSampler(space, threshold=10_000, seed=0, max_tries=5)
    a, b = impossible.pair()
    assert impossible.fallbacks == 1 and a != b
    with pytest.raises(ValueError):
        MarginSampler(space, threshold=-1)


# --------------------------------------------------------------------- schedules
def test_lambda_schedules():
    w = schedules.make_schedule("warmup", 70)
    assert w(0) == 0 and w(5) == pytest.approx(0.5) and w(20) == 2 and w(60) == 2
    s = schedules.make_schedule("sine", 70)
    assert s(0) == pytest.approx(0) and s(70 * 0.625) == pytest.approx(2.0)
    assert s(70) == pytest.approx(2 * math.sin(0.8 * math.pi))
    assert schedules.make_schedule("constant", 70)(33) == 1.0
    m = schedules.make_schedule("multistage", 30, milestones=[10, 20], values=[0, 1, 2])
    assert [m(0), m(9.9), m(10), m(25)] == [0, 0, 1, 2]
    with pytest.raises(ValueError):
        schedules.make_schedule("cosine", 10)
    with pytest.raises(ValueError):
        schedules.multistage([1, 2], [0, 1])


# ----------------------------------------------------------------------- teacher
def test_teacher_priors_cache_and_combination(tmp_path):
    space = ResNet48Space()
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(4)]
    t = Teacher(space, "flops")
    assert t.scores(archs) == [count_costs(a)["flops"] for a in archs]
    both = Teacher(space, "flops+params")
    ranks = both.scores(archs)
    flops_order = sorted(range(4), key=lambda i: count_costs(archs[i])["flops"])
    params_order = sorted(range(4), key=lambda i: count_costs(archs[i])["params"])
    if flops_order == params_order:
        assert sorted(range(4), key=lambda i: ranks[i]) == flops_order
    assert all(0 <= r <= 3.01 for r in ranks)
    cache = tmp_path / "c.jsonl"
    cache.write_text("\n".join(json.dumps({"arch": a.code, "zen": float(i)})
                               for i, a in enumerate(archs)) + "\n{partial")
    z = Teacher(space, "zen", cache_file=cache)
    assert z.scores(archs) == [0.0, 1.0, 2.0, 3.0] and z.computed == 0
    z2 = Teacher(space, "zen")
    z2.load_state_dict(z.state_dict())
    assert z2.scores(archs) == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        Teacher(space, "accuracy")


def test_teacher_refuses_to_mix_cached_values_scored_otherwise(tmp_path):
    """A proxy-cache file says how each value was scored. Where the teacher would score a
    prior differently (Zen-score at another resolution, or any probe proxy: proxy-cache
    draws each arch its own Gaussian batch), the cached values serve, but computing that
    prior for an arch the file lacks is refused in one line: the two kinds of values do
    not compare. Values scored alike, and values that do not say, mix as before."""
    from track1.infra.errors import UserError
    space = ResNet48Space()
    rng = random.Random(0)
    cached, other = space.sample(rng), space.sample(rng)
    zen_64 = {"zen_batch": 8, "zen_resolution": 64, "zen_repeats": 1, "zen_residual": True}
    cache = tmp_path / "c.jsonl"
    cache.write_text(json.dumps({"key": "arch1", "arch": cached.code, "zen": 5.0, **zen_64,
                                 "meco": 1.0, "meco_batch": 8, "meco_resolution": 64}) + "\n")
    t = Teacher(space, "zen", cache_file=cache, zen_options={"batch": 2, "resolution": 32})
    assert t.prior("zen", cached) == 5.0
    with pytest.raises(UserError, match=r"not in the teacher cache .*px 64.*px 32.*do not compare"):
        t.prior("zen", other)
    assert set(t.cannot_extend()) == {"zen"}
    assert t.missing_from_cache([cached.code, other.code]) == ("zen", 1, other.code)
    # the same options under another seed draw other weights: not alike either
    seeded = Teacher(space, "zen", cache_file=cache, num_classes=10, seed=1,
                     zen_options={"batch": 8, "resolution": 64})
    assert set(seeded.cannot_extend()) == {"zen"}
    # a checkpoint's value of an arch the file lacks, for such a key, was computed otherwise
    t.load_state_dict({"cache": {"zen": {other.code: 9.0, cached.code: 5.0}}})
    assert other.code not in t.cache["zen"]
    two = tmp_path / "two.jsonl"
    two.write_text(cache.read_text() + json.dumps({"arch": other.code, "zen": 6.0, **zen_64,
                                                   "zen_resolution": 32}) + "\n")
    with pytest.raises(UserError, match="scored two ways"):
        Teacher(space, "zen", cache_file=two)
    m = Teacher(space, "meco", cache_file=cache, probe="gaussian", resolution=64)
    assert m.prior("meco", cached) == 1.0
    with pytest.raises(UserError, match="proxy-cache on 8 Gaussian images drawn per arch"):
        m.prior("meco", other)
    alike = Teacher(space, "zen", cache_file=cache, num_classes=10,
                    zen_options={"batch": 8, "resolution": 64})
    assert alike.prior("zen", cached) == 5.0 and math.isfinite(alike.prior("zen", other))
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text(json.dumps({"arch": cached.code, "zen": 5.0}) + "\n")
    old = Teacher(space, "zen", cache_file=legacy, zen_options={"batch": 2, "resolution": 32})
    assert math.isfinite(old.prior("zen", other)) and old.computed == 1


def test_teacher_draws_its_reference_from_a_cache_it_cannot_extend(tmp_path):
    """With the Track 1 list's proxy cache (values scored per arch on Gaussian images, which
    the teacher cannot reproduce), a mixed teacher ``meco_opt+az_nas`` ranks each prior
    among reference archs drawn from the cache itself: it computes nothing, its order is the
    file's, and a reference larger than the file is refused in one line."""
    from track1.infra.errors import UserError
    space = ResNet48Space()
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(12)]
    cache = tmp_path / "c.jsonl"
    with open(cache, "w") as f:
        for i, a in enumerate(archs):
            f.write(json.dumps({"key": f"arch{i}", "arch": a.code, "flops": 1e9 * (i + 1),
                                "meco_opt": float(i), "meco_opt_batch": 8,
                                "meco_opt_resolution": 64, "az_expressivity": float(i),
                                "az_progressivity": float(i), "az_trainability": float(i),
                                "az_nas_batch": 8, "az_nas_resolution": 64}) + "\n")
    t = Teacher(space, "meco_opt+az_nas", cache_file=cache, set_reference=6)
    scores = t.scores(archs)
    codes = {a.code for a in archs}
    # no proxy ran: the only values computed are AZ-NAS's aggregates of cached components
    assert all(set(t.cache[k]) == codes for k in ("meco_opt", "az_expressivity", "flops"))
    assert t.computed == len(set(t.cache["az_nas"])) == 12
    assert {space.encode(a) for a in t.reference_archs()} <= {a.code for a in archs}
    assert sorted(range(12), key=lambda i: scores[i]) == list(range(12))   # the file's order
    with pytest.raises(UserError, match="holds 12 archs"):
        Teacher(space, "meco_opt+az_nas", cache_file=cache, set_reference=20).scores(archs)
    # a prior the teacher computes alike (FLOPs) does not narrow the reference to the file
    both = Teacher(space, "meco_opt+params", cache_file=cache, set_reference=6)
    assert len(both.reference_archs()) == 6 and both.cannot_extend().keys() == {"meco_opt"}


def test_break_ties_orders_only_the_tied():
    from track1.nas.teacher import break_ties
    asked = []

    def second(i):
        asked.append(i)
        return {1: 5.0, 3: 2.0, 4: 9.0}[i]
    out = break_ties([3.0, 7.0, 1.0, 7.0, 7.0], second)
    assert sorted(asked) == [1, 3, 4]                      # only tied positions are asked
    assert out[0] == 3.0 and out[2] == 1.0                 # untied values unchanged
    assert out[3] < out[1] < out[4]                        # 7.0s ordered by the second prior
    assert all(3.0 < v < 7.0 + 2.0 for v in (out[1], out[3], out[4]))
    assert sorted(range(5), key=out.__getitem__)[:2] == [2, 0]
    assert break_ties([2.0, 2.0], lambda i: 1.0) == [2.0 + 1.0 * 1.5 / 3] * 2  # still tied


def test_teacher_tie_break_orders_flops_ties_and_counts_them():
    """On the 4-op NB201 space pooling and skip both cost 0 FLOPs: a pair that differs only
    there ties under FLOPs, gets no ranking loss, and is ordered by the tie-break."""
    from track1.nb201.space import NB201Space, PAPER_OPS
    space = NB201Space(ops=PAPER_OPS, C=4, N=1)
    a, b = (3, 1, 3, 1, 1, 1), (3, 4, 3, 1, 4, 1)           # skip vs pool on two edges
    plain = Teacher(space, "flops")
    pa, pb = plain.scores([a, b])
    assert pa == pb and plain.tie_counts == {"pairs": 1, "tied_primary": 1, "tied": 1}
    assert margin_ranking_loss(torch.tensor(1.0), torch.tensor(2.0), pa, pb, 0.1).item() == 0
    t = Teacher(space, "flops", tie_break="synflow")
    qa, qb = t.scores([a, b])
    sa, sb = t.prior("synflow", a), t.prior("synflow", b)
    assert sa != sb and (qa < qb) == (sa < sb)
    assert t.tie_counts == {"pairs": 1, "tied_primary": 1, "tied": 0} and t.tie_rate() == 0
    assert margin_ranking_loss(torch.tensor(1.0), torch.tensor(2.0), qa, qb, 0.1).item() > 0
    c = (3, 3, 3, 3, 3, 3)
    assert t.scores([a, c]) == plain.scores([a, c])          # untied: the raw values
    assert "synflow" not in t.cache or space.encode(c) not in t.cache["synflow"]
    restored = Teacher(space, "flops", tie_break="synflow")
    restored.load_state_dict(t.state_dict())
    assert restored.tie_counts == t.tie_counts and restored.scores([a, b]) == [qa, qb]
    with pytest.raises(ValueError, match="unknown teacher prior 'accuracy'"):
        Teacher(space, "flops", tie_break="accuracy")
    with pytest.raises(ValueError, match="already one of the priors"):
        Teacher(space, "flops", tie_break="flops")


# -------------------------------------------------------------------------- step
@pytest.fixture(scope="module")
def tiny_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)


def _run(cfg: LossConfig, batch, teacher="flops"):
    torch.manual_seed(0)
    net = ResNet48Supernet(num_classes=10)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    sampler = MarginSampler(net.space, threshold=33, seed=0)
    t = Teacher(net.space, teacher) if cfg.ranking != "none" else None
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.zero_grad()
    terms = train_step(net, net, *batch, cfg, sampler, t, lam=1.0)
    opt.step()
    changed = any(not torch.equal(before[k], v) for k, v in net.state_dict().items()
                  if v.is_floating_point())
    return terms, changed


@pytest.mark.parametrize("cfg,terms,forwards", [
    (LossConfig(), {"largest", "smallest", "random"}, 4),                       # sandwich
    (LossConfig(ranking="hinge", num_pairs=1), {"largest", "smallest", "random", "rank"}, 6),
    (LossConfig(ranking="margin", ranking_mode="reuse"), {"largest", "smallest", "random", "rank"}, 4),
    (LossConfig(ranking="diffkendall", group_size=3, num_random=0, smallest=False),
     {"largest", "rank"}, 4),
    (LossConfig(largest=False, smallest=False, num_random=1, distill=False), {"random"}, 1),  # SPOS
    (LossConfig(largest=False, smallest=False, num_random=0, distill=False, ranking="hinge",
                num_pairs=1), {"rank"}, 2),
])
def test_step_terms_switch_and_weights_change(cfg, terms, forwards, tiny_batch):
    out, changed = _run(cfg, tiny_batch)
    assert {k for k in out if k not in ("lambda", "forwards")} == terms
    assert out["forwards"] == forwards
    assert changed
    assert all(math.isfinite(v) for v in out.values())


def test_reuse_diffkendall_and_config_validation(tiny_batch):
    out, changed = _run(LossConfig(ranking="diffkendall", ranking_mode="reuse", num_random=3),
                        tiny_batch)
    assert out["forwards"] == 5 and "rank" in out and changed
    with pytest.raises(ValueError):
        LossConfig(largest=False, smallest=False, num_random=0, ranking="none", distill=False)
    with pytest.raises(ValueError):
        LossConfig(largest=False)                    # distill needs the largest subnet
    with pytest.raises(ValueError):
        LossConfig(ranking="hinge", ranking_mode="reuse", num_random=1)
    with pytest.raises(ValueError):
        LossConfig.from_dict({"rankin": "hinge"})


def test_step_generic_over_nb201_space():
    nb = pytest.importorskip("track1.nb201.supernet")
    torch.manual_seed(0)
    net = nb.NB201Supernet(num_classes=10, C=4, N=1)
    before = [p.clone() for p in net.parameters()]
    sampler = MarginSampler(net.space, threshold=2.0, seed=0)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for mode in ("extra", "reuse"):
        opt.zero_grad()
        out = train_step(net, net, x, y, LossConfig(ranking="margin", ranking_mode=mode),
                         sampler, Teacher(net.space, "params"), lam=1.0)
        opt.step()
        assert "rank" in out and math.isfinite(out["rank"])
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_teacher_zen_on_the_fly_matches_zen_score():
    from track1.proxies.zen import zen_score
    space = ResNet48Space()
    archs = [space.smallest(), space.largest()]
    t = Teacher(space, "zen", zen_options={"batch": 2, "resolution": 32})
    scores = t.scores(archs)
    assert scores == [zen_score(space, a, batch=2, resolution=32) for a in archs]
    assert scores[1] > scores[0] and t.computed == 2
    t.scores(archs)
    assert t.computed == 2                                   # cached per arch code


def test_teacher_mixes_take_weights():
    """teacher.priors 'flops:0.9+synflow:0.1' (issue 18, item 3): a weighted mean of ranks;
    equal weights are the plain mix; bad weights are one line."""
    from track1.nb201.space import NB201Space
    space = NB201Space(C=4, N=1)
    rng = random.Random(2)
    archs = [space.sample(rng) for _ in range(6)]
    plain = Teacher(space, "flops+synflow", set_reference=32).scores(archs)
    assert Teacher(space, "flops:2+synflow:2", set_reference=32).scores(archs) == plain
    heavy = Teacher(space, "flops:0.99+synflow:0.01", set_reference=32)
    flops = [space.cost(a)["flops"] for a in archs]
    order = sorted(range(6), key=lambda i: heavy.scores(archs)[i])
    assert [flops[i] for i in order] == sorted(flops)       # FLOPs decides where it differs
    for bad in ("flops:0+zen", "flops:-1", "flops:x", "flops+flops:2"):
        with pytest.raises(ValueError, match="positive weight"):
            Teacher(space, bad)


def test_teacher_az_nas_ranks_against_a_reference_and_caches_components(tmp_path):
    """teacher.priors 'az_nas' (issue 18, item 3): each arch's value is AZ-NAS's aggregate
    of its rank among a seeded reference sample of the space (per arch: the same in any
    group, so a pair is not a four-view vote that ties); components computed once per
    arch and cached; mixes and preloaded caches work."""
    import random as _random
    from track1.nb201.space import NB201Space
    from track1.proxies import az_nas
    from track1.proxies.zen import arch_seed
    space = NB201Space(C=4, N=1)
    rng = random.Random(3)
    archs = [space.sample(rng) for _ in range(5)]
    t = Teacher(space, "az_nas", set_reference=6)
    got = t.scores(archs)
    inputs = t._probe()[0]

    def row(a):
        code = space.encode(a)
        return (az_nas.components(space.build(a), inputs, seed=arch_seed(code, 0))
                | {"flops": space.cost(a)["flops"]})
    ref_rng = _random.Random("az_nas reference 0")
    reference = [row(space.sample(ref_rng)) for _ in range(6)]
    rows = [row(a) for a in archs]
    assert got == pytest.approx(az_nas.against_reference(rows, reference))
    computed = t.computed
    assert t.scores(archs[:2]) == got[:2]                  # per arch: the group does not matter
    assert t.computed == computed                          # nothing recomputed
    cache = tmp_path / "az.jsonl"
    cache.write_text("\n".join(json.dumps({"arch": space.encode(a)} | {
        f"az_{k}": r[k] for k in az_nas.COMPONENTS}) for a, r in zip(archs, rows)) + "\n")
    pre = Teacher(space, "az_nas+flops", cache_file=cache, set_reference=6)
    mixed = pre.scores(archs)
    assert all(space.encode(a) in pre.cache["az_expressivity"] for a in archs)
    assert len(set(mixed)) > 1
    with pytest.raises(ValueError, match="set_reference"):
        Teacher(space, "az_nas", set_reference=1)


def _mix_teacher(mix: str, values: dict[str, dict[str, float]], priors: str) -> tuple:
    """A NB201 teacher whose priors' values are given (its cache preloaded): reference
    arch i scores i under every prior; the pair ``a``, ``b`` scores ``values``."""
    from track1.nb201.space import NB201Space
    space = NB201Space(C=4, N=1)
    t = Teacher(space, priors, set_reference=20, mix=mix)
    ref = [space.encode(x) for x in t.reference_archs()]
    rng = random.Random(5)
    a, b = [x for x in (space.sample(rng) for _ in range(100)) if space.encode(x) not in ref][:2]
    for name in t.priors:
        t.cache[name].update({c: float(i) for i, c in enumerate(ref)})
        t.cache[name][space.encode(a)] = values[name][0]
        t.cache[name][space.encode(b)] = values[name][1]
    return t, a, b


def test_teacher_mix_ranks_among_the_reference_not_inside_the_pair():
    """teacher.mix (issue 18, item 3): inside a pair, a mean of ranks is a weighted vote,
    so the heavier prior always wins however little it separates the pair. Ranked among
    the reference sample, a prior counts by how far apart it puts the two archs."""
    # naswot (0.6) puts a one reference arch above b; synflow (0.4) puts b 15 above a
    values = {"naswot": (10.5, 9.5), "synflow": (2.5, 17.5)}
    t, a, b = _mix_teacher("reference", values, "naswot:0.6+synflow:0.4")
    pa, pb = t.scores([a, b])
    assert pb > pa
    assert pa == pytest.approx(0.6 * 11 / 20 + 0.4 * 3 / 20)   # below, ties half, / 20
    assert t.scores([a, b, *t.reference_archs()[:3]])[:2] == [pa, pb]   # group-free
    g, a, b = _mix_teacher("group", values, "naswot:0.6+synflow:0.4")
    pa, pb = g.scores([a, b])
    assert pa > pb
    # one gap of every prior's reference values: tied by the reference, the group decides
    t, a, b = _mix_teacher("reference", {"naswot": (10.6, 10.4), "synflow": (2.6, 2.4)},
                           "naswot+synflow")
    pa, pb = t.scores([a, b])
    assert pa > pb and t.tie_counts["tied"] == 0
    with pytest.raises(ValueError, match="teacher mix"):
        Teacher(t.space, "naswot+synflow", mix="pair")


def test_teacher_report_reads_what_the_pairs_are_taught(tmp_path):
    """tools/teacher_report.py on made-up per-arch values: a prior equal to the test
    accuracy agrees on every pair and ranks at Kendall 1; noise added to it with a heavy
    weight is tuned away on the search split; a malformed --tune is one line."""
    import csv as _csv
    import json as _json
    import sys as _sys
    from pathlib import Path as _Path
    from track1.nb201.ground_truth import load_ground_truth
    root = _Path(__file__).resolve().parent.parent
    _sys.path.insert(0, str(root / "tools"))
    try:
        import teacher_report
    finally:
        _sys.path.pop(0)
    gt = load_ground_truth()
    rng = random.Random(0)
    path, cache = tmp_path / "scores.csv", tmp_path / "cache.jsonl"   # a CSV, a JSONL cache
    with open(path, "w", newline="") as f:
        w = _csv.writer(f)
        w.writerow(["arch", "valid", "test", "meco"])
        for code, g in gt.items():
            w.writerow([code, g.valid, g.test, g.test])
    missing = set(list(gt)[:50])                 # a partial cache: those archs left out
    cache.write_text("".join(_json.dumps({"arch": c, "synflow": rng.random()}) + "\n"
                             for c in gt if c not in missing))
    args = ["--space", "paper", "--scores", str(path), str(cache), "--teachers", "meco", "--tune",
            "meco+synflow", "--search-archs", "200", "--pairs", "300", "--reference", "16",
            "--out", str(tmp_path)]
    assert teacher_report.main(args) == 0
    rows = _json.loads((tmp_path / "teacher_report_paper.json").read_text())["rows"]
    assert rows[0]["kendall_test"] == 1.0 and rows[0]["pairs"]["agree"] == 1.0
    assert rows[1]["teacher"] == "meco" and rows[1]["on"] == "held-out"   # weight 0 chosen
    assert rows[1]["archs"] == 4096 - 200 - sum("none~" not in c for c in missing)
    with pytest.raises(SystemExit):
        teacher_report.main(args[:-4] + ["--tune", "meco:1+synflow", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):   # nothing outside the fixed archs to tune on
        teacher_report.main(args[:-4] + ["--exclude-fixed", "15625", "--out", str(tmp_path)])

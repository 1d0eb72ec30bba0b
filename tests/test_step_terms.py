"""``train_step`` accumulates exactly the gradients of its loss terms.

For every loss configuration the accumulated ``.grad`` of every parameter after one
``train_step`` must equal the sum of the gradients of its terms, each re-created by hand
(``set_arch`` + forward + the loss functions of ``track1.nas.step`` / ``ranking``) on
the SAME archs: a twin ``MarginSampler`` with the same seed draws them, and the archs the
step really ran (``set_arch`` calls) are checked against them. The expected terms follow
docs/REFERENCE.md §3 (and the track1/nas/step.py docstring):

- largest: CE on labels; its softmax, detached, is the distillation target;
- smallest and each random subnet: soft CE vs that target (``distill``) or CE, weight 1;
- ranking, weighted by lambda: ``reuse`` ranks consecutive random subnets (a margin
  chain) with the earlier one's CE detached; ``extra`` runs fresh margin pairs (the
  hinge detaches La) or one DiffKendall group;
- an external teacher (``teacher_kd`` = r > 0): the largest, smallest and random
  subnets' terms above weigh 1 - r, and each of them adds r times its soft CE against
  the frozen teacher's softmax (its own term, ``teacher_kd``).

The supernet is the tiny NB201 one in float64, in train mode (BN uses batch statistics,
so outputs, hence gradients, do not depend on the running statistics the extra hand
forwards update).
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import track1  # noqa: F401
import track1.nas.step as step_mod
from track1.nas.ranking import (diff_kendall_loss, hinge_pair_loss, margin_ranking_loss,
                                pair_margin)
from track1.nas.sampler import MarginSampler
from track1.nas.step import LossConfig, _ce, soft_cross_entropy, train_step
from track1.nas.teacher import Teacher
from track1.nb201.network import OPS
from track1.nb201.supernet import NB201Supernet

THRESHOLD = 6.7          # the NB201 bench's group-distance margin
LAM = 0.7                # not 1: a step that ignores lambda must fail
RTOL, ATOL = 1e-9, 1e-12
CONV3 = OPS.index("nor_conv_3x3")

SPOS = dict(largest=False, smallest=False, num_random=2, distill=False)
SANDWICH = dict(largest=True, smallest=True, num_random=2, distill=True)


# ---------------------------------------------------------------------- helpers
def _setup(seed: int = 0):
    torch.manual_seed(seed)
    net = NB201Supernet(num_classes=10, C=4, N=1).double().train()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 32, 32, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (4,), generator=g)
    return net, x, y


def _record_set_arch(net):
    """Wrap ``net.set_arch`` to record every arch the step activates."""
    calls: list[tuple] = []
    original = net.set_arch

    def recording(arch):
        original(arch)
        calls.append(tuple(net.arch))
    net.set_arch = recording
    return calls, original


def _draws(cfg: LossConfig, sampler: MarginSampler):
    """The archs a step draws, from a twin sampler, in the step's order: the random
    subnets (a margin chain in reuse mode), then the extra pairs or the extra group."""
    ranking = cfg.ranking != "none"
    reuse = ranking and cfg.ranking_mode == "reuse"
    randoms = sampler.chain(cfg.num_random) if reuse else [sampler.sample()
                                                           for _ in range(cfg.num_random)]
    pairs, group = [], []
    if ranking and cfg.ranking_mode == "extra":
        if cfg.ranking == "diffkendall":
            group = sampler.chain(cfg.group_size)
        else:
            pairs = sampler.pairs(cfg.num_pairs)
    return randoms, pairs, group


def _pair(cfg, space, a, b, la, lb, teacher):
    """The pair term (docs/REFERENCE.md §3-4): the hinge never differentiates La (detached here,
    whatever ``hinge_pair_loss`` does), the margin grows with the pair's distance."""
    pa, pb = teacher.scores([a, b])
    if cfg.ranking == "hinge":
        return hinge_pair_loss(la.detach(), lb, pa, pb)
    m = pair_margin(space.distance(a, b), cfg.margin, cfg.margin_per_distance)
    return margin_ranking_loss(la, lb, pa, pb, m)


def _external_teacher(seed: int = 0):
    """A frozen network unlike the student (other seed, one fixed arch, eval mode)."""
    torch.manual_seed(seed + 1)
    sup = NB201Supernet(num_classes=10, C=4, N=1)
    ext = sup.extract(sup.space.largest()).double().eval()
    for p in ext.parameters():
        p.requires_grad_(False)
    return ext


def _hand_terms(net, x, y, cfg, draws, teacher, lam, external=None):
    """[(name, weighted loss with its graph)] of one step, built independently."""
    space = net.space
    randoms, pairs, group = draws
    r = cfg.teacher_kd
    p_t = F.softmax(external(x).detach().float(), dim=1) if r else None

    def fwd(arch):
        net.set_arch(arch)
        return net(x)

    terms: list[tuple[str, torch.Tensor]] = []

    def mixed(name, logits, loss):
        """The term, and with an external teacher (1 - r) x it + r x soft CE vs it."""
        if not r:
            terms.append((name, loss))
            return
        terms.append((name, (1 - r) * loss))
        terms.append(("teacher_kd", r * soft_cross_entropy(logits, p_t)))

    soft = None
    if cfg.largest:
        logits = fwd(space.largest())
        mixed("largest", logits, _ce(logits, y))
        soft = F.softmax(logits.detach().float(), dim=1)

    def student(logits):
        return soft_cross_entropy(logits, soft) if cfg.distill else _ce(logits, y)

    if cfg.smallest:
        logits = fwd(space.smallest())
        mixed("smallest", logits, student(logits))
    reuse = cfg.ranking != "none" and cfg.ranking_mode == "reuse"
    ces = []
    for i, arch in enumerate(randoms):
        logits = fwd(arch)
        mixed("random", logits, student(logits))
        if reuse:
            ces.append(_ce(logits, y))
            if cfg.ranking != "diffkendall" and i > 0:
                # reuse: the earlier subnet's CE is detached, the later carries the pair
                terms.append(("rank", lam * _pair(cfg, space, randoms[i - 1], arch,
                                                   ces[i - 1].detach(), ces[i], teacher)))
    if reuse and cfg.ranking == "diffkendall":
        terms.append(("rank", lam * diff_kendall_loss(torch.stack(ces), teacher.scores(randoms),
                                                      cfg.kendall_alpha)))
    for a, b in pairs:
        la, lb = _ce(fwd(a), y), _ce(fwd(b), y)
        terms.append(("rank", lam * _pair(cfg, space, a, b, la, lb, teacher)))
    if group:
        ce = torch.stack([_ce(fwd(a), y) for a in group])
        terms.append(("rank", lam * diff_kendall_loss(ce, teacher.scores(group),
                                                      cfg.kendall_alpha)))
    return terms


def _grads(net, loss):
    params = list(net.parameters())
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    gs = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, gs)]


def _step_and_hand(cfg, sampler_seed=0, lam=LAM, seed=0):
    """Run one ``train_step``; return (net, step grads, [(name, term grads)], calls,
    expected arch sequence, step's returned terms, hand loss values)."""
    net, x, y = _setup(seed)
    teacher = Teacher(net.space, "flops") if cfg.ranking != "none" else None
    external = _external_teacher(seed) if cfg.teacher_kd else None
    sampler = MarginSampler(net.space, THRESHOLD, seed=sampler_seed)
    twin = MarginSampler(net.space, THRESHOLD, seed=sampler_seed)
    calls, set_arch = _record_set_arch(net)
    net.zero_grad(set_to_none=True)
    out = train_step(net, net, x, y, cfg, sampler, teacher, lam=lam, external_teacher=external)
    step_grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                  for p in net.parameters()]
    net.set_arch = set_arch
    draws = _draws(cfg, twin)
    space = net.space
    expected_calls = ([space.largest()] if cfg.largest else []) + \
        ([space.smallest()] if cfg.smallest else []) + list(draws[0]) + \
        [a for pr in draws[1] for a in pr] + list(draws[2])
    terms = _hand_terms(net, x, y, cfg, draws, teacher, lam, external)
    term_grads = [(name, _grads(net, loss)) for name, loss in terms]
    return net, step_grads, term_grads, calls, expected_calls, out, terms, draws


def _assert_grads_equal(net, got, want, what=""):
    for (name, _), g, w in zip(net.named_parameters(), got, want):
        torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, n=name: f"{what} {n}: {m}")


def _sum(term_grads, names=None):
    total = None
    for name, gs in term_grads:
        if names is not None and name not in names:
            continue
        total = [g.clone() for g in gs] if total is None else [t + g for t, g in zip(total, gs)]
    return total


def _norm(gs):
    return float(sum(g.square().sum() for g in gs)) ** 0.5


# (id, config, sampler seed). The seeds are such that every ranking term is active
# (asserted below), so a step that drops or mis-weights it cannot pass.
CASES = [
    ("spos", LossConfig(**SPOS, ranking="none"), 0),
    ("sandwich_distill", LossConfig(**SANDWICH, ranking="none"), 0),
    ("reuse_margin_spos", LossConfig(**SPOS, ranking="margin", ranking_mode="reuse"), 0),
    ("reuse_hinge_spos", LossConfig(**SPOS, ranking="hinge", ranking_mode="reuse"), 0),
    ("reuse_margin_chain3", LossConfig(**{**SPOS, "num_random": 3}, ranking="margin",
                                       ranking_mode="reuse", margin=1.0), 0),
    ("reuse_margin_sandwich", LossConfig(**SANDWICH, ranking="margin", ranking_mode="reuse"), 0),
    ("reuse_hinge_sandwich", LossConfig(**{**SANDWICH, "num_random": 3}, ranking="hinge",
                                        ranking_mode="reuse"), 0),
    ("extra_hinge", LossConfig(**SANDWICH, ranking="hinge", ranking_mode="extra",
                               num_pairs=2), 0),
    ("extra_margin", LossConfig(**SANDWICH, ranking="margin", ranking_mode="extra",
                                num_pairs=2, margin=1.0), 0),
    ("extra_margin_only", LossConfig(largest=False, smallest=False, num_random=0, distill=False,
                                     ranking="margin", ranking_mode="extra", num_pairs=2), 0),
    ("reuse_diffkendall_spos", LossConfig(**{**SPOS, "num_random": 3}, ranking="diffkendall",
                                          ranking_mode="reuse"), 0),
    ("reuse_diffkendall_sandwich", LossConfig(**{**SANDWICH, "num_random": 3},
                                              ranking="diffkendall", ranking_mode="reuse"), 0),
    ("extra_diffkendall", LossConfig(**SANDWICH, ranking="diffkendall", ranking_mode="extra",
                                     group_size=3), 0),
    # an external teacher mixed with in-place distillation, with CE (SPOS), with ranking
    ("teacher_kd_sandwich", LossConfig(**SANDWICH, ranking="none", teacher_kd=0.3), 0),
    ("teacher_kd_spos", LossConfig(**SPOS, ranking="none", teacher_kd=0.6), 0),
    ("teacher_kd_reuse_hinge", LossConfig(**{**SANDWICH, "num_random": 3}, ranking="hinge",
                                          ranking_mode="reuse", teacher_kd=0.4), 0),
    ("teacher_kd_reuse_diffkendall", LossConfig(**{**SANDWICH, "num_random": 3},
                                                ranking="diffkendall", ranking_mode="reuse",
                                                teacher_kd=0.25), 0),
    ("teacher_kd_extra_margin", LossConfig(**SANDWICH, ranking="margin", ranking_mode="extra",
                                           num_pairs=2, margin=1.0, teacher_kd=0.5), 0),
]


# ----------------------------------------------------------------- the equality
@pytest.mark.parametrize("cfg,sampler_seed", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_step_grad_is_sum_of_independent_term_grads(cfg, sampler_seed):
    net, got, term_grads, calls, expected_calls, out, terms, draws = \
        _step_and_hand(cfg, sampler_seed)
    # the step ran exactly the expected subnets, in order, once each
    assert calls == expected_calls
    assert out["forwards"] == len(expected_calls)
    # the reuse chain / extra pairs really are margin pairs
    randoms, pairs, group = draws
    if cfg.ranking != "none" and cfg.ranking_mode == "reuse":
        assert all(net.space.distance(a, b) >= THRESHOLD for a, b in zip(randoms, randoms[1:]))
    assert all(net.space.distance(a, b) >= THRESHOLD for a, b in pairs)
    # every term is live, so dropping or re-weighting one changes the sum
    for name, gs in term_grads:
        assert _norm(gs) > 0, f"term {name} has no gradient: pick another sampler seed"
    want = _sum(term_grads)
    _assert_grads_equal(net, got, want, cfg.ranking)
    # the ranking part is a real share of the step's gradient
    if cfg.ranking != "none":
        assert _norm(_sum(term_grads, {"rank"})) > 1e-6 * _norm(want)
    # the reported values agree with the hand terms (reported before the teacher's mix)
    hand = {}
    for name, loss in terms:
        hand.setdefault(name, []).append(loss.item())
    r = cfg.teacher_kd
    for name in ("largest", "smallest"):
        if name in hand:
            assert out[name] == pytest.approx(hand[name][0] / (1 - r), rel=1e-6)
    if "random" in hand:
        assert out["random"] == pytest.approx(sum(hand["random"]) / len(hand["random"]) / (1 - r),
                                              rel=1e-6)
    assert ("teacher_kd" in out) == (r > 0)
    if r:   # one soft CE per largest/smallest/random subnet, reported as their mean
        assert len(hand["teacher_kd"]) == cfg.largest + cfg.smallest + cfg.num_random
        assert out["teacher_kd"] == pytest.approx(sum(hand["teacher_kd"]) / r
                                                  / len(hand["teacher_kd"]), rel=1e-6)
    assert ("rank" in out) == (cfg.ranking != "none")
    if "rank" in hand:   # reported: the pair / group losses before lambda, summed
        assert out["rank"] == pytest.approx(sum(hand["rank"]) / LAM, rel=1e-6)


def test_lambda_scales_only_the_ranking_gradient():
    """grad(lam) - grad(0) is lam times the hand ranking gradient, for two lambdas."""
    cfg = LossConfig(**SANDWICH, ranking="margin", ranking_mode="reuse", margin=1.0)
    _, g0, tg, *_ = _step_and_hand(cfg, lam=0.0)
    assert _norm(_sum(tg, {"rank"})) == 0.0        # lambda 0: the hand rank term is 0
    for lam in (0.5, 2.0):
        net, g, tg, *_ = _step_and_hand(cfg, lam=lam)
        rank = _sum(tg, {"rank"})
        assert _norm(rank) > 0
        _assert_grads_equal(net, [a - b for a, b in zip(g, g0)], rank, f"lam={lam}")


# ----------------------------------------------------- the distillation target
def test_distillation_target_is_detached(monkeypatch):
    """Students' soft CE sees a target without graph, and the parameters only the
    largest subnet uses get exactly the gradient of the largest's own CE."""
    seen = []
    original = step_mod.soft_cross_entropy

    def spy(logits, target_probs):
        seen.append((target_probs.requires_grad, target_probs.grad_fn))
        return original(logits, target_probs)
    monkeypatch.setattr(step_mod, "soft_cross_entropy", spy)
    cfg = LossConfig(**SANDWICH, ranking="none")
    net, got, term_grads, calls, *_ = _step_and_hand(cfg)
    assert len(seen) == 1 + cfg.num_random                      # smallest + randoms
    assert all(not rg and fn is None for rg, fn in seen)
    # parameters of conv3x3 on edges no student uses conv3x3 on: only the largest's path
    students = calls[1:]
    free_edges = [e for e in range(6) if all(s[e] != CONV3 for s in students)]
    assert free_edges, "every edge used conv3x3 in some student: pick another seed"
    largest_only = _sum(term_grads, {"largest"})
    students_only = _sum(term_grads, {"smallest", "random"})
    checked = 0
    for (name, _), g, w, s in zip(net.named_parameters(), got, largest_only, students_only):
        parts = name.split(".")
        if parts[0] == "cells" and parts[2] == "edges" and int(parts[3]) in free_edges \
                and int(parts[4]) == CONV3:
            assert _norm([s]) == 0.0                    # the hand students do not reach it
            torch.testing.assert_close(g, w, rtol=RTOL, atol=ATOL, msg=name)
            checked += int(_norm([w]) > 0)
    assert checked > 0


# ------------------------------------------------------------------ pair losses
@pytest.mark.parametrize("pa,pb,sign", [(1.0, 2.0, 1.0), (2.0, 1.0, -1.0)])
def test_hinge_detaches_la_and_moves_lb_by_the_rule(pa, pb, sign):
    # violated: teacher prefers b -> lb above la; prefers a -> lb below la
    la = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    lb = torch.tensor(1.0 + 0.3 * sign, dtype=torch.float64, requires_grad=True)
    loss = hinge_pair_loss(la, lb, pa, pb)
    assert loss.item() == pytest.approx(0.3)
    ga, gb = torch.autograd.grad(loss, [la, lb], allow_unused=True)
    assert ga is None or ga.item() == 0.0
    assert gb.item() == sign                # +1: descent lowers lb; -1: raises it
    # satisfied pair: no loss, no gradient at all
    lb2 = torch.tensor(1.0 - 0.3 * sign, dtype=torch.float64, requires_grad=True)
    ok = hinge_pair_loss(la, lb2, pa, pb)
    assert ok.item() == 0.0
    assert torch.autograd.grad(ok, lb2)[0].item() == 0.0


@pytest.mark.parametrize("pa,pb", [(1.0, 2.0), (2.0, 1.0), (1.5, 1.5)])
def test_margin_gradient_has_the_teachers_sign(pa, pb):
    la = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    lb = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)   # violated by the margin
    loss = margin_ranking_loss(la, lb, pa, pb, margin=0.1)
    ga, gb = torch.autograd.grad(loss, [la, lb], allow_unused=True)
    ga = 0.0 if ga is None else ga.item()
    gb = 0.0 if gb is None else gb.item()
    if pb > pa:       # b preferred: descent lowers lb, raises la
        assert loss.item() == pytest.approx(0.1) and gb == 1.0 and ga == -1.0
    elif pa > pb:
        assert loss.item() == pytest.approx(0.1) and ga == 1.0 and gb == -1.0
    else:             # tie: nothing to transfer
        assert loss.item() == 0.0 and ga == 0.0 and gb == 0.0


@pytest.mark.parametrize("k", [2, 3, 5])
def test_diff_kendall_gradient_favours_the_teachers_choice(k):
    g = torch.Generator().manual_seed(k)
    priors = torch.randn(k, generator=g, dtype=torch.float64).tolist()
    for losses in (torch.full((k,), 2.0, dtype=torch.float64),
                   torch.rand(k, generator=g, dtype=torch.float64) + 1.0):
        losses = losses.clone().requires_grad_(True)
        loss = diff_kendall_loss(losses, priors)
        (grad,) = torch.autograd.grad(loss, losses)
        best = max(range(k), key=lambda i: priors[i])
        worst = min(range(k), key=lambda i: priors[i])
        assert grad[best] > 0 > grad[worst]   # descent lowers the preferred CE
        # a small descent step raises the rank agreement (lowers the loss)
        with torch.no_grad():
            assert diff_kendall_loss(losses - 1e-3 * grad, priors) < loss


# --------------------------------------------- a descent step fixes the violation
def _pair_ce(net, x, y, a, b):
    with torch.no_grad():
        net.set_arch(a)
        la = _ce(net(x), y).item()
        net.set_arch(b)
        lb = _ce(net(x), y).item()
    return la, lb


@pytest.mark.parametrize("ranking", ["margin", "hinge"])
def test_reuse_pair_gradient_step_reduces_the_violation(ranking):
    """In a full reuse-mode step (the NB201 bench's config), the pair term's share of
    the gradient, grad(lam) - grad(0), is a descent direction for the violation: the
    teacher-preferred subnet's CE falls relative to the other's."""
    cfg = LossConfig(**SPOS, ranking=ranking, ranking_mode="reuse",
                     margin=1.0 if ranking == "margin" else 0.0)
    grads = {}
    for lam in (0.0, 1.0):
        net, x, y = _setup(0)
        sampler = MarginSampler(net.space, THRESHOLD, seed=0)
        calls, _ = _record_set_arch(net)
        net.zero_grad(set_to_none=True)
        train_step(net, net, x, y, cfg, sampler, Teacher(net.space, "flops"), lam=lam)
        grads[lam] = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                      for p in net.parameters()]
    a, b = calls
    pa, pb = Teacher(net.space, "flops").scores([a, b])
    assert pa != pb, "teacher tie: pick another seed"
    pair_grad = [g1 - g0 for g1, g0 in zip(grads[1.0], grads[0.0])]
    assert _norm(pair_grad) > 0, "pair inactive: pick another seed"
    net, x, y = _setup(0)                  # fresh copy, same weights
    la, lb = _pair_ce(net, x, y, a, b)
    gap = (lb - la) if pb > pa else (la - lb)      # preferred minus other: want it lower
    stepped = copy.deepcopy(net)
    with torch.no_grad():
        for p, g in zip(stepped.parameters(), pair_grad):
            p -= 1e-2 * g
    la2, lb2 = _pair_ce(stepped, x, y, a, b)
    gap2 = (lb2 - la2) if pb > pa else (la2 - lb2)
    assert gap2 < gap, (gap, gap2)
    # and the opposite step makes it worse (the sign is the teacher's, not arbitrary)
    worse = copy.deepcopy(net)
    with torch.no_grad():
        for p, g in zip(worse.parameters(), pair_grad):
            p += 1e-2 * g
    la3, lb3 = _pair_ce(worse, x, y, a, b)
    assert ((lb3 - la3) if pb > pa else (la3 - lb3)) > gap

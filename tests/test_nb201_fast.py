"""The static-graph NB201 step equals the plain single-path step: forward values,
gradients, the SGD update (weight decay and momentum only where a path ran) and the
BatchNorm running statistics, over random archs (``none`` edges and cut cells
included) and several steps."""
from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F

from track1.nas.sampler import MarginSampler
from track1.nas.step import LossConfig, train_step
from track1.nas.teacher import Teacher
from track1.nb201.fast import FastNB201Step, FastPathError
from track1.nb201.flow import cell_flow, gradient_selector, parameter_selectors
from track1.nb201.masked import masked_forward
from track1.nb201.space import PAPER_OPS, all_archs
from track1.nb201.supernet import NB201Supernet


def _net(seed: int = 0, **kw) -> NB201Supernet:
    torch.manual_seed(seed)
    net = NB201Supernet(num_classes=5, C=4, N=1, **kw)
    with torch.no_grad():  # non-trivial BN affine and running stats
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                if m.affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)
    return net.double().train()


def _batch(seed: int = 1, n: int = 6):
    # float64: the tiny test nets have near-constant BN inputs in cut cells, where float32
    # rounding (1e-7) is amplified to 1e-2 in later gradients for either implementation
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64),
            torch.randint(0, 5, (n,), generator=g))


def _sgd(net, wd=5e-4, momentum=0.9, nesterov=True, lr=0.05):
    decay = [p for p in net.parameters() if p.ndim > 1]
    rest = [p for p in net.parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": wd},
                            {"params": rest, "weight_decay": 0.0}],
                           lr=lr, momentum=momentum, nesterov=nesterov)


def _close(a, b, what, tol=1e-9):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol / 10, msg=lambda m: f"{what}: {m}")


CUT = (0, 3, 3, 0, 3, 0)   # node 3 fed only from node 1... via none: cut cell
DANGLING = (3, 2, 0, 2, 0, 4)  # node 1's conv feeds only none edges: no gradient


def test_cell_flow_rules():
    f = cell_flow((3,) * 6)
    assert f.connected and all(f.to_output)
    f = cell_flow(CUT)  # edges: 1<-0 none, 2<-0 conv, 2<-1 conv, 3<-0 none, 3<-1 conv, 3<-2 none
    assert not f.connected
    assert f.to_output == (False, False, False, False, True, False)
    f = cell_flow(DANGLING)
    assert f.connected and f.to_output[0] is False and f.to_output[1] and f.to_output[5]


@pytest.mark.parametrize("arch", [(3,) * 6, (1, 2, 3, 4, 0, 2), CUT, DANGLING, (0,) * 6])
def test_masked_forward_equals_single_path(arch):
    net = _net()
    x, _ = _batch()
    ref_net = copy.deepcopy(net)
    ref_net.set_arch(arch)
    ref = ref_net(x)
    w = torch.zeros(1, 6, 5, dtype=torch.float64)
    for e, o in enumerate(arch):
        w[0, e, o] = 1.0
    out = masked_forward(net, x, w, range(5))[0]
    _close(out, ref, "logits")
    for (name, b), rb in zip(net.named_buffers(), ref_net.buffers()):
        _close(b, rb, f"buffer {name}")


def test_gradient_selector_matches_autograd():
    """What gets a gradient in the plain path (``.grad is not None``) is exactly what the
    selector marks, for every arch of a 5-op space sample, cut cells included."""
    net = _net()
    sel_of = parameter_selectors(net)
    x, y = _batch()
    archs = [CUT, DANGLING, (0,) * 6] + random.Random(0).sample(list(all_archs()), 40)
    for arch in archs:
        net.zero_grad(set_to_none=True)
        net.set_arch(arch)
        F.cross_entropy(net(x), y).backward()
        sel = gradient_selector([arch])
        for name, p in net.named_parameters():
            assert (p.grad is not None) == bool(sel[sel_of[name]]), (arch, name)


def _plain_run(net, cfg, steps, x, y, seed, teacher=None, lams=None, space=None):
    opt = _sgd(net)
    sampler = MarginSampler(space or net.space, 0.0 if not teacher else 2.0, seed=seed)
    archs = []
    for s in range(steps):
        opt.zero_grad(set_to_none=True)
        orig = net.set_arch
        seen = []
        net.set_arch = lambda a, orig=orig, seen=seen: (seen.append(a), orig(a))[1]
        terms = train_step(net, net, x, y, cfg, sampler, teacher, (lams or [1.0] * steps)[s])
        del net.set_arch
        archs.append(seen)
        opt.step()
    return opt, archs, terms


def _fast_run(net, cfg, steps, x, y, seed, teacher=None, lams=None, space=None):
    opt = _sgd(net)
    sampler = MarginSampler(space or net.space, 0.0 if not teacher else 2.0, seed=seed)
    fast = FastNB201Step(net, opt, cfg, sampler, teacher, cuda_graph=False)
    archs = []
    for s in range(steps):
        terms = fast.step(x, y, (lams or [1.0] * steps)[s])
        archs.append(list(fast.last_archs))
    fast.sync_optimizer_state()
    return opt, archs, terms


SPOS = LossConfig(largest=False, smallest=False, num_random=2, distill=False, ranking="none")
RD_MARGIN = LossConfig(largest=False, smallest=False, num_random=2, distill=False,
                       ranking="margin", ranking_mode="reuse", margin=0.05,
                       margin_per_distance=0.01)
RD_HINGE = LossConfig(largest=False, smallest=False, num_random=3, distill=False,
                      ranking="hinge", ranking_mode="reuse")


RD_SMOOTH = LossConfig(largest=False, smallest=False, num_random=2, distill=False,
                       ranking="margin", ranking_mode="reuse", label_smoothing=0.1)


@pytest.mark.parametrize("cfg,ops", [(SPOS, None), (SPOS, PAPER_OPS), (RD_MARGIN, None),
                                     (RD_HINGE, PAPER_OPS), (RD_SMOOTH, PAPER_OPS)],
                         ids=["spos5", "spos4", "margin5", "hinge4", "smooth4"])
def test_fast_steps_equal_plain_steps(cfg, ops):
    """Several steps from one seed: same archs, weights, momentum buffers (present for
    exactly the same parameters), BN statistics and loss terms."""
    base = _net(3, ops=ops)
    x, y = _batch(5, 8)
    teacher = Teacher(base.space, "flops") if cfg.ranking != "none" else None
    lams = [0.0, 0.7, 1.5, 2.0, 1.0]
    plain, fast = copy.deepcopy(base), copy.deepcopy(base)
    opt_p, archs_p, terms_p = _plain_run(plain, cfg, 5, x, y, 11, teacher, lams)
    opt_f, archs_f, terms_f = _fast_run(fast, cfg, 5, x, y, 11, teacher, lams)
    assert archs_p == archs_f
    # both compute cross-entropy in float32 (``.float()`` on the logits); the plain step
    # takes the pair term's CE from a second float32 call, so its logit gradient is the
    # sum of two rounded terms where the fast step has one: 1e-8-level differences
    tol = 1e-9 if cfg.ranking == "none" else 1e-5
    for (name, p), q in zip(plain.named_parameters(), fast.parameters()):
        _close(q, p, f"param {name}", tol)
        sp, sf = opt_p.state.get(p, {}), opt_f.state.get(q, {})
        assert ("momentum_buffer" in sp) == ("momentum_buffer" in sf), name
        if "momentum_buffer" in sp:
            _close(sf["momentum_buffer"], sp["momentum_buffer"], f"momentum {name}", tol)
    for (name, b), c in zip(plain.named_buffers(), fast.buffers()):
        _close(c, b, f"buffer {name}", tol)
    # the plain step sums its terms in float32 on the host side
    assert float(terms_f["random"]) == pytest.approx(terms_p["random"], rel=1e-6)
    if cfg.ranking != "none":
        # a difference of two float32 CEs: relative error grows by cancellation
        assert float(terms_f["rank"]) == pytest.approx(terms_p["rank"], rel=1e-5, abs=1e-6)


def test_fast_margin_measured_on_the_samplers_distance():
    """The sampler measures Hamming distance where the supernet's space measures group
    distance: both steps take the pair's margin from the sampler's view, so the rank
    terms agree (the fast step once read the supernet's space: 1.700 against 1.950)."""
    cfg = LossConfig(largest=False, smallest=False, num_random=3, distill=False,
                     ranking="margin", ranking_mode="reuse", margin=0.1,
                     margin_per_distance=0.3)
    base = _net(7, ops=PAPER_OPS)
    x, y = _batch(6, 8)
    teacher = Teacher(base.space, "flops")
    view = base.space.with_distance("hamming")
    plain, fast = copy.deepcopy(base), copy.deepcopy(base)
    _, archs_p, terms_p = _plain_run(plain, cfg, 1, x, y, 3, teacher, space=view)
    _, archs_f, terms_f = _fast_run(fast, cfg, 1, x, y, 3, teacher, space=view)
    assert archs_p == archs_f
    pairs = list(zip(archs_p[0], archs_p[0][1:]))
    assert any(view.distance(a, b) != base.space.distance(a, b) for a, b in pairs)
    assert float(terms_f["rank"]) == pytest.approx(terms_p["rank"], rel=1e-5, abs=1e-6)
    assert terms_p["rank"] > 0


def test_off_path_ops_get_no_update_at_all():
    """A cut cell: nothing before the last cell moves (no weight decay, no momentum),
    even with momentum buffers already present from an earlier step."""
    net = _net(4)
    x, y = _batch(2)
    opt = _sgd(net)
    fast = FastNB201Step(net, opt, SPOS, MarginSampler(net.space, seed=0), cuda_graph=False)
    fast.step(x, y, 1.0, archs=[(3,) * 6, (2,) * 6])    # every conv gets a buffer
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    fast.step(x, y, 1.0, archs=[CUT, CUT])
    sel = gradient_selector([CUT])
    for name, sel_i in parameter_selectors(net).items():
        moved = not torch.equal(before[name], dict(net.named_parameters())[name])
        assert moved == bool(sel[sel_i]), name


def test_masked_sgd_state_round_trip():
    net = _net(5)
    x, y = _batch(3)
    opt = _sgd(net)
    fast = FastNB201Step(net, opt, SPOS, MarginSampler(net.space, seed=1), cuda_graph=False)
    for _ in range(2):
        fast.step(x, y, 1.0)
    fast.sync_optimizer_state()
    state = copy.deepcopy(opt.state_dict())
    net2 = copy.deepcopy(net)
    opt2 = _sgd(net2)
    opt2.load_state_dict(state)
    fast2 = FastNB201Step(net2, opt2, SPOS, MarginSampler(net2.space, seed=1), cuda_graph=False)
    fast2.load_optimizer_state()
    for a, b in zip(fast.opt.groups, fast2.opt.groups):
        assert torch.equal(a["buf"], b["buf"]) and torch.equal(a["has_buf"], b["has_buf"])


def test_unsupported_configs_are_refused():
    net = _net()
    with pytest.raises(FastPathError, match="loss.largest"):
        FastNB201Step(net, _sgd(net), LossConfig(), MarginSampler(net.space))
    with pytest.raises(FastPathError, match="diffkendall"):
        FastNB201Step(net, _sgd(net), LossConfig(largest=False, smallest=False, distill=False,
                                                 ranking="diffkendall", ranking_mode="reuse"),
                      MarginSampler(net.space), teacher=object())


# ------------------------------------------------------------------ through the trainer
def _bench_config(tmp_path, name: str, engine: str, ranking: str = "margin", **extra) -> dict:
    from track1.train.config import resolve_config
    sets = ["space=nb201", "model={num_classes: 10, C: 4, N: 1, ops: [skip_connect, "
            "nor_conv_1x1, nor_conv_3x3, avg_pool_3x3], bn_affine: false}",
            "loss={largest: false, smallest: false, distill: false, num_random: 2, "
            f"ranking: {ranking}, ranking_mode: reuse}}",
            "sampler={threshold: 6.7, distance: group}",
            "teacher.priors=flops", "runtime.save_every_steps=0", "runtime.progress=false",
            "runtime.log_interval=2",
            "optim.weight_decay=5e-4", "optim.nesterov=false", "schedule.warmup_epochs=0",
            "schedule.per=epoch",
            "schedule.min_lr=0.001", f"runtime.engine={engine}", "init.zero_residual=false",
            "optim.clip_grad=null"]
    overrides = {"ckpt_dir": str(tmp_path), "name": name, "epochs": 2, "batch_size": 4,
                 "max_steps_per_epoch": 3, **extra}
    return resolve_config("demo", overrides, sets)


def test_trainer_fast_engine_equals_plain_engine(tmp_path):
    from track1.infra.checkpoint import load_checkpoint
    from track1.train.loop import train
    from tests.test_train import SyntheticBatches
    paths = {e: train(_bench_config(tmp_path, e, e), batches=SyntheticBatches(size=16),
                      log=lambda s: None) for e in ("plain", "fast")}
    a, b = (load_checkpoint(paths[e]) for e in ("plain", "fast"))
    assert a["step"] == b["step"] == 6 and a["sampler"] == b["sampler"]
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sorted(sa) == sorted(sb)          # momentum buffers for the same parameters
    for i in sa:
        torch.testing.assert_close(sb[i]["momentum_buffer"], sa[i]["momentum_buffer"],
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("first_engine", ["fast", "plain"])
def test_fast_engine_resume_equals_uninterrupted(tmp_path, first_engine):
    """Killed after 4 of 6 steps and resumed with the fast engine: bitwise equal to an
    uninterrupted fast run on CPU, also when the first part ran on the plain engine
    (checkpoints are engine-neutral)."""
    from track1.infra.checkpoint import load_checkpoint
    from track1.train.loop import train
    from tests.test_train import SyntheticBatches
    whole = train(_bench_config(tmp_path, "whole", "fast"), batches=SyntheticBatches(size=16),
                  log=lambda s: None)
    train(_bench_config(tmp_path, "split", first_engine), batches=SyntheticBatches(size=16),
          log=lambda s: None, stop_after_steps=4)
    split = train(_bench_config(tmp_path, "split", "fast"), batches=SyntheticBatches(size=16),
                  log=lambda s: None)
    a, b = load_checkpoint(whole), load_checkpoint(split)
    for k, v in a["model"].items():
        if first_engine == "fast":
            assert torch.equal(v, b["model"][k]), k
        else:
            torch.testing.assert_close(b["model"][k], v, rtol=1e-4, atol=1e-5, msg=k)
    assert sorted(a["optimizer"]["state"]) == sorted(b["optimizer"]["state"])


def test_label_smoothing_reaches_every_label_term():
    """loss.label_smoothing (issue 14, item 5) is the CE of every label term, plain and fast."""
    net = _net(6)
    x, y = _batch(4)
    arch = (3, 1, 2, 4, 3, 1)

    class Fixed:
        def sample(self):
            return arch
    cfg = LossConfig(largest=False, smallest=False, num_random=1, distill=False,
                     ranking="none", label_smoothing=0.2)
    terms = train_step(net, net, x, y, cfg, Fixed())
    net.set_arch(arch)
    want = F.cross_entropy(net(x).float(), y, label_smoothing=0.2).item()
    plain = F.cross_entropy(net(x).float(), y).item()
    assert terms["random"] == pytest.approx(want, rel=1e-6) and abs(want - plain) > 1e-3
    with pytest.raises(ValueError, match="label_smoothing"):
        LossConfig(label_smoothing=1.0)

"""Distillation from a frozen external teacher (``loss.teacher_kd``, ``kd_teacher``).

The gradient of a step with the teacher is checked term by term in
tests/test_step_terms.py (the ``teacher_kd_*`` cases); here: weight 0 is the plain step
bitwise, the teacher runs once per step under no_grad and autocast, the trainer loads
it frozen (any track1 checkpoint, or the organisers' ``.pdparams``), keeps it out of
the optimiser and the checkpoint, resumes bitwise, and refuses a teacher of another
class count in one line before writing anything.
"""
from __future__ import annotations

import contextlib
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import nn

import track1  # noqa: F401
from track1.infra.checkpoint import load_checkpoint, save_atomic
from track1.cli import main
from track1.nas.sampler import MarginSampler
from track1.nas.step import LossConfig, train_step
from track1.nas.teacher import Teacher
from track1.nb201.supernet import NB201Supernet
from track1.registry import build_supernet
from track1.train.config import TrainConfigError, resolve_config
from track1.train.errors import TrainError
from track1.train.kd_teacher import freeze_teacher, load_kd_teacher
from track1.train.loop import train
from track1.train.trainer import Trainer
from tests.test_train import SyntheticBatches, _config

TINY = "model={num_classes: 10, C: 4, N: 1}"


class CountingTeacher(nn.Module):
    """A frozen teacher that records how, and how often, it was called."""

    def __init__(self, classes: int = 10, seed: int = 5) -> None:
        super().__init__()
        torch.manual_seed(seed)
        sup = NB201Supernet(num_classes=classes, C=4, N=1)
        self.net = freeze_teacher(sup.extract(sup.space.largest()))
        self.calls: list[dict] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append({"grad": torch.is_grad_enabled(), "autocast": AUTOCAST[0]})
        return self.net(x)


AUTOCAST = [False]


@contextlib.contextmanager
def _fake_autocast():
    AUTOCAST[0] = True
    try:
        yield
    finally:
        AUTOCAST[0] = False


def _step(cfg: LossConfig, external=None, autocast=None):
    torch.manual_seed(0)
    net = NB201Supernet(num_classes=10, C=4, N=1).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 16, 16, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    teacher = Teacher(net.space, "flops") if cfg.ranking != "none" else None
    terms = train_step(net, net, x, y, cfg, MarginSampler(net.space, 2, seed=0), teacher,
                       lam=0.7, external_teacher=external, autocast=autocast)
    return terms, [None if p.grad is None else p.grad.clone() for p in net.parameters()]


CONFIGS = [dict(), dict(ranking="hinge", num_pairs=1),
           dict(ranking="margin", ranking_mode="reuse"),
           dict(ranking="diffkendall", ranking_mode="reuse", num_random=3),
           dict(largest=False, smallest=False, num_random=1, distill=False)]


# ------------------------------------------------------------------- the step
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())) or "sandwich")
def test_weight_zero_is_the_plain_step_bitwise(kw):
    """teacher_kd = 0 (the default): a teacher passed in is never called, and the
    gradients and reported terms are bitwise those of a step without one."""
    cfg = LossConfig(**kw)
    assert cfg.teacher_kd == 0.0
    teacher = CountingTeacher()
    terms_a, grads_a = _step(cfg)
    terms_b, grads_b = _step(cfg, external=teacher)
    assert teacher.calls == []
    assert terms_a == terms_b and "teacher_kd" not in terms_a
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads_a, grads_b))


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(map(str, kw.values())) or "sandwich")
def test_teacher_runs_once_per_step_without_grad_inside_autocast(kw):
    cfg = LossConfig(**kw, teacher_kd=0.5)
    teacher = CountingTeacher()
    terms, grads = _step(cfg, external=teacher, autocast=_fake_autocast)
    assert teacher.calls == [{"grad": False, "autocast": True}]
    assert "teacher_kd" in terms and terms["teacher_kd"] > 0
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    # and it changes the step
    _, plain = _step(LossConfig(**kw))
    assert any(not torch.equal(a, b) for a, b in zip(grads, plain) if a is not None)


def test_weight_without_a_teacher_and_bad_weights_are_refused():
    with pytest.raises(ValueError, match="needs an external teacher"):
        _step(LossConfig(teacher_kd=0.5))
    for bad in (-0.1, 1.5, True, "0.5", float("nan")):
        with pytest.raises(ValueError, match=r"teacher_kd must be in \[0, 1\]"):
            LossConfig(teacher_kd=bad)
    with pytest.raises(ValueError, match="all of them are off"):
        LossConfig(largest=False, smallest=False, num_random=0, distill=False, ranking="hinge",
                   teacher_kd=0.5)
    LossConfig(teacher_kd=1.0)          # pure teacher distillation is allowed


def test_fast_engine_refuses_the_external_teacher():
    from track1.nb201.fast import FastPathError, check_supported
    cfg = LossConfig(largest=False, smallest=False, num_random=2, distill=False)
    check_supported(cfg)
    with pytest.raises(FastPathError, match="teacher_kd"):
        check_supported(LossConfig(largest=False, smallest=False, num_random=2, distill=False,
                                   teacher_kd=0.5))


# ------------------------------------------------------------------- the config
@pytest.mark.parametrize("sets,needle", [
    (["loss.teacher_kd=0.5"], "go together"),
    (["kd_teacher.file=t.pth"], "go together"),
    (["kd_teacher.arch=abc"], "needs 'kd_teacher.file'"),
    (["kd_teacher.file=t.pth", "loss.teacher_kd=0.5", "kd_teacher.bn=eval"], "kd_teacher.bn"),
    (["kd_teacher.file=5", "loss.teacher_kd=0.5"], "must be a string"),
    (["kd_teacher=t.pth"], "go together"),   # the old flat key: the file
])
def test_config_checks(sets, needle):
    with pytest.raises(TrainConfigError, match=needle):
        resolve_config("demo", None, sets)


# ------------------------------------------------------------------- loading
def _nb201_checkpoint(path, classes: int = 10, seed: int = 3, subnet: str | None = None):
    torch.manual_seed(seed)
    cfg = resolve_config("demo", {"name": "teacher"}, ["space=nb201",
                                                       f"model={{num_classes: {classes}, C: 4, N: 1}}"])
    if subnet is not None:
        cfg.subnet = subnet
    net = build_supernet(cfg.space, cfg.model)
    with torch.no_grad():   # stored statistics unlike a fresh BN's, so the modes differ
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None:
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    save_atomic({"model": net.state_dict(), "config": cfg.to_dict()}, path)
    return net


def test_checkpoint_teacher_is_its_largest_frozen(tmp_path):
    path = tmp_path / "t.pth"
    sup = _nb201_checkpoint(path).eval()
    x = torch.randn(4, 3, 16, 16)
    stored = load_kd_teacher(path, 10, bn="stored")
    assert not stored.training and all(not p.requires_grad for p in stored.parameters())
    sup.set_arch(sup.space.largest())
    with torch.no_grad():
        torch.testing.assert_close(stored(x), sup(x))
    # auto: a supernet's stored statistics mix its subnets -> batch statistics, no buffers
    logs = []
    auto = load_kd_teacher(path, 10, log=logs.append)
    assert "BN batch statistics" in logs[0] and not auto.training
    assert all(m.running_mean is None for m in auto.modules() if isinstance(m, nn.BatchNorm2d))
    before = {k: v.clone() for k, v in auto.state_dict().items()}
    with torch.no_grad():
        a, b = auto(x), auto(x[:2])
    assert not torch.allclose(a[:2], b)            # batch statistics: depends on the batch
    assert all(torch.equal(v, auto.state_dict()[k]) for k, v in before.items())
    # another arch of the checkpoint
    code = sup.space.encode(sup.space.smallest())
    small = load_kd_teacher(path, 10, arch=code, bn="stored")
    sup.set_arch(sup.space.smallest())
    with torch.no_grad():
        torch.testing.assert_close(small(x), sup(x))
    with pytest.raises(TrainError, match="kd_teacher.arch"):
        load_kd_teacher(path, 10, arch="not-a-code")


def test_auto_keeps_stored_statistics_of_a_network_trained_alone(tmp_path):
    torch.manual_seed(0)
    code = NB201Supernet(num_classes=10, C=4, N=1).space.encode(
        NB201Supernet(num_classes=10, C=4, N=1).space.largest())
    _nb201_checkpoint(tmp_path / "alone.pth", subnet=code)
    logs = []
    load_kd_teacher(tmp_path / "alone.pth", 10, log=logs.append)
    assert "BN stored statistics" in logs[0]


def test_class_count_and_missing_file_are_one_clear_error(tmp_path):
    _nb201_checkpoint(tmp_path / "five.pth", classes=5)
    with pytest.raises(TrainError, match="predicts 5 classes, this run has 10"):
        load_kd_teacher(tmp_path / "five.pth", 10)
    with pytest.raises(TrainError, match="file not found"):
        load_kd_teacher(tmp_path / "nope.pth", 10)


def _write_pdparams(path, net) -> None:
    """The organisers' layout (tests/test_pdparams.py writes it the same way)."""
    from tests.test_pdparams import _paddle_name
    arrays = OrderedDict()
    for k, v in net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            a = v.numpy().copy()
            arrays[_paddle_name(k)] = a.T.copy() if k == "fc.weight" else a
    with open(path, "wb") as f:
        pickle.dump(arrays, f, protocol=4)


def test_pdparams_teacher_is_the_organisers_resnet48(tmp_path):
    torch.manual_seed(2)
    src = build_supernet("track1_resnet48", {"num_classes": 10}).eval()
    path = tmp_path / "resnet48.pdparams"
    _write_pdparams(path, src)
    logs = []
    teacher = load_kd_teacher(path, 10, channels_last=True, log=logs.append)
    assert "BN stored statistics" in logs[0]            # auto: a network trained as one
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(teacher(x), src(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(TrainError, match="does not fit this run's 7 classes"):
        load_kd_teacher(path, 7)


# ------------------------------------------------------------------- training
def _kd_config(tmp_path, name, teacher_path, *more_sets):
    return _config(tmp_path, name, more_sets=[f"kd_teacher.file={teacher_path}",
                                              "loss.teacher_kd=0.5", *more_sets])


@pytest.mark.parametrize("stop_after", [2, 4])
def test_training_with_a_teacher_resumes_bitwise(tmp_path, stop_after):
    teacher = tmp_path / "teacher.pth"
    _nb201_checkpoint(teacher)
    logs: list[str] = []
    whole = train(_kd_config(tmp_path, "whole", teacher, "runtime.log_interval=1"),
                  batches=SyntheticBatches(size=16), log=logs.append)
    assert any("teacher_kd" in line for line in logs)
    assert any(line.startswith("kd teacher: ") for line in logs)
    cfg = _kd_config(tmp_path, "split", teacher)
    train(cfg, batches=SyntheticBatches(size=16), log=lambda s: None, stop_after_steps=stop_after)
    split = train(cfg, batches=SyntheticBatches(size=16), log=lambda s: None)
    a, b = load_checkpoint(whole), load_checkpoint(split)
    assert a["step"] == b["step"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    ma = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    mb = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(ma, mb))
    # the teacher mattered: the same run without it ends elsewhere
    plain = load_checkpoint(train(_config(tmp_path, "plain"), batches=SyntheticBatches(size=16),
                                  log=lambda s: None))
    assert any(not torch.equal(v, plain["model"][k]) for k, v in a["model"].items()
               if v.is_floating_point())


def test_teacher_is_frozen_and_not_in_the_checkpoint(tmp_path):
    teacher_path = tmp_path / "teacher.pth"
    _nb201_checkpoint(teacher_path)
    trainer = Trainer(_kd_config(tmp_path, "frozen", teacher_path, "kd_teacher.bn=stored"),
                      batches=SyntheticBatches(size=16), log=lambda s: None)
    teacher = trainer.kd_teacher
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    calls = []
    teacher.register_forward_hook(lambda m, i, o: calls.append(1))
    last = trainer.fit()
    assert len(calls) == trainer.global_step == 6         # once per step
    assert not teacher.training
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # buffers too
    fresh = load_kd_teacher(teacher_path, 10, bn="stored")
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in before.items())
    # not optimised, not saved
    ids = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not ids & {id(p) for p in teacher.parameters()}
    ckpt = load_checkpoint(last)
    assert set(ckpt["model"]) == set(trainer.supernet.state_dict())
    assert sum(len(g["params"]) for g in ckpt["optimizer"]["param_groups"]) == \
        len(list(trainer.supernet.parameters()))
    assert ckpt["config"]["kd_teacher"]["file"] == str(teacher_path)
    assert ckpt["loss_config"]["teacher_kd"] == 0.5


def test_cli_teacher_of_another_class_count_is_one_line_and_writes_nothing(tmp_path, capsys):
    _nb201_checkpoint(tmp_path / "five.pth", classes=5)
    ck = tmp_path / "ck"
    rc = main(["train", "--no-progress", "--ckpt-dir", str(ck), "--space", "nb201",
               "--set", TINY, "--set", "sampler.threshold=2", "--epochs", "1",
               "--max-steps-per-epoch", "1", "--batch-size", "4",
               "--set", f"kd_teacher={tmp_path / 'five.pth'}", "--set", "loss.teacher_kd=0.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert "predicts 5 classes, this run has 10" in err
    assert not ck.exists()

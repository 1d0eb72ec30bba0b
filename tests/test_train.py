"""The training loop: resume equals uninterrupted, the CLI end to end, bad inputs."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from track1.infra.checkpoint import find_latest, load_checkpoint, save_atomic
from track1.cli import main
from track1.registry import build_supernet
from track1.train.config import TrainConfig, TrainConfigError, resolve_config
from track1.train.loop import train


class SyntheticBatches:
    """The ``TrainBatches`` interface over seeded random tensors (tiny and fast)."""

    def __init__(self, steps: int = 3, batch: int = 4, size: int = 32, classes: int = 10) -> None:
        self.steps, self.batch, self.size, self.classes = steps, batch, size, classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def batch_at(self, epoch: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(1000 * epoch + step)
        return (torch.randn(self.batch, 3, self.size, self.size, generator=g),
                torch.randint(0, self.classes, (self.batch,), generator=g))

    def iter_from(self, start: int = 0):
        for step in range(start, self.steps):
            yield self.batch_at(self.epoch, step)


def _config(tmp_path, name: str, more_sets: list[str] = (), **extra) -> TrainConfig:
    """The demo recipe (sandwich + hinge pairs + margin sampler) on a tiny NAS-Bench-201
    supernet: the trainer is space-generic, and this keeps the test to seconds.
    ``more_sets`` are ``--set`` items applied after these."""
    sets = ["loss.num_random=1", "loss.num_pairs=1", "runtime.save_every_steps=0",
            "runtime.progress=false", "optim.lr=0.4", "schedule.warmup_epochs=0.5",
            "runtime.log_interval=100", "space=nb201", "model={num_classes: 10, C: 4, N: 1}",
            "sampler.threshold=2"]
    overrides = {"runtime.ckpt_dir": str(tmp_path), "name": name, "schedule.epochs": 2,
                 "data.batch_size": 4, "schedule.max_steps_per_epoch": 3, **extra}
    return resolve_config("demo", overrides, sets + list(more_sets))


@pytest.mark.parametrize("stop_after", [2, 4])
def test_resume_equals_uninterrupted(tmp_path, stop_after):
    whole = train(_config(tmp_path, "whole"), batches=SyntheticBatches(size=16),
                  log=lambda s: None)
    cfg = _config(tmp_path, "split")
    train(cfg, batches=SyntheticBatches(size=16), log=lambda s: None, stop_after_steps=stop_after)
    mid = load_checkpoint(tmp_path / "split" / "last.pth")
    assert mid["step"] == stop_after
    split = train(cfg, batches=SyntheticBatches(size=16), log=lambda s: None)  # resume: auto
    a, b = load_checkpoint(whole), load_checkpoint(split)
    assert a["step"] == b["step"] == 6 and a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k                            # bitwise
    ma = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    mb = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(ma, mb))
    assert a["sampler"] == b["sampler"]
    # and it is not trivially equal: training moved the weights
    fresh = build_supernet(a["config"]["space"], a["config"]["model"]).state_dict()
    assert any(not torch.equal(fresh[k], v) for k, v in a["model"].items() if v.is_floating_point())


def test_cli_train_end_to_end_on_embedded_data(tmp_path, capsys):
    rc = main(["train", "--ckpt-dir", str(tmp_path), "--name", "demo", "--epochs", "1",
               "--max-steps-per-epoch", "2", "--batch-size", "4", "--no-progress",
               "--set", "loss.num_random=1", "--set", "loss.num_pairs=1",
               "--set", "runtime.log_interval=1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "largest" in out and "rank" in out and "img/s" in out and "lambda" in out
    last = find_latest(tmp_path)
    assert last == tmp_path / "demo" / "last.pth" and (tmp_path / "demo" / "config.yaml").is_file()
    ckpt = load_checkpoint(last)
    assert ckpt["config"]["space"] == "track1_resnet48" and ckpt["image_size"] == 32
    net = build_supernet(ckpt["config"]["space"], ckpt["config"]["model"])
    net.load_state_dict(ckpt["model"])                 # the evaluator's rebuild path
    # a finished run resumes to "nothing to do" and leaves the file alone
    before = last.read_bytes()
    assert main(["train", "--ckpt-dir", str(tmp_path), "--name", "demo", "--epochs", "1",
                 "--max-steps-per-epoch", "2", "--batch-size", "4", "--no-progress",
                 "--set", "loss.num_random=1", "--set", "loss.num_pairs=1",
                 "--set", "runtime.log_interval=1"]) == 0
    assert last.read_bytes() == before
    assert "nothing to do" in capsys.readouterr().out


def _fails(args, capsys, *expect):
    rc = main(["train", "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    for e in expect:
        assert e in err, err


def test_bad_inputs_one_line_and_nothing_written(tmp_path, capsys):
    ck = str(tmp_path / "ck")
    _fails(["--ckpt-dir", ck, "--data", str(tmp_path / "nope")], capsys, "not found")
    empty = tmp_path / "empty"
    (empty / "train" / "cat").mkdir(parents=True)
    _fails(["--ckpt-dir", ck, "--data", str(empty)], capsys, "no images")
    _fails(["--ckpt-dir", ck, "--set", "model.num_classes=5"], capsys, "10 classes",
           "num_classes is 5")
    _fails(["--ckpt-dir", ck, "--set", "bogus=1"], capsys, "unknown config key")
    _fails(["--ckpt-dir", ck, "--batch-size", "0"], capsys, "batch_size")
    _fails(["--ckpt-dir", ck, "--config", "nonexistent"], capsys, "config not found")
    assert not (tmp_path / "ck").exists()               # nothing written by any of them

    run = tmp_path / "ck2" / "demo"
    run.mkdir(parents=True)
    corrupt = run / "last.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    _fails(["--ckpt-dir", str(tmp_path / "ck2")], capsys, "corrupt or partial")
    assert corrupt.read_bytes() == b"PK\x03\x04 truncated"
    assert not (run / "config.yaml").exists()

    other = tmp_path / "other.pth"
    cfg = resolve_config("demo", {"name": "x"}, ["model.num_classes=5"])
    save_atomic({"model": {}, "config": cfg.to_dict(), "epoch": 0, "epoch_step": 0, "step": 0},
                other)
    _fails(["--ckpt-dir", str(tmp_path / "ck3"), "--resume", str(other)], capsys,
           "5 classes", "has 10")
    _fails(["--ckpt-dir", str(tmp_path / "ck3"), "--init-from", str(other)], capsys,
           "5 classes", "init.head=false")
    assert not (tmp_path / "ck3").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None,
                    reason="tensorboard installed: the missing-package error cannot show")
def test_tensorboard_missing_is_one_clear_line(tmp_path, capsys):
    _fails(["--ckpt-dir", str(tmp_path), "--tensorboard", "--max-steps-per-epoch", "1",
            "--batch-size", "4"], capsys, "tensorboard")


def test_config_resolution_order():
    cfg = resolve_config("demo", {"schedule.epochs": 7}, ["loss.ranking=margin",
                                                          "sampler.threshold=5",
                                                          "lambda.schedule=sine"])
    assert cfg.schedule.epochs == 7 and cfg.loss.ranking == "margin"
    assert cfg.lambda_.schedule == "sine" and cfg.sampler.threshold == 5 and cfg.name == "demo"
    assert cfg.optim.lr == 0.05 and cfg.data.image_size == 32   # from demo.yaml
    ref = resolve_config("track1_imagenet")
    assert ref.optim.lr == 0.001 and ref.schedule.epochs == 70 and ref.optim.weight_decay == 0.0
    assert ref.schedule.warmup_epochs == 5 and ref.model["num_classes"] == 1000
    with pytest.raises(TrainConfigError):
        resolve_config("demo", None, ["loss.ranking=best"])


def test_torchrun_ddp_two_ranks_on_cpu(tmp_path):
    """The same code under torchrun (gloo, 2 CPU ranks): no_sync on all but the last
    backward, every parameter reduced, rank 0 writes the checkpoint."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and not shutil.which("torchrun"):
        pytest.skip("torchrun not available")
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    r = subprocess.run(
        [str(torchrun) if torchrun.exists() else "torchrun", "--standalone", "--nproc_per_node",
         "2", "-m", "track1", "train", "--no-progress", "--device", "cpu", "--ckpt-dir",
         str(tmp_path),
         "--name", "ddp", "--space", "nb201", "--set", "model={num_classes: 10, C: 4, N: 1}",
         "--set", "sampler.threshold=2", "--epochs", "1", "--max-steps-per-epoch", "2",
         "--batch-size", "4", "--set", "runtime.log_interval=1"],
        capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("checkpoint: ") == 1          # printed by rank 0 only
    ckpt = load_checkpoint(tmp_path / "ddp" / "last.pth")
    assert ckpt["step"] == 2 and ckpt["config"]["space"] == "nb201"


def test_epoch_stepped_schedule_and_lr_scaling(tmp_path):
    cfg = _config(tmp_path, "ep", epochs=3)
    cfg.schedule.per, cfg.schedule.warmup_epochs = "epoch", 1
    lrs = []
    train(cfg, batches=SyntheticBatches(size=16), log=lambda s: lrs.append(s))
    ckpt = load_checkpoint(tmp_path / "ep" / "last.pth")
    assert ckpt["epoch"] == 3 and ckpt["step"] == 9
    assert "peak lr 0.00625" in lrs[0]                      # 0.4 x 4 / 256


class NaNBatches(SyntheticBatches):
    def iter_from(self, start: int = 0):
        for x, y in super().iter_from(start):
            yield x * float("nan"), y


def test_divergence_stops_before_writing(tmp_path):
    from track1.train.errors import TrainError
    with pytest.raises(TrainError, match="diverged"):
        train(_config(tmp_path, "nan"), batches=NaNBatches(size=16), log=lambda s: None)
    assert not (tmp_path / "nan" / "last.pth").exists()


def test_resume_equals_uninterrupted_resnet48(tmp_path):
    """The same check on the Track 1 ResNet-48 supernet (3 steps, stop after 1)."""
    extra = ["space=track1_resnet48", "model={num_classes: 10, activation: relu}",
             "sampler.threshold=33", "schedule.epochs=1", "schedule.max_steps_per_epoch=3",
             "optim.lr=0.05"]

    def cfg(name):
        return _config(tmp_path, name, more_sets=extra)
    whole = train(cfg("whole"), batches=SyntheticBatches(batch=2), log=lambda s: None)
    train(cfg("split"), batches=SyntheticBatches(batch=2), log=lambda s: None, stop_after_steps=1)
    split = train(cfg("split"), batches=SyntheticBatches(batch=2), log=lambda s: None)
    a, b = load_checkpoint(whole), load_checkpoint(split)
    assert a["step"] == b["step"] == 3
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_more_local_ranks_than_gpus_is_one_clear_error(monkeypatch):
    """torchrun with more processes per node than visible GPUs: name the fix, do not
    fail later inside CUDA with an invalid device ordinal."""
    from track1.infra import distributed as D
    monkeypatch.setattr(D.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(D.torch.cuda, "device_count", lambda: 1)
    assert D.pick_device("auto", 0) == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK 1 .* only 1 CUDA device.*--device cpu"):
        D.pick_device("auto", 1)
    assert D.pick_device("cpu", 5) == torch.device("cpu")


@pytest.mark.parametrize("item,named", [
    ("sampler.thresold=99", "sampler.thresold"),
    ("lambda.epochs_per_unt=3", "lambda.epochs_per_unt"),
    ("teacher.zen.batchsize=4", "teacher.zen.batchsize"),
    ("loss.num_randon=3", "loss.num_randon"),
    ("model.widht=2", "model.widht"),
    ("data.subset={fraction: 0.5, sed: 1}", "data.subset.sed"),
    ("optim.lrr=0.1", "optim.lrr"), ("schedule.epoch=2", "schedule.epoch"),
    ("runtime.devise=cpu", "runtime.devise"), ("init.form=x.pth", "init.form"),
    ("kd_teacher.archs=1", "kd_teacher.archs"),
    # an old flat key lands in its section, where an unknown key below it is named
    ("train_subset={fraction: 0.5, sed: 1}", "data.subset.sed"),
])
def test_unknown_keys_refused_at_every_depth(tmp_path, capsys, item, named):
    """A typo inside a section is one line naming the key's full path, exit 2, and
    nothing is written."""
    assert main(["train", "--ckpt-dir", str(tmp_path), "--set", item]) == 2
    err = capsys.readouterr().err
    assert f"'{named}'" in err and "known keys" in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_more_epochs_on_resume_rebuild_the_schedule(tmp_path):
    """Resuming a finished 2-epoch run with epochs=3 trains the third epoch at a real lr
    (the restored schedule used to end at the old length: lr 0 for the whole new epoch,
    so the weights did not move) and says so."""
    train(_config(tmp_path, "more", warmup_epochs=0.0), batches=SyntheticBatches(size=16),
          log=lambda s: None)
    two = load_checkpoint(tmp_path / "more" / "last.pth")["model"]
    logs: list[str] = []
    train(_config(tmp_path, "more", epochs=3, warmup_epochs=0.0),
          batches=SyntheticBatches(size=16), log=logs.append)
    three = load_checkpoint(tmp_path / "more" / "last.pth")
    assert three["epoch"] == 3 and three["step"] == 9
    assert any("lr schedule is rebuilt for 3 epochs" in line for line in logs)
    weights = [k for k in two if two[k].is_floating_point() and "running_" not in k]
    assert any(not torch.equal(two[k], three["model"][k]) for k in weights)


def test_init_from_that_loads_nothing_is_refused(tmp_path, capsys):
    """Issue 13, item 9: --init-from a checkpoint of the other search space (or one whose
    tensors do not fit) loaded nothing and trained on from scratch, exit 0."""
    nb = tmp_path / "nb201.pth"
    cfg = resolve_config("demo", {"name": "x"}, ["space=nb201",
                                                 "model={num_classes: 10, C: 4, N: 1}"])
    save_atomic({"model": build_supernet(cfg.space, cfg.model).state_dict(),
                 "config": cfg.to_dict()}, nb)
    _fails(["--ckpt-dir", str(tmp_path / "ck"), "--init-from", str(nb)], capsys,
           "'nb201' supernet", "'track1_resnet48'")
    empty = tmp_path / "empty.pth"
    save_atomic({"model": {}, "config": resolve_config("demo", {"name": "y"}, []).to_dict()},
                empty)
    _fails(["--ckpt-dir", str(tmp_path / "ck"), "--init-from", str(empty)], capsys,
           "only 0 of")
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("item,named", [
    ("model.num_classes=abc", "model.num_classes"), ("optim.momentum=abc", "optim.momentum"),
    ("schedule.warmup_epochs=abc", "schedule.warmup_epochs"),
    ("optim.weight_decay=abc", "optim.weight_decay"), ("optim.clip_grad=abc", "optim.clip_grad"),
    ("optim.lr=.nan", "optim.lr"), ("optim.momentum=1.5", "optim.momentum"),
    ("runtime.threads=-1", "runtime.threads"), ("schedule.min_lr=-1", "schedule.min_lr"),
    ("runtime.save_every_steps=1.5", "runtime.save_every_steps"),
    # flags must be booleans: the string 'false' is true in Python (issue 19, M9)
    ("init.reorder='false'", "init.reorder"), ("optim.nesterov=abc", "optim.nesterov"),
    ("loss.distill=yes please", "loss.distill"), ("teacher.zen.residual=0", "teacher.zen.residual"),
    # each section checks its own values
    ("sampler.bins=1", "sampler.bins"), ("sampler.kind=roulette", "sampler.kind"),
    ("data.subset={fraction: 2}", "data.subset.fraction"),
    ("data.augment=mixup", "data.augment"), ("schedule.per=batch", "schedule.per"),
    ("runtime.engine=turbo", "runtime.engine"), ("kd_teacher.bn=frozen", "kd_teacher.bn"),
    ("val_gt={file: gt.csv, every: 0}", "val_gt.every"),
    # the model options take their supernet default's type
    ("model.activation=1", "model.activation"), ("model.drop_path=abc", "model.drop_path"),
    # an old flat key is named where it lands
    ("momentum=1.5", "optim.momentum"), ("init_reorder='false'", "init.reorder"),
])
def test_values_of_the_wrong_type_are_one_line_before_any_work(tmp_path, capsys, item, named):
    """Issue 13, item 8: these ended in tracebacks, two only after training had started."""
    assert main(["train", "--ckpt-dir", str(tmp_path), "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"config '{named}' must be" in err[0], err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("sets,needle", [
    (["model.drop_path=2"], "drop_path must be in [0, 1)"),
    (["space=nb201", "model={num_classes: 10, ops: [none, skip_connect]}"], "lack 'nor_conv_3x3'"),
])
def test_bad_model_options_are_one_line(tmp_path, capsys, sets, needle):
    args = ["train", "--ckpt-dir", str(tmp_path)]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and not any(tmp_path.iterdir())


def test_a_track1_code_given_on_the_command_line_stays_a_code():
    """Issue 19, M10: YAML reads a digit-only Track 1 code as an integer; the README's
    --set kd_teacher_arch=CODE was refused for every code."""
    from track1.train.config import resolve_config
    code = "1252233313000000223212122253130000000000006515000000"
    cfg = resolve_config("demo", None, [f"kd_teacher_arch={code}", "kd_teacher=t.pth",
                                        "loss.teacher_kd=0.5"])
    assert cfg.kd_teacher.arch == code


def test_weight_decay_only_on_conv_and_linear_weights():
    """A surviving mutant of issue 19: weight decay on BN weights and biases went unseen.
    With zero gradients one SGD step moves exactly the decayed tensors: every conv and
    linear weight, and no BN weight, BN bias or linear bias."""
    from track1.nb201.supernet import NB201Supernet
    from track1.train.builders import build_optimizer
    from track1.train.config import resolve_config
    net = NB201Supernet(num_classes=10, C=4, N=1)
    cfg = resolve_config("demo", None, ["optim.weight_decay=0.1", "optim.momentum=0",
                         "optim.nesterov=false"])
    opt = build_optimizer(net, cfg, world_size=1)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in net.named_parameters():
        assert torch.equal(p, before[name]) == (p.ndim <= 1), name


def test_two_trainings_of_one_run_folder_cannot_run_at_once(tmp_path, capsys):
    """Issue 19, M1: two `train` runs on one --name both exited 0 and one result was lost.
    The second now stops at once with one line naming the holder; the first goes on."""
    from track1.infra.folder_lock import FolderLock
    from track1.train.errors import TrainError
    held = FolderLock(tmp_path / "busy", "training", "use another --name", TrainError)
    try:
        assert main(["train", "--ckpt-dir", str(tmp_path), "--name", "busy",
                     "--max-steps-per-epoch", "1", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use by another training" in err[0] and f"pid" in err[0]
        assert not (tmp_path / "busy" / "last.pth").exists()
    finally:
        held.release()


@pytest.mark.parametrize("item,needle", [
    ("sampler.bins=1000000000", "sampler.bins"), ("sampler.bias=1e9", "sampler.bias"),
    ("sampler.archs=list.json", "sampler.archs' is read by sampler.kind list only"),
    ("part={genes: [0], values: [2.5]}", "part.values"),
    ("name=../../escaped", "plain folder name"), ("data.image_size=100000", "image_size"),
    ("data.multiscale=[224, 99999]", "multiscale[1]"),
])
def test_settings_that_hung_or_were_ignored_are_refused(tmp_path, capsys, item, needle):
    """Issue 19, L6, L8, L9: huge bins/bias hung; sampler.archs with another kind and a
    part value 2.5 were silently ignored or truncated; --name ../../x wrote outside."""
    assert main(["train", "--ckpt-dir", str(tmp_path / "ck"), "--set", item]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "ck").exists()


def test_a_teacher_cache_it_cannot_extend_must_hold_every_sampled_arch(tmp_path, capsys):
    """A proxy-cache of per-arch Gaussian probes is no way the teacher scores: training with
    it is refused before any step unless the ranking pairs come from a list the file holds
    in full (sampler.kind list)."""
    import json
    import random
    from track1.resnet48.space import ResNet48Space
    space = ResNet48Space()
    rng = random.Random(0)
    codes = [space.sample(rng).code for _ in range(3)]
    cache = tmp_path / "proxies.jsonl"
    cache.write_text("".join(json.dumps({"key": f"a{i}", "arch": c, "meco": float(i),
                                         "meco_batch": 8, "meco_resolution": 64}) + "\n"
                             for i, c in enumerate(codes[:2])))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps({f"a{i}": {"arch": c} for i, c in enumerate(codes)}))
    base = ["train", "--ckpt-dir", str(tmp_path / "ck"), "--teacher", "meco",
            "--teacher-cache", str(cache), "--max-steps-per-epoch", "1", "--no-progress"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sampler.kind 'uniform' draws archs the file lacks" in err[0], err
    assert main(base + ["--set", "sampler.kind=list", "--set", f"sampler.archs={listed}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lacks meco for 1 of the archs" in err[0] and codes[2] in err[0], err

"""The training config's sections and the flat keys of earlier versions: an old YAML file,
old ``--set`` items and an old checkpoint's saved config all read as today's sections, a
key given both ways is refused, and a resumed old checkpoint trains bitwise like an
uninterrupted run."""
from __future__ import annotations

import copy

import pytest
import torch

from track1.infra.checkpoint import load_checkpoint, save_atomic
from track1.registry import saved_image_size
from track1.train.config import (LEGACY_KEYS, TrainConfig, TrainConfigError, resolve_config,
                                 upgrade_flat_keys)
from track1.train.loop import train
from track1.train.state import check_compatible
from tests.test_train import SyntheticBatches, _config

#: the demo config as shipped before the sections (flat keys)
FLAT_DEMO = """
name: demo
space: track1_resnet48
model: {num_classes: 10, activation: relu}
data: null
image_size: 32
augment: crop_flip
batch_size: 64
epochs: 1
lr: 0.05
warmup_epochs: 0.2
sched_per: step
momentum: 0.9
nesterov: true
weight_decay: 5.0e-5
zero_init_residual: true
clip_grad: 10.0
resume: auto
loss: {largest: true, smallest: true, num_random: 2, distill: true, ranking: hinge,
       ranking_mode: extra, num_pairs: 2}
sampler: {threshold: 33, distance: null}
teacher: {priors: flops}
lambda: {schedule: warmup, cap: 2.0, epochs_per_unit: 0.5}
log_interval: 10
save_every_steps: 20
"""

#: a valid value for every old flat key, unlike its default
OLD_VALUES = {"image_size": 48, "multiscale": [32, 48], "augment": "none", "batch_size": 8,
              "workers": 2, "data": "/data/cifar", "train_subset": {"fraction": 0.5, "seed": 1},
              "lr": 0.3, "momentum": 0.5, "nesterov": False, "weight_decay": 1e-3,
              "clip_grad": 5.0, "epochs": 4, "max_steps_per_epoch": 7, "warmup_epochs": 0.5,
              "warmup_lr": 1e-4, "min_lr": 1e-3, "sched_per": "epoch", "init_from": "w.pth",
              "init_head": False, "init_reorder": True, "zero_init_residual": False,
              "kd_teacher": None, "kd_teacher_arch": None, "kd_teacher_bn": "stored",
              "device": "cpu", "amp": False, "channels_last": False, "engine": "fast",
              "cuda_graph": False, "threads": 2, "log_interval": 3, "save_every_steps": 9,
              "ckpt_dir": "/ck", "resume": "x.pth", "tensorboard": True, "progress": False}


def flat(config: dict) -> dict:
    """A sectioned config mapping written the old flat way (what old checkpoints hold)."""
    out = copy.deepcopy(config)
    leaves = {key: out[path.split(".")[0]].pop(path.split(".")[1])
              for key, path in LEGACY_KEYS.items()}
    for section in {p.split(".")[0] for p in LEGACY_KEYS.values()}:
        assert out.pop(section) == {}, section     # every key of it has an old flat name
    return {**out, **leaves}


def test_an_old_flat_yaml_reads_as_the_sectioned_one(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(FLAT_DEMO)
    assert resolve_config(str(old)).to_dict() == resolve_config("demo").to_dict()


def test_every_old_flat_set_item_lands_in_its_section():
    assert set(OLD_VALUES) == set(LEGACY_KEYS)
    for key, value in OLD_VALUES.items():
        text = "{fraction: 0.5, seed: 1}" if isinstance(value, dict) else \
            "null" if value is None else str(value).lower() if isinstance(value, bool) else \
            str(value)
        old = resolve_config("demo", None, [f"{key}={text}"]).to_dict()
        new = resolve_config("demo", None, [f"{LEGACY_KEYS[key]}={text}"]).to_dict()
        assert old == new, key
        section, leaf = LEGACY_KEYS[key].split(".")
        assert new[section][leaf] == value, key


def test_an_old_saved_config_upgrades_to_the_same_typed_config():
    now = resolve_config("demo", None, [f"{k}={v}" for k, v in
                                        (("lr", 0.3), ("epochs", 4), ("workers", 2))]).to_dict()
    old = flat(now)
    assert "optim" not in old and old["lr"] == 0.3 and old["data"] is None
    assert upgrade_flat_keys(old) != old
    assert TrainConfig.from_dict(old).to_dict() == now
    assert upgrade_flat_keys(now) == now          # a sectioned mapping comes back equal


@pytest.mark.parametrize("mapping,needle", [
    ({"lr": 0.1, "optim": {"lr": 0.2}}, "both 'lr'"),
    ({"data": "/x", "optim": {}, "image_size": 32, "train_subset": None,
      "kd_teacher_arch": "1", "kd_teacher": {"arch": "2"}}, "both 'kd_teacher_arch'"),
])
def test_a_key_given_both_ways_is_refused(mapping, needle):
    with pytest.raises(TrainConfigError, match=needle):
        upgrade_flat_keys(mapping)


def test_the_resume_check_reads_old_configs_and_names_the_dotted_key(tmp_path):
    cfg = resolve_config("demo")
    check_compatible(flat(cfg.to_dict()), cfg, tmp_path / "old.pth")     # same recipe
    # runtime and the length may change on resume; the recipe may not
    check_compatible({**flat(cfg.to_dict()), "device": "cpu", "epochs": 9}, cfg, tmp_path)
    with pytest.raises(Exception, match=r"config 'optim\.lr' differs \(0\.3 there, 0\.05 now\)"):
        check_compatible({**flat(cfg.to_dict()), "lr": 0.3}, cfg, tmp_path / "old.pth")
    with pytest.raises(Exception, match=r"config 'data\.image_size' differs"):
        check_compatible({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "image_size": 64}},
                         cfg, tmp_path / "new.pth")


@pytest.mark.parametrize("priors, tie_break, refused", [
    ("flops+zen", None, "teacher.mix"), ("meco", None, "teacher.probe"),
    ("flops", "synflow", "teacher.probe"), ("flops", None, None), ("zen", None, None)])
def test_a_run_saved_before_mix_and_probe_resumes_only_as_it_was_trained(
        tmp_path, priors, tie_break, refused):
    """A checkpoint saved before teacher.mix / teacher.probe existed mixed its priors inside
    the pair and fed its computed proxies 8 Gaussian images: read at today's defaults it
    would resume as another recipe, so the check names the key; set as it was, it
    resumes. A teacher of analytic priors alone is untouched by either."""
    cfg = resolve_config("demo", {"teacher": {"priors": priors, "tie_break": tie_break}})
    saved = cfg.to_dict()
    saved["teacher"] = {k: v for k, v in saved["teacher"].items() if k not in ("mix", "probe")}
    if refused is None:
        check_compatible(saved, cfg, tmp_path / "old.pth")
        return
    with pytest.raises(Exception, match=rf"config '{refused}' differs"):
        check_compatible(saved, cfg, tmp_path / "old.pth")
    key = refused.split(".")[1]
    as_then = resolve_config("demo", {"teacher": {
        "priors": priors, "tie_break": tie_break,
        key: {"mix": "group", "probe": "gaussian"}[key]}})
    check_compatible(saved, as_then, tmp_path / "old.pth")


@pytest.mark.parametrize("layout", ["flat", "sections"])
def test_an_old_checkpoint_resumes_bitwise(tmp_path, layout):
    """A run stopped mid-way, its checkpoint's config rewritten the old flat way (as a
    previous version saved it) or left as saved, resumes to exactly the uninterrupted
    run, its saved length read (the lr schedule restored, not rebuilt)."""
    whole = load_checkpoint(train(_config(tmp_path, "whole"), batches=SyntheticBatches(size=16),
                                  log=lambda s: None))
    cfg = _config(tmp_path, "split")
    train(cfg, batches=SyntheticBatches(size=16), log=lambda s: None, stop_after_steps=2)
    path = tmp_path / "split" / "last.pth"
    ckpt = load_checkpoint(path)
    if layout == "flat":
        ckpt["config"] = flat(ckpt["config"])
        save_atomic(ckpt, path)
    lines: list[str] = []
    split = load_checkpoint(train(cfg, batches=SyntheticBatches(size=16), log=lines.append))
    assert not any("epochs changed" in line for line in lines)   # the old length was read
    assert split["step"] == whole["step"] == 6
    assert all(torch.equal(v, split["model"][k]) for k, v in whole["model"].items())
    assert split["config"] == whole["config"] | {"name": "split"}   # saved sectioned again


def test_the_saved_image_size_of_either_layout():
    assert saved_image_size({"image_size": 64}) == 64
    assert saved_image_size({"data": None, "image_size": 48}) == 48
    assert saved_image_size({"data": {"image_size": 40}}) == 40
    assert saved_image_size({}) == 224

"""``track1 train-subnet``: stand-alone training of one arch through the supernet trainer
equals training its static network with plain SGD; it resumes bitwise; ``--val-gt``
ranks ground-truth archs during training and keeps ``best.pth`` by Kendall."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from track1.infra.checkpoint import load_checkpoint
from track1.cli import main
from track1.commands.train_subnet import SINGLE_PATH
from track1.registry import build_supernet, load_supernet
from track1.train.config import resolve_config
from track1.train.loop import train
from tests.test_train import SyntheticBatches

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
MODEL = {"num_classes": 10, "C": 4, "N": 1}


def _config(tmp_path, name: str, *sets: str):
    overrides = {"name": name, "space": "nb201", "model": dict(MODEL), "subnet": ARCH,
                 "data.batch_size": 4, "schedule.epochs": 2, "schedule.min_lr": 0.4,
                 "schedule.warmup_epochs": 0.0, "optim.lr": 0.4, "optim.weight_decay": 5e-4,
                 "optim.momentum": 0.9, "optim.nesterov": False, "init.zero_residual": False,
                 "runtime.ckpt_dir": str(tmp_path), "runtime.channels_last": False,
                 "runtime.save_every_steps": 0, "runtime.progress": False,
                 "runtime.log_interval": 100}
    # overrides skip None values: clip_grad goes through --set
    return resolve_config("demo", overrides, [*SINGLE_PATH, "optim.clip_grad=null", *sets])


def test_subnet_training_equals_training_the_static_network(tmp_path):
    """8 steps of train-subnet in the supernet's weights = 8 steps of SGD on the extracted
    static network (same init, same batches, weight decay on weights only, constant lr):
    weights and BN statistics agree."""
    cfg = _config(tmp_path, "alone")
    torch.manual_seed(cfg.seed)  # the trainer builds its supernet right after this seed
    start = build_supernet(cfg.space, cfg.model)
    space = start.space
    static = start.extract(space.decode(ARCH)).train()
    decay = [p for p in static.parameters() if p.ndim > 1]
    rest = [p for p in static.parameters() if p.ndim <= 1]
    lr = cfg.optim.lr * cfg.data.batch_size / 256
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.optim.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=0.9)
    batches = SyntheticBatches(steps=4)
    for epoch in range(cfg.schedule.epochs):
        for step in range(len(batches)):
            x, y = batches.batch_at(epoch, step)
            opt.zero_grad()
            nn.functional.cross_entropy(static(x), y).backward()
            opt.step()
    last = train(cfg, batches=SyntheticBatches(steps=4), log=lambda s: None)
    net, _ = load_supernet(last)
    trained = net.extract(space.decode(ARCH)).state_dict()
    moved = 0
    for k, v in static.state_dict().items():
        torch.testing.assert_close(trained[k], v, rtol=1e-4, atol=1e-5, msg=k)
        moved += not torch.equal(v, start.extract(space.decode(ARCH)).state_dict()[k])
    assert moved > 10  # the weights really trained


def test_subnet_training_resumes_bitwise(tmp_path):
    whole = train(_config(tmp_path, "whole"), batches=SyntheticBatches(steps=4), log=lambda s: None)
    cfg = _config(tmp_path, "split")
    train(cfg, batches=SyntheticBatches(steps=4), log=lambda s: None, stop_after_steps=3)
    split = train(cfg, batches=SyntheticBatches(steps=4), log=lambda s: None)
    a, b = load_checkpoint(whole), load_checkpoint(split)
    assert a["step"] == b["step"] == 8
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_train_subnet_command_and_bad_inputs(tmp_path, capsys):
    base = ["train-subnet", "--ckpt-dir", str(tmp_path), "--space", "nb201", "--set",
            "model={num_classes: 10, C: 4, N: 1}", "--epochs", "1", "--max-steps-per-epoch", "2",
            "--batch-size", "4", "--no-progress"]
    assert main([*base[:1], ARCH, *base[1:], "--name", "cli"]) == 0
    ckpt = load_checkpoint(tmp_path / "cli" / "last.pth")
    assert ckpt["config"]["subnet"] == ARCH and ckpt["step"] == 2
    assert ckpt["config"]["loss"]["num_random"] == 1 and not ckpt["config"]["loss"]["largest"]
    # from a supernet's weights: its space and model, and its weights as the start
    assert main(["train-subnet", ARCH, "--from-supernet", str(tmp_path / "cli" / "last.pth"),
                 "--ckpt-dir", str(tmp_path), "--name", "warm", "--epochs", "1",
                 "--max-steps-per-epoch", "1", "--batch-size", "4", "--no-progress"]) == 0
    assert load_checkpoint(tmp_path / "warm" / "last.pth")["config"]["model"] == MODEL
    capsys.readouterr()
    assert main([*base[:1], "|nor_conv_3x3~0|", *base[1:], "--name", "bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config 'subnet'" in err[0]
    assert not (tmp_path / "bad").exists()
    with pytest.raises(Exception, match="trains one arch alone"):
        resolve_config("demo", {"space": "nb201", "model": dict(MODEL), "subnet": ARCH})


def test_val_gt_ranks_and_keeps_the_best_checkpoint(tmp_path):
    """--val-gt with the NAS-Bench-201 table: a seeded subset of archs in the supernet's
    space is scored after each epoch; val_gt.jsonl has one line per check, best.pth is the
    state of the best Kendall, and a check a stop skipped is made on the restart."""
    from track1.nb201.ground_truth import ASSET
    sets = ["loss.num_random=1", "loss.num_pairs=1", "runtime.save_every_steps=0",
            "runtime.progress=false",
            "runtime.log_interval=100", "space=nb201", "model={num_classes: 10, C: 4, N: 1}",
            "runtime.channels_last=false", f"val_gt.file={ASSET}", "val_gt.limit=12",
            "val_gt.eval_images=40", "val_gt.calib_images=16", "val_gt.batch_size=40"]
    overrides = {"ckpt_dir": str(tmp_path), "name": "gt", "epochs": 3, "batch_size": 4}
    logs: list[str] = []
    cfg = resolve_config("demo", overrides, sets)
    train(cfg, batches=SyntheticBatches(steps=2), log=logs.append, stop_after_steps=4)
    lines = [json.loads(x) for x in (tmp_path / "gt" / "val_gt.jsonl").read_text().splitlines()]
    # stopped right after epoch 2's checkpoint, before its check: the restart makes it
    assert [r["epoch"] for r in lines] == [1] and lines[0]["n"] == 12
    train(cfg, batches=SyntheticBatches(steps=2), log=logs.append)
    lines = [json.loads(x) for x in (tmp_path / "gt" / "val_gt.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    kendalls = [r["kendall"] for r in lines]
    best_epoch = 1 + max(range(3), key=lambda i: (kendalls[i], -i))
    assert [r["best"] for r in lines] == [k > max(kendalls[:i], default=-2)
                                          for i, k in enumerate(kendalls)]
    best = load_checkpoint(tmp_path / "gt" / "best.pth")
    assert best["val_gt_best"]["epoch"] == best["epoch"] == best_epoch
    assert best["val_gt_best"]["kendall"] == kendalls[best_epoch - 1]
    assert any("val-gt after epoch 3: Kendall" in line for line in logs)
    # the scorer's noise floor beside every check (Kendall between the images' halves)
    assert all(r["split_half_kendall"] is None or -1 <= r["split_half_kendall"] <= 1
               for r in lines)
    assert any(r["split_half_kendall_neg_loss"] is not None for r in lines)
    assert any("split-half Kendall" in line for line in logs)
    # archs the table lists with 'none' edges are skipped for a 4-op supernet
    logs.clear()
    four = resolve_config("demo", {**overrides, "name": "four", "epochs": 1},
                          sets + ["model={num_classes: 10, C: 4, N: 1, "
                                  "ops: [skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3]}"])
    train(four, batches=SyntheticBatches(steps=1), log=logs.append)
    assert any("outside this space skipped" in line for line in logs)


def test_scoring_defaults_never_take_a_stand_alone_run(tmp_path, monkeypatch, capsys):
    """Issue 19, H1: after a supernet run, a later stand-alone run (train-subnet) in the same
    checkpoint folder is newer, but evaluate's default takes the supernet and names it; the
    stand-alone checkpoint passed explicitly is one line, nothing scored."""
    import os
    from track1.infra.checkpoint import find_latest
    ckpts = tmp_path / "supernet_ckpt"          # the home's default checkpoint folder
    sets = ["loss.num_random=1", "loss.num_pairs=1", "runtime.save_every_steps=0",
            "runtime.progress=false",
            "runtime.log_interval=100", "space=nb201", "model={num_classes: 10, C: 4, N: 1}",
            "runtime.channels_last=false"]
    supernet = train(resolve_config("demo", {"ckpt_dir": str(ckpts), "name": "super",
                                             "epochs": 1, "batch_size": 4}, sets),
                     batches=SyntheticBatches(steps=1), log=lambda s: None)
    alone = train(_config(ckpts, "alone"), batches=SyntheticBatches(steps=1),
                  log=lambda s: None)
    os.utime(alone, (supernet.stat().st_mtime + 10,) * 2)   # the stand-alone run is newer
    assert find_latest(ckpts) == alone
    assert find_latest(ckpts, kinds=("supernet", "fewshot")) == supernet
    monkeypatch.setenv("TRACK1_HOME", str(tmp_path))
    archs = tmp_path / "list.json"
    archs.write_text(json.dumps({"arch1": {"arch": ARCH}, "arch2": {"arch": ARCH.replace(
        "none~1", "skip_connect~1")}}))
    common = ["--archs", str(archs), "--limit", "0", "--eval-images", "16", "--calib-images",
              "16", "--device", "cpu", "--no-progress", "--results-dir", str(tmp_path / "res")]
    capsys.readouterr()
    assert main(["evaluate", *common, "--out", str(tmp_path / "s.json")]) == 0
    assert f"checkpoint {supernet}" in capsys.readouterr().out
    assert main(["evaluate", *common, "--checkpoint", str(alone), "--fresh",
                 "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one arch trained alone" in err[0]
    assert not (tmp_path / "t.json").exists()

"""Sampler kinds (issue 14, item 4): which archs a step's random slots draw."""
from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from track1.infra.checkpoint import load_checkpoint
from track1.cli import main
from track1.nas.distributions import (FlopsBalancedSpace, ListSpace, SizeBiasedSpace,
                                      sampling_space)
from track1.nb201.space import NB201Space
from track1.resnet48.official import load_arch_list
from track1.resnet48.space import ResNet48Space
from track1.train.config import TrainConfigError, resolve_config
from track1.train.loop import train
from tests.test_train import SyntheticBatches


def test_list_sampler_draws_only_listed_archs():
    space = ResNet48Space()
    listed = [space.decode(c) for c in list(load_arch_list(validate=False).values())[:50]]
    view = sampling_space(space, "list", archs=listed)
    rng = random.Random(0)
    draws = [view.sample(rng) for _ in range(500)]
    assert set(draws) <= set(listed) and len(set(draws)) > 40
    assert view.largest() == space.largest() and view.cost(listed[0]) == space.cost(listed[0])


def test_flops_balanced_evens_out_the_flops_levels():
    space = NB201Space()
    view = FlopsBalancedSpace(space, bins=5, seed=0)
    rng = random.Random(1)
    balanced = Counter(view.band(view.sample(rng)) for _ in range(3000))
    uniform = Counter(view.band(space.sample(rng)) for _ in range(3000))
    shares = [balanced[b] / 3000 for b in view.bands]
    assert all(abs(s - 1 / len(view.bands)) < 0.04 for s in shares), shares
    # the uniform draw crowds some bands: far from even
    assert max(uniform.values()) > 2 * min(uniform.get(b, 0) for b in view.bands)


def test_size_biased_prefers_large_subnets_and_bias_one_is_uniform():
    space = ResNet48Space()
    mean = lambda v, n=300: sum(space.cost(v.sample(r))["flops"] for r in [random.Random(0)]  # noqa: E731
                                for _ in range(n)) / n
    assert mean(SizeBiasedSpace(space, bias=3)) > 1.1 * mean(space)
    a, b = random.Random(5), random.Random(5)
    assert [SizeBiasedSpace(space, 1).sample(a) for _ in range(20)] == \
        [space.sample(b) for _ in range(20)]


def _config(tmp_path, name, *sets):
    base = ["loss.num_random=1", "loss.num_pairs=1", "runtime.save_every_steps=0",
            "runtime.progress=false",
            "runtime.log_interval=100", "space=nb201", "model={num_classes: 10, C: 4, N: 1}",
            "sampler.threshold=2", *sets]
    return resolve_config("demo", {"ckpt_dir": str(tmp_path), "name": name, "epochs": 2,
                                   "batch_size": 4, "max_steps_per_epoch": 3}, base)


@pytest.mark.parametrize("kind", ["flops_balanced", "size_biased"])
def test_training_with_a_sampler_kind_resumes_bitwise(tmp_path, kind):
    whole = train(_config(tmp_path, "whole", f"sampler.kind={kind}"), batches=SyntheticBatches(),
                  log=lambda s: None)
    cfg = _config(tmp_path, "split", f"sampler.kind={kind}")
    train(cfg, batches=SyntheticBatches(), log=lambda s: None, stop_after_steps=2)
    split = train(cfg, batches=SyntheticBatches(), log=lambda s: None)
    a, b = load_checkpoint(whole), load_checkpoint(split)
    assert a["step"] == b["step"] == 6
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    uniform = load_checkpoint(train(_config(tmp_path, "uniform"), batches=SyntheticBatches(),
                                    log=lambda s: None))
    assert any(not torch.equal(v, uniform["model"][k]) for k, v in a["model"].items())


def test_bad_sampler_settings_are_one_line(tmp_path, capsys):
    with pytest.raises(TrainConfigError, match="sampler.kind"):
        _config(tmp_path, "x", "sampler.kind=best")
    # NAS-Bench-201 has no official list to draw from
    assert main(["train", "--ckpt-dir", str(tmp_path), "--space", "nb201", "--set",
                 "model={num_classes: 10, C: 4, N: 1}", "--set", "sampler.kind=list",
                 "--max-steps-per-epoch", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no official list" in err[0]
    assert not (tmp_path / "demo").exists()

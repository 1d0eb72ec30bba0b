"""Channel re-ordering by importance (issue 14, item 1): the largest subnet's function is
unchanged, and a sliced subnet keeps the most important channels."""
from __future__ import annotations

import torch

from track1.resnet48.arch import decode
from track1.resnet48.supernet import ResNet48Supernet


def _net() -> ResNet48Supernet:
    torch.manual_seed(0)
    net = ResNet48Supernet(10).eval()
    for m in net.modules():  # distinctive BN state, so a forgotten BN permutation shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net


def test_largest_subnet_unchanged_and_order_is_by_importance():
    net = _net()
    x = torch.randn(2, 3, 64, 64)
    net.sample_largest()
    with torch.no_grad():
        before = net(x)
    mid_before = net.stages[2][3].conv2.weight.abs().sum((0, 2, 3)).clone()
    net.reorder_channels()
    with torch.no_grad():
        after = net(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    for stage in net.stages:
        for block in stage:
            imp = block.conv2.weight.abs().sum((0, 2, 3))
            # mid channels in importance order (a row permutation since changes the
            # summation order: ties within float rounding may swap)
            assert torch.all(imp[:-1] >= imp[1:] - 1e-5 * imp.max())
    # the stream of stage 3: every writer's rows, summed, in importance order
    stage = net.stages[2]
    imp = sum(b.conv2.weight.abs().flatten(1).sum(1) for b in stage) + \
        stage[0].shortcut[0].weight.abs().flatten(1).sum(1)
    assert torch.all(imp[:-1] >= imp[1:] - 1e-5 * imp.max())
    # a sliced block keeps exactly the most important mid channels of before
    k = 128
    kept = net.stages[2][3].conv2.weight[:, :k].abs().sum((0, 2, 3))
    torch.testing.assert_close(kept.sort().values, mid_before.sort().values[-k:])


def test_narrow_subnets_change_and_stay_valid():
    net = _net()
    arch = decode("1252233313000000223212122253130000000000006515000000")
    x = torch.randn(2, 3, 64, 64)
    net.set_arch(arch)
    with torch.no_grad():
        before = net(x)
    net.reorder_channels()
    net.set_arch(arch)
    with torch.no_grad():
        after = net(x)
        static = net.extract(arch).eval()(x)
    assert not torch.allclose(after, before)  # other channels now: the point of re-ordering
    torch.testing.assert_close(static, after, rtol=1e-5, atol=1e-5)


def test_init_reorder_at_init_from(tmp_path):
    """config init_reorder: the trainer re-orders right after --init-from."""
    from track1.infra.checkpoint import save_atomic
    from track1.train.config import resolve_config
    from track1.train.trainer import Trainer
    net = _net()
    save_atomic({"model": net.state_dict(), "config": {"space": "track1_resnet48",
                 "model": {"num_classes": 10, "activation": "relu"}}}, tmp_path / "init.pth")
    logs: list[str] = []
    cfg = resolve_config("demo", {"ckpt_dir": str(tmp_path), "name": "r", "init_reorder": True,
                                  "init_from": str(tmp_path / "init.pth")}, [])
    trainer = Trainer(cfg, log=logs.append)
    net.reorder_channels()
    got = trainer.supernet.state_dict()
    assert all(torch.equal(v, got[k]) for k, v in net.state_dict().items())
    assert any("re-ordered" in line for line in logs)

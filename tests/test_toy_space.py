"""A third search space registered from outside the package (tests/toy_space.py) goes
through train, evaluate, search and export like the two shipped ones: the pipelines know
a space only by what it registers (docs/ADDING_A_SPACE.md)."""
from __future__ import annotations

import json

import pytest
import torch

from track1.cli import main
from track1.nas.spaces import unregister_space


@pytest.fixture()
def toy():
    import tests.toy_space as toy_space  # registers "toy" on import
    from track1.nas.spaces import register_space
    register_space("toy", space=toy_space.ToySpace, static=toy_space.ToyNet)(
        toy_space.ToySupernet)
    yield toy_space
    unregister_space("toy")


def test_a_registered_space_is_listed(toy):
    from track1.registry import build_static, build_supernet, list_spaces, supernet_options
    assert {"toy", "nb201", "track1_resnet48"} <= set(list_spaces())
    assert supernet_options("toy") == {"num_classes"}
    net = build_supernet("toy", {"num_classes": 10})
    assert isinstance(build_static("toy", "101", {"num_classes": 10}), toy.ToyNet)
    net.set_arch("010")
    static = net.extract("010")
    x = torch.randn(2, 3, 8, 8)
    net.eval(), static.eval()
    torch.testing.assert_close(net(x), static(x))


def test_train_evaluate_search_export_on_a_toy_space(toy, tmp_path, capsys):
    common = ["--no-progress"]
    assert main(["train", "--ckpt-dir", str(tmp_path / "ckpt"), "--name", "toy", "--space", "toy",
                 "--set", "model={num_classes: 10}", "--set", "sampler.threshold=1",
                 "--set", "init.zero_residual=false", "--epochs", "1",
                 "--max-steps-per-epoch", "3", "--device", "cpu", *common]) == 0
    ckpt = tmp_path / "ckpt" / "toy" / "last.pth"
    assert ckpt.exists()
    codes = ["000", "011", "101", "111"]
    archs = tmp_path / "list.json"
    archs.write_text(json.dumps({f"arch{i + 1}": {"arch": c} for i, c in enumerate(codes)}))
    out = tmp_path / "toy_scores.json"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--archs", str(archs), "--limit", "0",
                 "--eval-images", "64", "--calib-images", "32", "--device", "cpu", "--out",
                 str(out), "--results-dir", str(tmp_path / "res"), *common]) == 0
    scores = json.loads(out.read_text())
    assert [e["arch"] for e in scores.values()] == codes
    assert all(0 <= e["acc"] <= 1 for e in scores.values())
    search = tmp_path / "search"
    assert main(["search", "--checkpoint", str(ckpt), "--out", str(search), "--population", "3",
                 "--generations", "1", "--eval-images", "64", "--calib-images", "32",
                 "--device", "cpu", "--no-plot", *common]) == 0
    best = json.loads((search / "top.json").read_text())
    winner = best["top"][0]["arch"] if isinstance(best, dict) else best[0]["arch"]
    exported = tmp_path / "best.pth"
    assert main(["export", winner, "--checkpoint", str(ckpt), "--out", str(exported)]) == 0
    from track1.export import load_subnet
    net = load_subnet(exported)
    assert isinstance(net, toy.ToyNet) and net(torch.randn(1, 3, 32, 32)).shape == (1, 10)

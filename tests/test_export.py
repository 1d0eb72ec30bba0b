"""`python -m track1 export ARCH`: a static subnet of a supernet checkpoint as a file that
loads with weights_only=True, whose logits are the supernet's on that arch (issue 12,
item 2)."""
from __future__ import annotations

import os

import pytest
import torch

import track1.infra.checkpoint
import track1.export
from track1.infra.checkpoint import save_atomic
from track1.cli import main
from track1.export import FORMAT, SubnetFileError, load_subnet, read_subnet
from track1.registry import build_static, build_supernet

RESNET_CODE = "1252233313000000223212122253130000000000006515000000"  # tied, far from the largest
NB201_CODE = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|"
              "+|skip_connect~0|nor_conv_3x3~1|none~2|")

#: (space, model options, arch code, image size); options the static class must inherit:
#: mish (no parameters: only the logits tell it from relu), bn_affine=False and dropout
#: (the BN parameter set changes), a small C/N
SPACES = {
    "track1_resnet48": ({"num_classes": 10, "activation": "mish"}, RESNET_CODE, 32),
    "nb201": ({"num_classes": 10, "C": 4, "N": 1, "bn_affine": False, "dropout": 0.1},
              NB201_CODE, 16),
}


def _perturb(net: torch.nn.Module, seed: int) -> None:
    """Deterministic non-trivial weights and BN statistics (the stored statistics are what
    the export carries, so they must not be the fresh 0/1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g)).add_(
                0.01 * torch.randn(p.shape, generator=g))
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.num_batches_tracked.fill_(123)


@pytest.fixture(scope="module", params=sorted(SPACES))
def trained(request, tmp_path_factory):
    """A checkpoint in the trainer's format (model, config with space/model/image_size,
    step, epoch) and the supernet it holds, in eval mode."""
    space = request.param
    options, code, image_size = SPACES[space]
    torch.manual_seed(0)
    net = build_supernet(space, options)
    _perturb(net, 1)
    path = tmp_path_factory.mktemp(space) / "last.pth"
    save_atomic({"model": net.state_dict(), "step": 17, "epoch": 2,
                 "config": {"space": space, "model": dict(options), "image_size": image_size}},
                path)
    return space, net.eval(), path, code, image_size


def _images(image_size: int, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, image_size, image_size, generator=torch.Generator().manual_seed(5))


def _supernet_logits(net, arch, x) -> torch.Tensor:
    net.eval()
    net.set_arch(arch)
    with torch.no_grad():
        return net(x)


def test_exported_subnet_computes_the_supernets_logits_on_that_arch(trained, tmp_path, capsys):
    space, net, ckpt, code, image_size = trained
    out = tmp_path / "sub.pth"
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and code in printed and "load_subnet" in printed

    arch = net.space.decode(code)
    x = _images(image_size)
    expected = _supernet_logits(net, arch, x)
    largest = _supernet_logits(net, net.space.largest(), x)
    assert not torch.allclose(expected, largest, atol=1e-3)  # the arch matters to the logits

    # the file is plain data: torch.load with weights_only=True, then the static class
    record = torch.load(out, weights_only=True)
    assert record["format"] == FORMAT and record["space"] == space and record["arch"] == code
    rebuilt = build_static(record["space"], record["arch"], record["model"])
    rebuilt.load_state_dict(record["state_dict"])
    assert type(rebuilt) is type(net.extract(arch))
    if space == "track1_resnet48":
        from track1.resnet48.static import StaticResNet
        direct = StaticResNet(record["arch"], **record["model"])
        direct.load_state_dict(record["state_dict"])
        with torch.no_grad():
            torch.testing.assert_close(direct.eval()(x), expected)

    loaded = load_subnet(out)
    assert not any(m.training for m in loaded.modules())  # eval mode, dropout and BN alike
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected)
        torch.testing.assert_close(rebuilt.eval()(x), expected)

    # the supernet's stored BN statistics travel unchanged
    bn = [m for m in loaded.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn and all(int(m.num_batches_tracked) == 123 for m in bn)
    assert not any(torch.equal(m.running_var, torch.ones_like(m.running_var)) for m in bn)

    # what is recorded beside the weights
    options, _, _ = SPACES[space]
    assert {k: record["model"][k] for k in options if k in record["model"]} == \
        {k: v for k, v in options.items() if k != "activation" or space == "track1_resnet48"}
    assert record["costs"] == net.space.cost(arch) and record["costs"]["params"] > 0
    assert record["costs"] != net.space.cost(net.space.largest())
    assert record["image_size"] == image_size and record["bn_statistics"] == "stored"
    stat = os.stat(ckpt)
    assert record["source"] == {"checkpoint": str(ckpt.resolve()), "size": stat.st_size,
                                "mtime": stat.st_mtime, "step": 17, "epoch": 2}
    assert record["check"]["max_abs_diff"] < 1e-4
    assert read_subnet(out)["arch"] == code


def test_default_checkpoint_and_default_out(trained, tmp_path, monkeypatch, capsys):
    space, _, ckpt, code, _ = trained
    monkeypatch.setattr(track1.infra.checkpoint, "find_latest", lambda *a, **k: ckpt)
    monkeypatch.setenv("TRACK1_HOME", str(tmp_path / "home"))     # defaults hang off the home
    assert main(["export", code]) == 0
    files = list((tmp_path / "home" / "runs" / "export").iterdir())
    assert len(files) == 1 and files[0].name.startswith(f"{space}-") and files[0].suffix == ".pth"
    if space == "track1_resnet48":
        assert files[0].name == f"{space}-{code}.pth"
    else:  # '|op~0|+...' is no file name: 12 hex digits of its SHA-256
        assert len(files[0].stem) == len(space) + 1 + 12
    assert str(files[0]) in capsys.readouterr().out
    assert read_subnet(files[0])["source"]["checkpoint"] == str(ckpt.resolve())


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_bad_arch_code_is_one_line_naming_position_and_rule(trained, tmp_path, capsys):
    space, _, ckpt, code, _ = trained
    out = tmp_path / "sub.pth"
    if space == "track1_resnet48":
        bad = code[:-1] + "1"  # a conv2 code past stage 4's depth
        assert main(["export", bad, "--checkpoint", str(ckpt), "--out", str(out)]) == 2
        assert "code[51]" in _one_line_error(capsys)
        # a code of the other space
        assert main(["export", NB201_CODE, "--checkpoint", str(ckpt), "--out", str(out)]) == 2
        assert "track1_resnet48" in _one_line_error(capsys)
    else:
        bad = code.replace("avg_pool_3x3~1", "max_pool~1")
        assert main(["export", bad, "--checkpoint", str(ckpt), "--out", str(out)]) == 2
        line = _one_line_error(capsys)
        assert "edge 1->2" in line and "max_pool" in line
        assert main(["export", RESNET_CODE, "--checkpoint", str(ckpt), "--out", str(out)]) == 2
        assert "'nb201'" in _one_line_error(capsys)
    assert not out.exists()


def test_bad_checkpoint_and_bad_output_are_refused(trained, tmp_path, capsys):
    space, _, ckpt, code, _ = trained
    out = tmp_path / "sub.pth"
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert main(["export", code, "--checkpoint", str(foreign), "--out", str(out)]) == 2
    assert "not a track1 checkpoint" in _one_line_error(capsys)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    assert main(["export", code, "--checkpoint", str(garbage), "--out", str(out)]) == 2
    assert str(garbage) in _one_line_error(capsys)
    assert main(["export", code, "--checkpoint", str(tmp_path / "none.pth"),
                 "--out", str(out)]) == 2
    assert "not found" in _one_line_error(capsys)
    assert not out.exists()

    folder = tmp_path / "folder.pth"
    folder.mkdir()
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(folder)]) == 2
    assert "is a folder" in _one_line_error(capsys)
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(tmp_path / "x.onnx")]) == 2
    assert ".onnx" in _one_line_error(capsys)
    assert main(["export", code, "--checkpoint", str(ckpt), "--out",
                 str(garbage / "sub.pth")]) == 2
    assert "is a file, not a folder" in _one_line_error(capsys)

    out.write_bytes(b"keep me")
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    assert "exists" in _one_line_error(capsys) and out.read_bytes() == b"keep me"
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(out), "--force"]) == 0
    assert read_subnet(out)["arch"] == code
    # an export is not a supernet checkpoint, and the other way round
    assert main(["export", code, "--checkpoint", str(out), "--out", str(tmp_path / "y.pth")]) == 2
    assert "not a track1 checkpoint" in _one_line_error(capsys)
    with pytest.raises(SubnetFileError, match="supernet checkpoint, not an exported subnet"):
        load_subnet(ckpt)
    with pytest.raises(SubnetFileError, match="not a track1 subnet export"):
        load_subnet(foreign)
    with pytest.raises(SubnetFileError, match="garbage.pth"):
        load_subnet(garbage)


@pytest.mark.parametrize("trained", ["track1_resnet48"], indirect=True)
def test_onnx_unavailable_is_one_clear_line_and_the_pth_is_written(trained, tmp_path, monkeypatch,
                                                                   capsys):
    _, _, ckpt, code, _ = trained
    monkeypatch.setattr(track1.export, "onnx_missing", lambda: "onnx")  # as on this machine
    out = tmp_path / "sub.pth"
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(out), "--onnx"]) == 3
    line = _one_line_error(capsys)
    assert "'onnx' package" in line and "pip install onnx" in line and f"{out} was written" in line
    assert read_subnet(out)["arch"] == code and not out.with_suffix(".onnx").exists()


def test_onnx_export_equals_the_static_network(trained, tmp_path, capsys):
    """Both spaces (issue 19, item 6): onnx and onnxruntime are development requirements,
    so this runs in CI; the batch axis is dynamic (exported at batch 1, run at 2)."""
    import onnxruntime as ort
    space, net, ckpt, code, image_size = trained
    out = tmp_path / "sub.pth"
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(out), "--onnx"]) == 0
    x = _images(image_size, n=2)  # the dummy input had batch 1: the batch axis is dynamic
    session = ort.InferenceSession(str(out.with_suffix(".onnx")))
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():   # the ONNX model computes the static network's logits
        static = load_subnet(out)(x)
    torch.testing.assert_close(got, static, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got, _supernet_logits(net, net.space.decode(code), x),
                               rtol=1e-4, atol=1e-4)
    assert got.shape[0] == 2


def test_export_refuses_to_write_a_network_that_disagrees_with_the_supernet(trained, tmp_path,
                                                                             monkeypatch):
    """The self-check: had the registry built another arch, nothing is written."""
    space, net, ckpt, code, _ = trained
    largest = net.space.encode(net.space.largest())
    wrong = track1.export.build_static

    def other_arch(space_name, _code, options):
        return wrong(space_name, largest, options)

    def same_shapes(space_name, _code, options):  # right widths, another op / activation
        return wrong(space_name, _code, {**options, "activation": "relu"}
                     if space_name == "track1_resnet48" else options)

    monkeypatch.setattr(track1.export, "build_static", other_arch)
    out = tmp_path / "sub.pth"
    with pytest.raises(RuntimeError):
        track1.export.export_subnet(code, ckpt, out)
    assert not out.exists()
    if space == "track1_resnet48":
        monkeypatch.setattr(track1.export, "build_static", same_shapes)
        with pytest.raises(RuntimeError, match="logits differ"):
            track1.export.export_subnet(code, ckpt, out)
        assert not out.exists()


@pytest.mark.parametrize("trained", ["nb201"], indirect=True)
def test_export_never_overwrites_its_own_supernet(trained, capsys):
    """Issue 19, L9: export --force --out onto its own --checkpoint replaced the supernet."""
    _, _, ckpt, code, _ = trained
    before = ckpt.read_bytes()
    assert main(["export", code, "--checkpoint", str(ckpt), "--out", str(ckpt), "--force"]) == 2
    assert "is the supernet checkpoint itself" in _one_line_error(capsys)
    assert ckpt.read_bytes() == before

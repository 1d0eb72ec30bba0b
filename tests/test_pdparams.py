"""The .pdparams importer: a Paddle-style pickle the test writes itself, and a
malicious pickle that must be refused without running anything."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from track1.infra.checkpoint import load_checkpoint
from track1.resnet48.supernet import ResNet48Supernet
from track1.resnet48.pdparams import (PdparamsError, init_from_pdparams, load_pdparams,
                                   paddle_to_track1_name)


def _paddle_name(key: str) -> str:
    """Our key -> a Paddle ResNet key (the inverse mapping, written out by hand)."""
    key = key.replace("running_mean", "_mean").replace("running_var", "_variance")
    key = key.replace("stem_conv.", "conv1.").replace("stem_bn.", "bn1.")
    if key.startswith("stages."):
        _, s, j, rest = key.split(".", 3)
        rest = rest.replace("shortcut.", "downsample.")
        key = f"layer{int(s) + 1}.{j}.{rest}"
    return key


def _write_pdparams(path, net: ResNet48Supernet, prefix: str = "") -> dict:
    arrays = OrderedDict()
    for k, v in net.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        a = v.numpy().copy()
        if k == "fc.weight":
            a = a.T.copy()                     # Paddle Linear weight is [in, out]
        arrays[prefix + _paddle_name(k)] = a
    arrays["StructuredToParameterName@@"] = {"conv1.weight": "conv2d_0.w_0"}
    with open(path, "wb") as f:
        pickle.dump(arrays, f, protocol=4)
    return arrays


def test_name_mapping_examples():
    assert paddle_to_track1_name("conv1.weight") == "stem_conv.weight"
    assert paddle_to_track1_name("model.bn1._variance") == "stem_bn.running_var"
    assert paddle_to_track1_name("layer3.7.conv2.fn.weight") == "stages.2.7.conv2.weight"
    assert paddle_to_track1_name("layer2.0.downsample.1._mean") == "stages.1.0.shortcut.1.running_mean"
    assert paddle_to_track1_name("fc.bias") == "fc.bias"


def test_load_pdparams_roundtrip(tmp_path):
    torch.manual_seed(1)
    src = ResNet48Supernet(num_classes=7)
    with torch.no_grad():
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
    path = tmp_path / "resnet48.pdparams"
    _write_pdparams(path, src, prefix="model.")
    assert all(isinstance(v, np.ndarray) for v in load_pdparams(path).values())
    torch.manual_seed(2)
    dst = ResNet48Supernet(num_classes=7)
    report = init_from_pdparams(dst, path)
    assert not report["unmatched"] and not report["missing"] and not report["shape_mismatch"]
    for k, v in src.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, dst.state_dict()[k]), k
    # a class-count mismatch is an error unless the head is left out
    other = ResNet48Supernet(num_classes=10)
    with pytest.raises(PdparamsError, match="class counts differ"):
        init_from_pdparams(other, path)
    report = init_from_pdparams(other, path, include_head=False)
    assert report["skipped_head"] == ["model.fc.weight", "model.fc.bias"]
    # the converter tool writes a weights_only checkpoint the trainer/evaluator can load
    out = tmp_path / "init.pth"
    r = subprocess.run([sys.executable, "-m", "track1", "convert-pdparams", str(path), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ckpt = load_checkpoint(out)
    assert ckpt["config"]["model"]["num_classes"] == 7
    assert torch.equal(ckpt["model"]["fc.weight"], src.state_dict()["fc.weight"])


def test_unmatched_keys_are_reported(tmp_path):
    path = tmp_path / "odd.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": np.zeros((64, 3, 7, 7), np.float32),
                     "head.proj.weight": np.zeros((3, 3), np.float32)}, f)
    report = init_from_pdparams(ResNet48Supernet(num_classes=10), path)
    assert report["matched"] == ["conv1.weight"] and report["unmatched"] == ["head.proj.weight"]
    with open(path, "wb") as f:
        pickle.dump({"foo": np.zeros(3)}, f)
    with pytest.raises(PdparamsError, match="none of its"):
        init_from_pdparams(ResNet48Supernet(num_classes=10), path)


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": np.zeros(3, np.float32), "x": _Evil(str(marker))}, f)
    with pytest.raises(PdparamsError, match="refusing to unpickle"):
        load_pdparams(path)
    assert not marker.exists()
    path.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(PdparamsError, match="cannot read"):
        load_pdparams(path)
    r = subprocess.run([sys.executable, "-m", "track1", "convert-pdparams", str(path),
                        str(tmp_path / "o.pth")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and not (tmp_path / "o.pth").exists()


def test_train_init_from_pdparams(tmp_path):
    """``train --init-from X.pdparams``: the trainer starts from the converted weights."""
    import sys as _sys
    _sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_train import SyntheticBatches
    from track1.train.config import resolve_config
    from track1.train.loop import train
    torch.manual_seed(3)
    src = ResNet48Supernet(num_classes=10)
    path = tmp_path / "resnet48.pdparams"
    _write_pdparams(path, src)
    logs = []
    cfg = resolve_config("demo", {"ckpt_dir": str(tmp_path), "name": "init", "epochs": 1,
                                  "max_steps_per_epoch": 1, "batch_size": 2,
                                  "init_from": str(path)},
                         ["loss.num_random=0", "loss.ranking=none", "loss.smallest=false",
                          "runtime.progress=false", "optim.lr=1e-9", "init.zero_residual=true"])
    last = train(cfg, batches=SyntheticBatches(batch=2), log=logs.append)
    assert any("init from" in s and "0 unmatched, 0 missing" in s for s in logs), logs
    trained = load_checkpoint(last)["model"]
    # lr ~ 0: weights are the pdparams' (zero-init residual is not applied over them)
    for k in ("stem_conv.weight", "stages.2.7.bn2.weight", "fc.weight"):
        assert torch.allclose(trained[k], src.state_dict()[k], atol=1e-6), k


def test_protocol_2_pdparams_of_plain_arrays_loads(tmp_path):
    """Issue 13, item 16: protocol 2 stores an array's bytes through _codecs.encode(...,
    'latin1'), which the restricted unpickler refused; that one use is allowed now."""
    arrays = {"conv1.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
              "fc.bias": np.ones(5, np.float64)}
    path = tmp_path / "p2.pdparams"
    with open(path, "wb") as f:
        pickle.dump(arrays, f, protocol=2)
    got = load_pdparams(path)
    assert set(got) == set(arrays) and all(np.array_equal(got[k], arrays[k]) for k in arrays)


class _OtherCodec:
    def __reduce__(self):
        import _codecs
        return (_codecs.encode, ("x", "rot13"))


def test_codecs_encode_beyond_latin1_and_object_arrays_are_refused(tmp_path):
    path = tmp_path / "codec.pdparams"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": np.zeros(3, np.float32), "x": _OtherCodec()}, f, protocol=2)
    with pytest.raises(PdparamsError, match="refusing _codecs.encode with encoding 'rot13'"):
        load_pdparams(path)
    obj = tmp_path / "object.pdparams"
    with open(obj, "wb") as f:
        pickle.dump({"conv1.weight": np.array([1, "a"], dtype=object)}, f)
    with pytest.raises(PdparamsError, match="dtype object"):
        load_pdparams(obj)

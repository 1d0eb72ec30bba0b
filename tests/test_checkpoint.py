"""Checkpoint loads: damage is detected, and a refused pickle says why without torch's
advice to retry unsafely (issue 13, item 15)."""
from __future__ import annotations

import pytest
import torch

from track1.infra.checkpoint import CheckpointError, load_checkpoint, save_atomic


def test_flipped_bytes_are_detected(tmp_path):
    path = tmp_path / "last.pth"
    save_atomic({"model": {"w": torch.randn(4096)}, "config": {"space": "nb201"}}, path)
    assert load_checkpoint(path)["config"]["space"] == "nb201"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF          # inside the tensor's bytes: torch.load accepts it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged: its member .* fails its CRC check"):
        load_checkpoint(path)


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_refused_pickle_gives_no_unsafe_advice(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "config": {}, "x": _Payload()}, path)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "could run code" in msg and "weights_only=False" not in msg
    assert "this must never run" not in capsys.readouterr().out


def test_an_exported_subnet_goes_through_the_same_safe_loader(tmp_path):
    """Export files are read by the one safe loader: flipped bytes are caught there too
    (read_subnet once skipped the CRC check), and a folder is not called missing."""
    from track1.export import FORMAT, SubnetFileError, read_subnet
    path = tmp_path / "sub.pth"
    save_atomic({"format": FORMAT, "state_dict": {"w": torch.randn(4096)}}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SubnetFileError, match="damaged: its member .* fails its CRC check"):
        read_subnet(path)
    with pytest.raises(SubnetFileError, match="is not a file"):
        read_subnet(tmp_path)

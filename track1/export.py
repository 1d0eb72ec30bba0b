"""Export one subnet of a trained supernet as a standalone file (``python -m track1 export``).

The file is a plain ``torch.save`` of a dict that loads with ``weights_only=True``::

    {"format": "track1-subnet/1",
     "space": "track1_resnet48",             # the registry's space name
     "arch": "1252233313...",                # the canonical arch code
     "model": {"num_classes": 10, ...},      # the static class's keyword arguments
     "state_dict": {...},                    # the static network's weights and BN buffers
     "costs": {"flops": ..., "params": ...}, # as the space counts them (``supernet.space.cost``)
     "image_size": 32,                       # the supernet's training resolution
     "bn_statistics": "stored",              # the supernet's running statistics, unchanged
     "source": {"checkpoint": "/abs/last.pth", "size": ..., "mtime": ...,
                "step": ..., "epoch": ...},
     "check": {"input": [2, 3, 32, 32], "max_abs_diff": 0.0}}

``load_subnet(path)`` rebuilds the static network (``StaticResNet``, ``NB201Network``:
the space's registered static network, ``track1.registry.build_static``) in eval mode. Before anything is written, the rebuilt
network's logits are compared with the supernet's on that arch, so a file that exists
holds the subnet the supernet computes.

This module is generic: it reaches a search space only through the supernet object
(``space.decode/encode/cost``, ``extract``) and the registry.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from track1.infra import paths
from track1.infra.checkpoint import load_checkpoint, safe_load, save_atomic
from track1.infra.errors import UserError
from track1.infra.messages import clip, first_lines
from track1.registry import build_static, load_supernet, saved_image_size, space_entry

FORMAT = "track1-subnet/1"
#: default output folder (git-ignored, beside the evaluator's runs/evaluate/)
#: the packages torch's TorchScript-based ONNX exporter needs (``dynamo=False``)
ONNX_PACKAGES = ("onnx",)


class ExportError(UserError, ValueError):
    """A bad arch code for the checkpoint's space, or an output path that cannot be used."""


class SubnetFileError(UserError, RuntimeError):
    """A file that is not a readable ``track1-subnet`` export."""


class OnnxUnavailable(UserError, RuntimeError):
    """ONNX was asked for and cannot be written here (a package is missing, or torch's
    exporter failed); the ``.pth`` is written before this is raised."""


def default_out(space: str, code: str) -> Path:
    """``runs/export/<space>-<code>.pth`` under the repository; a code that is not a short
    file-name-safe string (NAS-Bench-201's ``|op~0|+...``) is named by the first 12 hex
    digits of its SHA-256."""
    name = code if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", code) else \
        hashlib.sha256(code.encode()).hexdigest()[:12]
    return paths.runs_dir("export") / f"{space}-{name}.pth"


def onnx_path(out: str | os.PathLike) -> Path:
    """Where ``--onnx`` writes: beside the ``.pth``, with the suffix ``.onnx``."""
    return Path(out).with_suffix(".onnx")


def check_out(out: str | os.PathLike, force: bool = False, onnx: bool = False) -> Path:
    """Refuse an output path that is a folder, ends in ``.onnx``, or exists (unless
    ``force``); with ``onnx``, the same for the ``.onnx`` file beside it."""
    out = Path(out)
    if out.suffix == ".onnx":
        raise ExportError(f"--out {out} ends in .onnx: it names the .pth file, and --onnx "
                          "writes the .onnx beside it")
    for path in (out, onnx_path(out)) if onnx else (out,):
        if path.is_dir():
            raise ExportError(f"output {path} is a folder; pass a file name, e.g. "
                              f"--out {path / 'subnet.pth'}")
        if path.exists() and not force:
            raise ExportError(f"output {path} exists; pass --force to replace it, or another --out")
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise ExportError(f"cannot write {path}: {parent} is a file, not a folder")
                break
    return out


def _plain(value: Any) -> Any:
    """Python numbers for tensors and numpy scalars, so the record is plain data."""
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if type(value).__module__ == "numpy":
        return value.item() if hasattr(value, "item") else value
    return value


def static_options(supernet_cls: type, model_options: dict[str, Any],
                   static_cls: type) -> dict[str, Any]:
    """The static class's keyword arguments (all but the arch), read from the supernet
    class's constructor arguments (the config's ``model:`` section, its defaults filled
    in) by name: ``num_classes``/``activation`` for ResNet-48, ``num_classes``/``C``/``N``/
    ``bn_affine``/``dropout`` for NAS-Bench-201."""
    bound = inspect.signature(supernet_cls).bind_partial(**model_options)
    bound.apply_defaults()
    wanted = list(inspect.signature(static_cls).parameters)[1:]  # after the arch
    return {k: bound.arguments[k] for k in wanted if k in bound.arguments}


def _max_abs_diff(supernet: nn.Module, arch: Any, static: nn.Module,
                  image_size: int) -> tuple[list[int], float]:
    """Logits of the static network against the supernet's on ``arch``: two seeded random
    images at ``image_size``, eval mode."""
    shape = [2, 3, image_size, image_size]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    supernet.eval()
    supernet.set_arch(arch)
    with torch.no_grad():
        ref, out = supernet(x), static.eval()(x)
    if ref.shape != out.shape:
        raise RuntimeError(f"export: the static network's output {tuple(out.shape)} differs in "
                           f"shape from the supernet's {tuple(ref.shape)}")
    diff = float((ref - out).abs().max())
    scale = float(ref.abs().max())
    if not diff <= 1e-4 * (1.0 + scale):  # not a user error: the export itself is wrong
        raise RuntimeError(f"export: the static network's logits differ from the supernet's "
                           f"on this arch by up to {diff:.3g} (logits up to {scale:.3g})")
    return shape, diff


def export_subnet(code: str, checkpoint: str | os.PathLike, out: str | os.PathLike | None = None,
                  force: bool = False, onnx: bool = False) -> dict[str, Any]:
    """Write the subnet ``code`` of the supernet in ``checkpoint`` to ``out`` (default:
    ``default_out``); returns the record written, with ``"path"`` added and without the
    state dict. Refuses, before loading anything heavy, an output that ``check_out``
    refuses; then a checkpoint that is not a track1 checkpoint, and a code the
    checkpoint's space does not accept (its decode message: position and rule)."""
    if out is not None:
        check_out(out, force, onnx)
        if Path(checkpoint).exists() and Path(out).resolve() == Path(checkpoint).resolve():
            raise ExportError(f"--out {out} is the supernet checkpoint itself: --force would "
                              "replace the supernet with one subnet; name another file")
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    supernet, config = load_supernet(ckpt, "cpu")
    del ckpt["model"]  # the supernet holds the weights now
    space = config.get("space", "track1_resnet48")
    try:
        arch = supernet.space.decode(code.strip() if isinstance(code, str) else code)
    except ValueError as e:
        raise ExportError(f"{e} (the checkpoint's space is {space!r})") from None
    code = supernet.space.encode(arch)
    if out is None:
        out = check_out(default_out(space, code), force, onnx)
    out = Path(out)
    image_size = int(saved_image_size(config))

    static = supernet.extract(arch)
    # the space's own supernet class reads the model options (a merged few-shot checkpoint's
    # supernet is a FewShotSupernet of several of them)
    options = static_options(space_entry(space).supernet, config.get("model") or {},
                             type(static))
    rebuilt = build_static(space, code, options)  # exactly what load_subnet will build
    if type(rebuilt) is not type(static):
        raise RuntimeError(f"export: the registry builds {type(rebuilt).__name__} for space "
                           f"{space!r}, the supernet extracts {type(static).__name__}")
    state = {k: v.detach().cpu().clone() for k, v in static.state_dict().items()}
    rebuilt.load_state_dict(state)
    shape, diff = _max_abs_diff(supernet, arch, rebuilt, image_size)

    stat = checkpoint.stat()
    record = {
        "format": FORMAT, "space": space, "arch": code, "model": options, "state_dict": state,
        "costs": {k: _plain(v) for k, v in supernet.space.cost(arch).items()},
        "image_size": image_size, "bn_statistics": "stored",
        "source": {"checkpoint": str(checkpoint.resolve()), "size": stat.st_size,
                   "mtime": stat.st_mtime, "step": _plain(ckpt.get("step")),
                   "epoch": _plain(ckpt.get("epoch"))},
        "check": {"input": shape, "max_abs_diff": diff},
    }
    save_atomic(record, out, exclusive=not force)   # two exports to one new file: one wins
    info = {k: v for k, v in record.items() if k != "state_dict"}
    info["path"] = str(out)
    info["static_class"] = type(rebuilt).__name__
    return info


def onnx_missing() -> str | None:
    """The first package torch's ONNX exporter needs that is not installed, or None."""
    for package in ONNX_PACKAGES:
        if importlib.util.find_spec(package) is None:
            return package
    return None


def export_onnx(model: nn.Module, path: str | os.PathLike, image_size: int) -> Path:
    """``model`` as ONNX at ``path`` (TorchScript exporter, ``dynamo=False``; input
    ``images`` of shape (batch, 3, image_size, image_size), output ``logits``; the batch
    axis is dynamic). ``OnnxUnavailable`` when a package is missing or the exporter fails."""
    missing = onnx_missing()
    if missing:
        raise OnnxUnavailable(f"ONNX not written: torch's ONNX exporter needs the {missing!r} "
                              f"package (pip install {missing})")
    from track1.infra.atomic import atomic_write
    x = torch.zeros(1, 3, image_size, image_size)
    model = model.eval()

    def write(f) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), f, dynamo=False, input_names=["images"],
                              output_names=["logits"],
                              dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    try:
        return atomic_write(path, write)
    except ImportError as e:
        raise OnnxUnavailable(f"ONNX not written: torch's ONNX exporter needs the "
                              f"{e.name or 'onnx'!r} package ({e})") from None
    except Exception as e:  # torch raises many types for unsupported ops
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise OnnxUnavailable(f"ONNX not written: torch's exporter failed: "
                              f"{type(e).__name__}: {first}") from None


def read_subnet(path: str | os.PathLike) -> dict[str, Any]:
    """The record of an export file (``weights_only=True``), checked to be one."""
    path = Path(path)
    record = safe_load(path, "subnet file", SubnetFileError)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        if isinstance(record, dict) and "config" in record and "model" in record:
            raise SubnetFileError(f"{path} is a supernet checkpoint, not an exported subnet; "
                                  "export one with `python -m track1 export ARCH --checkpoint "
                                  f"{path}`")
        found = record.get("format") if isinstance(record, dict) else None
        raise SubnetFileError(f"{path} is not a track1 subnet export (format {clip(found)}, "
                              f"expected {FORMAT!r})")
    for key, kind in (("space", str), ("arch", str), ("model", dict), ("state_dict", dict)):
        if not isinstance(record.get(key), kind):
            raise SubnetFileError(f"{path}: its {key!r} is missing or not a {kind.__name__}")
    return record


def load_subnet(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The static network an export file holds, weights loaded, in eval mode on ``device``.
    ``SubnetFileError``, one line, for a file that is not an export or does not fit."""
    record = read_subnet(path)
    try:
        model = build_static(record["space"], record["arch"], record["model"])
    except (ValueError, TypeError) as e:
        raise SubnetFileError(f"{path}: cannot rebuild its network: {e}") from None
    try:
        model.load_state_dict(record["state_dict"])
    except RuntimeError as e:
        raise SubnetFileError(f"{path}: weights do not fit its network "
                              f"({first_lines(e)})") from None
    return model.to(device).eval()

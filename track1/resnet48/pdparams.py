"""Load the organisers' Paddle ResNet-48 checkpoint (``.pdparams``) without Paddle.

A ``.pdparams`` file is a pickle of ``{name: numpy array}``. Unpickling a file from the
internet can run arbitrary code, so ``load_pdparams`` uses a restricted unpickler that
resolves only the numpy array / dtype reconstructors and ``OrderedDict``; any other
global (``os.system``, ``builtins.eval``, a Paddle class, ...) is refused with
``PdparamsError``.

Name mapping onto ``ResNet48Supernet`` (tolerant; unmatched keys are reported):

=====================================  =============================================
Paddle key (after stripping prefixes)  track1 key
=====================================  =============================================
``conv1.weight``                       ``stem_conv.weight``
``bn1.{weight,bias,_mean,_variance}``  ``stem_bn.{weight,bias,running_mean,running_var}``
``layerN.M.conv1/bn1/conv2/bn2.*``     ``stages.{N-1}.M.conv1/bn1/conv2/bn2.*``
``layerN.M.downsample.0/1.*``          ``stages.{N-1}.M.shortcut.0/1.*``
``fc.weight`` [in, out]                ``fc.weight`` [out, in] (transposed)
``fc.bias``                            ``fc.bias``
=====================================  =============================================

Prefixes ``model.``, ``module.``, ``backbone.``, ``_model.`` and ``net.`` are stripped,
and PaddleSlim's ``.fn.`` wrapper segment is removed. Aliases ``stem.conv``/``stem.bn``,
``shortcut``/``short`` for ``downsample`` and ``_mean``/``_variance`` suffixes are
accepted.
"""
from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from track1.infra.errors import UserError

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
}
_PREFIXES = ("module.", "model.", "backbone.", "_model.", "net.")


class PdparamsError(UserError, ValueError):
    """A .pdparams file that is unreadable, unsafe, or does not fit the supernet."""


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """The one use of ``_codecs.encode`` a protocol-2 pickle of numpy arrays makes: an
    array's bytes stored as a latin-1 string. Any other encoding is refused."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise PdparamsError(f"refusing _codecs.encode with encoding {encoding!r}: a .pdparams "
                            "file may only hold numpy arrays and plain containers")
    return text.encode("latin-1")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise PdparamsError(f"refusing to unpickle {module}.{name}: a .pdparams file may only "
                            "hold numpy arrays and plain containers")


def load_pdparams(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{name: array}`` from a Paddle ``.pdparams`` pickle (non-array entries, such as
    Paddle's ``StructuredToParameterName@@`` table, are dropped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pdparams file not found: {path}")
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(io.BytesIO(f.read())).load()
    except PdparamsError:
        raise
    except Exception as e:
        raise PdparamsError(f"cannot read {path} as a .pdparams pickle: "
                            f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise PdparamsError(f"{path}: expected a dict of arrays, got {type(obj).__name__}")
    arrays = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf":
            raise PdparamsError(f"{path}: entry {k!r} has dtype {v.dtype}, not a numeric array "
                                "of weights")
    if not arrays:
        raise PdparamsError(f"{path}: no numpy arrays inside")
    return arrays


def paddle_to_track1_name(name: str) -> str:
    """Map one Paddle parameter name to the supernet's state-dict key (see module doc)."""
    n = name
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if n.startswith(p):
                n, changed = n[len(p):], True
    n = n.replace(".fn.", ".")
    n = re.sub(r"\._mean$", ".running_mean", n)
    n = re.sub(r"\._variance$", ".running_var", n)
    n = re.sub(r"^stem\.conv\.", "conv1.", n)
    n = re.sub(r"^stem\.bn\.", "bn1.", n)
    n = re.sub(r"^conv1\.", "stem_conv.", n)
    n = re.sub(r"^bn1\.", "stem_bn.", n)
    m = re.match(r"^layer(\d+)\.(\d+)\.(.*)$", n)
    if m:
        rest = re.sub(r"^(downsample|shortcut|short)\.", "shortcut.", m.group(3))
        n = f"stages.{int(m.group(1)) - 1}.{m.group(2)}.{rest}"
    return n


def map_pdparams(arrays: dict[str, np.ndarray], model: nn.Module,
                 include_head: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, list]]:
    """Tensors for ``model.load_state_dict(strict=False)`` and a report:
    ``matched``, ``unmatched`` (source keys with no target), ``shape_mismatch``,
    ``missing`` (target parameters/buffers not provided), ``skipped_head``."""
    target = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    report: dict[str, list] = {"matched": [], "unmatched": [], "shape_mismatch": [],
                               "missing": [], "skipped_head": []}
    for name, array in arrays.items():
        key = paddle_to_track1_name(name)
        if key not in target:
            report["unmatched"].append(name)
            continue
        if key.startswith("fc.") and not include_head:
            report["skipped_head"].append(name)
            continue
        t = torch.from_numpy(np.ascontiguousarray(array))
        if key == "fc.weight" and t.ndim == 2:
            t = t.t()  # Paddle Linear weight is [in, out]
        if tuple(t.shape) != tuple(target[key].shape):
            report["shape_mismatch"].append(f"{name}: {tuple(array.shape)} -> {key} "
                                            f"{tuple(target[key].shape)}")
            continue
        out[key] = t.to(target[key].dtype)
        report["matched"].append(name)
    report["missing"] = [k for k in target if k not in out and not k.endswith("num_batches_tracked")
                         and not (k.startswith("fc.") and not include_head)]
    return out, report


def init_from_pdparams(model: nn.Module, path: str | os.PathLike,
                       include_head: bool = True) -> dict[str, list]:
    """Copy a ``.pdparams`` checkpoint into ``model``; raise ``PdparamsError`` when
    nothing matches or the classifier's class count disagrees (pass
    ``include_head=False`` to keep a fresh head)."""
    arrays = load_pdparams(path)
    state, report = map_pdparams(arrays, model, include_head)
    if not report["matched"]:
        raise PdparamsError(f"{path}: none of its {len(arrays)} keys maps onto the supernet "
                            f"(first: {next(iter(arrays))!r})")
    head = [s for s in report["shape_mismatch"] if " -> fc." in s]
    if head:
        raise PdparamsError(f"{path}: classifier does not fit ({head[0]}); the class counts "
                            "differ: set init.head=false to keep a fresh classifier")
    model.load_state_dict(state, strict=False)
    return report

"""Make ``import torchvision`` (and so ``import timm``) work on a CPU-only torch.

Why this exists: the torchvision wheel that matches torch 2.13 on PyPI is compiled
against CUDA. On a machine with the CPU build of torch its C extension ``_C.so``
fails to load, torchvision then skips defining its custom operators, and its
``_meta_registrations`` module crashes at import with
``RuntimeError: operator torchvision::nms does not exist``.

The fix: when (and only when) the extension cannot be loaded, declare the schemas
of the two operators that ``_meta_registrations`` registers fake kernels for
(``nms`` and ``qnms``), so the import completes. The operators still have no real
kernel: calling ``torchvision.ops.nms`` raises, which is fine because this project
never calls detection ops. Everything else in torchvision (transforms, datasets,
models) is pure Python and works.

Where torchvision's extension loads normally (a matching CUDA torch on a GPU box,
or a CPU torchvision build), this function does nothing.

When: ``import track1`` does not import torch (it takes over a second, and the CLI's
``--help`` needs none of it). It only installs ``TorchvisionHook``, an import hook that
runs ``ensure_torchvision_importable()`` the first time anything imports torchvision
(directly, or through timm), and then removes itself.
"""
from __future__ import annotations

import glob
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import types

    import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
# Kept alive at module level: a torch.library.Library deregisters its definitions
# when it is garbage-collected.
_LIBRARY: torch.library.Library | None = None


def _torchvision_extension_loads() -> bool:
    import torch
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # torchvision not installed: nothing to patch
    for path in glob.glob(os.path.join(spec.submodule_search_locations[0], "_C*.so")):
        try:
            torch.ops.load_library(path)
            return True
        except OSError:
            return False
    return False


def ensure_torchvision_importable() -> bool:
    """Declare torchvision's operator schemas if its C extension cannot load.

    Imports torch. Returns True when the workaround was applied, False when it was not
    needed (or torchvision is already imported, when it is too late to matter).
    """
    global _LIBRARY
    if _LIBRARY is not None or "torchvision" in sys.modules:
        return False
    if _torchvision_extension_loads():
        return False
    import torch
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _LIBRARY.define(schema)
    return True


class TorchvisionHook(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` entry that finds nothing itself: when torchvision is about to
    be imported for the first time, it removes itself and runs
    ``ensure_torchvision_importable()``, then lets the regular finders load torchvision."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            uninstall_torchvision_hook()
            ensure_torchvision_importable()
        return None


def install_torchvision_hook() -> None:
    """Put one ``TorchvisionHook`` first in ``sys.meta_path`` (idempotent; nothing to do
    when torchvision is already imported)."""
    if "torchvision" in sys.modules or any(isinstance(f, TorchvisionHook) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, TorchvisionHook())


def uninstall_torchvision_hook() -> None:
    """Remove every ``TorchvisionHook`` from ``sys.meta_path``."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, TorchvisionHook)]

"""Shared fixtures. Importing track1 first makes torchvision/timm importable on CPU torch."""
from __future__ import annotations

import random
import sys
from pathlib import Path

# First, before torch: importing track1 sets OpenMP's wait policy to sleep rather than
# spin, so tests that start several processes (torchrun ranks, killed-and-resumed runs) do
# not starve each other on a small machine (subprocesses inherit it), and makes
# torchvision/timm importable on a CPU torch.
import track1  # noqa: F401,I001

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    random.seed(0)


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def official_codes() -> list[str]:
    from track1.resnet48.official import load_arch_list
    return list(load_arch_list(validate=False).values())

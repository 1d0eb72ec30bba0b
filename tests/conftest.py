"""Shared fixtures. Importing track1 first makes torchvision/timm importable on CPU torch."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

import track1  # noqa: F401  (applies the torchvision compatibility step)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    random.seed(0)


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def official_codes() -> list[str]:
    from track1.official import load_arch_list
    return list(load_arch_list(validate=False).values())

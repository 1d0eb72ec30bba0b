"""Each proxy's protocol on the fixed probe batch: how many of its images it sees, and its
options, in one table that the proxy report and the ranking teacher both read, so the
values a teacher distils are the values the report measured.

The probe batch is ``track1.data.probe_batch``'s: real training images chosen by a seed,
of which every proxy takes a prefix (the batch's images are drawn one after another, so
a prefix does not depend on how many were drawn). The counts are the authors' protocols
where they name one (NASWOT 64, ZiCo two batches of 64, SWAP 16); the discovered blend
sees 16 per probe (two probes: 32); the others see 16.
MeCo and MeCo_opt look at the first image only (their ``images=1``). AZ-NAS draws its own Gaussian
batch (``az_nas.components``), and Zen-score its own (``zen.zen_score``).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

#: images of the probe batch a proxy sees, where it is not ``DEFAULT_IMAGES``
IMAGES: dict[str, int] = {"naswot": 64, "zico": 128, "swap": 16,
                          "discovered_blend": 32}   # 16 per probe, two probes
DEFAULT_IMAGES = 16
#: options passed to a proxy's ``score`` besides its images (SWAP: 32 Gaussian re-inits)
OPTIONS: dict[str, dict[str, Any]] = {"swap": {"repeats": 32}}
#: proxies that take no labels
UNLABELLED = ("swap",)


def images_for(name: str, overrides: Mapping[str, int] | None = None) -> int:
    """How many probe images proxy ``name`` sees (``overrides`` first)."""
    return int((overrides or {}).get(name, IMAGES.get(name, DEFAULT_IMAGES)))


def probe_size(names: list[str] | tuple[str, ...],
               overrides: Mapping[str, int] | None = None) -> int:
    """The probe batch that serves every proxy of ``names``."""
    return max([images_for(n, overrides) for n in names] or [DEFAULT_IMAGES])


def run(name: str, net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, seed: int,
        overrides: Mapping[str, int] | None = None,
        options: Mapping[str, Any] | None = None) -> float:
    """Proxy ``name`` of ``net`` on its prefix of the probe batch ``x``, ``y``."""
    from track1.proxies import get_proxy
    n = images_for(name, overrides)
    if len(x) < n:
        raise ValueError(f"proxy {name!r} sees {n} probe images, the batch holds {len(x)}")
    kwargs = {**OPTIONS.get(name, {}), **(options or {})}
    if name in UNLABELLED:
        return float(get_proxy(name)(net, x[:n], seed=seed, **kwargs))
    return float(get_proxy(name)(net, x[:n], y[:n], seed=seed, **kwargs))

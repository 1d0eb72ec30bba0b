"""Zero-cost proxies: one module per proxy, one signature for all.

Each proxy module defines ``NAME: str`` and::

    def score(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
              *, seed: int | None = None, **options) -> float

``model`` is any network of either space (a static Track 1 subnet, a NAS-Bench-201
cell network, or a supernet with an active arch) that maps images to logits and has
``forward_features(x)`` (the pre-pooling feature map). Proxies that change weights
(Zen-score re-initialises them, SynFlow takes absolute values) work on a deep copy;
the forward-only ones (MeCo, MeCo_opt, NASWOT) borrow the model itself and put its modes
and buffers back (``borrow``); the caller's model is never modified (AZ-NAS's
``components(in_place=True)`` re-initialises a network built only to be scored). ``seed``
makes random draws reproducible.
Higher score = predicted better, for every proxy.

``get_proxy(name)`` returns the module's ``score`` function; ``PROXIES`` lists names.
``protocol`` says how many images of the fixed probe batch each proxy sees (its authors'
count) and with which options: the proxy report and the ranking teacher both run proxies
through it, so a teacher distils the values the report measured.
``SET_PROXIES`` lists the proxies that rank a set rather than score one network (AZ-NAS:
``components`` per network, ``aggregate`` over the set, ranks of its views).
"""
from __future__ import annotations

import importlib
from typing import Callable

PROXIES: tuple[str, ...] = ("flops", "params", "zen", "synflow", "snip", "grasp", "naswot",
                            "grad_norm", "meco", "meco_opt", "zico", "swap", "discovered",
                            "discovered_blend")
SET_PROXIES: tuple[str, ...] = ("az_nas",)


def cache_keys(name: str) -> tuple[str, ...]:
    """The per-arch fields a cache keeps for a proxy: its score, or for a set proxy the
    values it ranks by (AZ-NAS: its components ``az_*`` and ``flops``)."""
    if name in SET_PROXIES:
        from track1.proxies import az_nas
        return az_nas.CACHED
    return (name,)


def scored_how(key: str, row: dict) -> tuple | None:
    """How a ``track1 proxy-cache`` line says its value of ``key`` was scored, as a tuple
    (absent fields take proxy-cache's defaults: a field at its default is not written),
    or None where the line does not say (FLOPs and params are analytic; lines of the first
    Zen caches)."""
    if key in ("flops", "params"):
        return None
    if key == "zen":
        if "zen_resolution" not in row:
            return None
        return ("zen", row.get("zen_batch"), row["zen_resolution"], row.get("zen_repeats", 1),
                row.get("zen_residual", True), row.get("zen_classes", 10), int(row.get("seed", 0)),
                row.get("zen_device", "cpu"))
    name = "az_nas" if key.startswith("az_") else key
    if f"{name}_resolution" not in row:
        return None
    return ("proxy-cache", row.get(f"{name}_batch"), row[f"{name}_resolution"],
            int(row.get("seed", 0)))


def set_scores(name: str, rows: list[dict]) -> list[float]:
    """Per-arch scores of a proxy over a set of cache rows (``cache_keys``' fields): the
    cached value, or for a set proxy its ranking of this set (AZ-NAS aggregated)."""
    if name in SET_PROXIES:
        from track1.proxies import az_nas
        return az_nas.aggregate([az_nas.views(r) for r in rows])
    return [r[name] for r in rows]


def get_proxy(name: str) -> Callable[..., float]:
    if name not in PROXIES:
        raise ValueError(f"unknown proxy {name!r}; choose from {list(PROXIES)}")
    return importlib.import_module(f"track1.proxies.{name}").score

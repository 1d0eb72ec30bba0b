"""Scoring many subnets of a supernet: BN handling, the engine, crash-safe results,
rank metrics and the submission validator.

    from track1.evaluate import SubnetScorer
    with SubnetScorer(supernet, eval_u8, labels, calib_u8, bn_mode="recalibrate") as s:
        accs = s.score_many(entries)          # {key: top-1 fraction}

The names below are imported on first use (PEP 562), so that importing a light
submodule (``track1.evaluate.defaults``, which the CLI reads for its help text) does
not load torch and scipy.
"""
from __future__ import annotations

import importlib
from typing import Any

#: exported name -> the submodule that defines it
_EXPORTS = {
    "BN_MODES": "defaults", "DEFAULT_BN_MODE": "defaults",
    "PreserveBN": "bn", "recalibrate": "bn", "reset_bn_statistics": "bn", "set_bn_train": "bn",
    "ScoringError": "engine", "SubnetScorer": "engine", "score_subnets": "engine",
    "concordant_pair_ratio": "metrics", "kendall": "metrics", "pearson": "metrics",
    "rank_correlations": "metrics", "spearman": "metrics", "top_k_precision": "metrics",
    "ResultsLog": "results", "collect": "results", "read_jsonl": "results",
    "write_json_atomic": "results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

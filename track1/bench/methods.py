"""The NAS-Bench-201 bench's methods, in a module that imports no torch.

Why a module of its own: ``python -m track1 bench-nb201 --help`` lists the methods, and
the CLI must answer ``--help`` without loading torch. The bench (``track1.bench.run``)
runs them: a method is only a set of trainer config overrides on top of the protocol's
common config.
"""
from __future__ import annotations

from typing import Any

_SPOS_LOSS = {"largest": False, "smallest": False, "num_random": 2, "distill": False,
              "ranking": "none"}


def _rdnas(priors: str, ranking: str = "margin", threshold: float = 6.7,
           distance: str = "group", lam: str | None = None, tie_break: str | None = None,
           **loss: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"loss": {**_SPOS_LOSS, "ranking": ranking, "ranking_mode": "reuse",
                                    **loss},
                           "sampler": {"threshold": threshold, "distance": distance},
                           "teacher": {"priors": priors,
                                       **({"tie_break": tie_break} if tie_break else {})}}
    if lam:
        out["lambda_variant"] = lam
    return out


#: method name -> trainer config overrides (on top of the protocol's common config).
#: ``fewshot`` (genes, share) trains the method one-shot for ``share`` of the steps, then
#: each part of the split from those weights for an equal share of the rest.
#: ``lambda_variant`` rescales the protocol's lambda schedule: ``cap1`` caps it at 1 (a
#: larger lambda turns the pair term into gradient ascent on the teacher-worse subnet's
#: cross-entropy: its gradient there is 1 - lambda), ``ramp`` rises linearly from 0 to 1
#: over the whole run.
METHODS: dict[str, dict[str, Any]] = {
    "spos": {"loss": dict(_SPOS_LOSS), "sampler": {"threshold": 0.0, "distance": None}},
    # the authors' SPOS baseline: one uniform path per step (half the forwards of RD-NAS)
    "spos1": {"loss": {**_SPOS_LOSS, "num_random": 1},
              "sampler": {"threshold": 0.0, "distance": None}},
    # sampler kinds against uniform (issue 14): the same SPOS step, other random subnets
    "spos_flops_balanced": {"loss": dict(_SPOS_LOSS),
                            "sampler": {"threshold": 0.0, "distance": None,
                                        "kind": "flops_balanced"}},
    "spos_size_biased": {"loss": dict(_SPOS_LOSS),
                         "sampler": {"threshold": 0.0, "distance": None, "kind": "size_biased"}},
    # few-shot (Zhao et al., ICML 2021): one-shot for half the steps, then the 4 parts of a
    # split on edge 0's op (1->0), each from the one-shot weights, share the other half
    "spos_fewshot": {"loss": dict(_SPOS_LOSS), "sampler": {"threshold": 0.0, "distance": None},
                     "fewshot": {"genes": [0], "share": 0.5}},
    "rdnas_flops_fewshot": {**_rdnas("flops"), "fewshot": {"genes": [0], "share": 0.5}},
    "rdnas_flops": _rdnas("flops"),
    "rdnas_params": _rdnas("params"),
    "rdnas_zen": _rdnas("zen"),
    "rdnas_synflow": _rdnas("synflow"),
    "rdnas_naswot": _rdnas("naswot"),
    # the newer training-free teachers (issue 18): AZ-NAS ranks each compared group itself
    "rdnas_az_nas": _rdnas("az_nas"),
    "rdnas_meco": _rdnas("meco"),
    "rdnas_zico": _rdnas("zico"),
    # a mix (issue 18, item 3): NASWOT's weight chosen by tools/teacher_report.py on 1,000
    # archs of the 4-op space that are never among the bench's fixed evaluation archs
    "rdnas_meco_naswot": _rdnas("meco:0.7+naswot:0.3"),
    # the equal mix nothing was tuned for: Kendall 0.755 / 0.772 as a teacher on 5,819 archs
    "rdnas_meco_az_nas": _rdnas("meco+az_nas"),
    "rdnas_flops_nosampler": _rdnas("flops", threshold=0.0),
    # the authors resample below Hamming 4.5 (>= 5 of 6 edges differ); 3.0 accepted 98%
    "rdnas_flops_hamming": _rdnas("flops", threshold=4.5, distance="hamming"),
    "rdnas_flops_hamming3": _rdnas("flops", threshold=3.0, distance="hamming"),
    "rdnas_flops_hinge": _rdnas("flops", ranking="hinge"),
    "rdnas_flops_diffkendall": _rdnas("flops", ranking="diffkendall"),
    "rdnas_flops_cap1": _rdnas("flops", lam="cap1"),
    # FLOPs ties 5.7% of the margin pairs on the 4-op space (pool = skip = 0 FLOPs, a conv
    # costs alike on every edge): SynFlow, data-free, orders them (0 left tied)
    "rdnas_flops_tb": _rdnas("flops", tie_break="synflow"),
    "rdnas_flops_ramp": _rdnas("flops", lam="ramp"),
    # the distance-proportional margin this bench used before (not in the paper)
    "rdnas_flops_margin005": _rdnas("flops", margin_per_distance=0.005),
}

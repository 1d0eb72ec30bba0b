"""Benchmark: count FLOPs and params of every arch in the official 45k list.

Measures, in one run: loading + validating the list, the vectorised analytic count
(ours), the same count one arch at a time (the naive loop), and fvcore tracing of a few
static subnets (the module-level baseline), extrapolated to 45,000.

    .venv/bin/python tools/bench_costs.py [--fvcore-archs 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import torch

from track1.resnet48.costs import count_costs, count_costs_many
from track1.resnet48.static import StaticResNet
from track1.resnet48.official import load_arch_list


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fvcore-archs", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    archs, t_load = timed(lambda: load_arch_list(validate=True))
    codes = list(archs.values())
    costs, t_vec = timed(lambda: count_costs_many(codes))
    _, t_loop = timed(lambda: [count_costs(c) for c in codes])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis

    def fv():
        for code in codes[: args.fvcore_archs]:
            a = FlopCountAnalysis(StaticResNet(code).eval(), torch.zeros(1, 3, 224, 224))
            a.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            a.total()
    _, t_fv = timed(fv)
    t_fv_all = t_fv / args.fvcore_archs * len(codes)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}")
    print(f"archs: {len(codes)}  mean FLOPs {costs['flops'].mean() / 1e9:.3f} G  "
          f"mean params {costs['params'].mean() / 1e6:.3f} M")
    print(f"load + validate list      : {t_load:8.3f} s")
    print(f"vectorised count (ours)   : {t_vec:8.3f} s   ({len(codes) / t_vec:,.0f} archs/s)")
    print(f"load + validate + count   : {t_load + t_vec:8.3f} s")
    print(f"per-arch loop             : {t_loop:8.3f} s   (ours is {t_loop / t_vec:,.0f}x faster)")
    print(f"fvcore, {args.fvcore_archs} archs           : {t_fv:8.3f} s   -> {t_fv_all / 3600:.1f} h "
          f"for 45k (ours is {t_fv_all / t_vec:,.0f}x faster)")


if __name__ == "__main__":
    main()

"""Benchmark: the cost of each zero-cost proxy per arch, on both spaces, in one run.

Each proxy scores the same archs with the batch sizes the proxy report uses on
NAS-Bench-201 (full-size network, C=16, N=5, 32 px: gradient proxies 16 images, NASWOT 64,
ZiCo 2 x 64, MeCo 1, AZ-NAS 64 Gaussian images, the discovered program 16) and on Track 1
subnets (1,000 classes at ``--track1-res``, ``--track1-batch`` images). The ratio column
is each proxy's time over SynFlow's on the same archs (the cheapest data-dependent
baseline, measured in the same run). Network construction is not timed (AZ-NAS scores a
copy in place, as the pipelines score the network they build for it).

    .venv/bin/python tools/bench_proxies.py [--nb201-archs 6] [--track1-archs 2]
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
import time

import track1  # noqa: F401,E402 (first: it sets OpenMP's wait policy before torch loads)

import torch  # noqa: E402

from track1.proxies import az_nas, get_proxy  # noqa: E402
from track1.proxies.zen import arch_seed  # noqa: E402

NB201_BATCH = {"synflow": 16, "snip": 16, "grasp": 16, "grad_norm": 16, "naswot": 64,
               "zico": 128, "meco": 1, "az_nas": 64, "swap": 16, "discovered": 16}


def time_proxy(name: str, net, x, y, seed: int) -> float:
    if name == "az_nas":   # as the pipelines score it: on a network built for it, in place
        net = copy.deepcopy(net)
    t = time.perf_counter()
    if name == "az_nas":
        az_nas.components(net, x, seed=seed, batch=x.shape[0], in_place=True)
    else:
        get_proxy(name)(net, x, y, seed=seed)
    return time.perf_counter() - t


def bench(space, codes, names, batch_of, res: int, classes: int) -> dict[str, float]:
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for code in codes:
        s = arch_seed(code, 0)
        torch.manual_seed(s)
        net = space.build(space.decode(code), num_classes=classes)
        for name in names:
            g = torch.Generator().manual_seed(s)
            n = batch_of(name)
            x = torch.randn(n, 3, res, res, generator=g)
            y = torch.randint(0, classes, (n,), generator=g)
            seconds[name].append(time_proxy(name, net, x, y, s))
    return {n: statistics.median(v) for n, v in seconds.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxies", default="synflow,snip,naswot,meco,zico,az_nas,swap,discovered")
    ap.add_argument("--nb201-archs", type=int, default=6)
    ap.add_argument("--track1-archs", type=int, default=2)
    ap.add_argument("--track1-res", type=int, default=64)
    ap.add_argument("--track1-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.proxies.split(",") if n.strip()]
    if "synflow" not in names:
        names.insert(0, "synflow")
    from track1.nb201.ground_truth import fixed_subset
    from track1.nb201.space import NB201Space
    from track1.resnet48.official import load_arch_list
    from track1.resnet48.space import ResNet48Space
    out = {"machine": f"{platform.processor() or platform.machine()}, "
                      f"{torch.get_num_threads()} torch threads", "median_s_per_arch": {}}
    nb = bench(NB201Space(), fixed_subset(args.nb201_archs, seed=0), names,
               lambda n: NB201_BATCH.get(n, 16), 32, 10)
    official = list(load_arch_list(validate=False).values())
    t1 = bench(ResNet48Space(), random.Random(0).sample(official, args.track1_archs), names,
               lambda n: 1 if n == "meco" else args.track1_batch, args.track1_res, 1000)
    out["median_s_per_arch"] = {"nb201": nb, "track1": t1}
    print(f"{out['machine']}; median seconds per arch (ratio to SynFlow)")
    print(f"| proxy | NB201 C=16 N=5, 32 px | Track 1, {args.track1_res} px, batch "
          f"{args.track1_batch} |")
    print("|---|---|---|")
    for n in names:
        print(f"| {n} | {nb[n]:.3f} s ({nb[n] / nb['synflow']:.1f}x) | "
              f"{t1[n]:.3f} s ({t1[n] / t1['synflow']:.1f}x) |")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out | {"args": vars(args)}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

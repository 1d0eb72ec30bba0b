"""NAS-Bench-201 proof of ``track1 search``: evolution against random search at an equal
number of scored archs, on trained bench supernets, judged by ground truth.

For each supernet (a ``bench-nb201`` run folder holding ``ckpt/supernet/last.pth``) and
each search seed, regularised evolution and random search each score
``population x (generations + 1)`` archs with the supernet (the bench's held-out images
and BN re-calibration), under an optional FLOPs cap; the arch each ranks first is then
looked up in the NAS-Bench-201 table (``cifar10_test_acc``, and the valid accuracy the
bench ranks against). Ground truth is only read after the search, never by it. One score
cache per supernet (``<out>/<run>/scored.jsonl``) serves every seed and method, so a
rerun resumes and an arch is scored once per supernet; each search still counts every
arch it asks for, so the budgets are equal.

    python tools/search_nb201.py --bench runs/paper_reduced_cpu \\
        --runs rdnas_flops_s0,rdnas_flops_s1,spos_s0,spos_s1 --seeds 0,1,2 \\
        --data ../shared/data/cifar10/cifar10-jpeg.tar.gz --out runs/search-nb201
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from track1.infra.atomic import write_json_atomic
from track1.bench.data import load_eval_data
from track1.nb201.ground_truth import load_ground_truth
from track1.bench.protocols import get_protocol
from track1.registry import load_supernet
from track1.infra.resumable import AppendLog
from track1.search.evolution import Bounds, random_search, regularized_evolution
from track1.search.options import SearchOptions
from track1.data import probe_batch
from track1.nas.teacher import Teacher
from track1.scoring.fusion import parse_fuse
from track1.search.runner import FusedFitness, SupernetFitness, fusion_reference


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", required=True, help="bench-nb201 output folder")
    p.add_argument("--runs", required=True, help="comma-separated run folders in --bench")
    p.add_argument("--seeds", default="0,1,2", help="search seeds")
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--generations", type=int, default=9)
    p.add_argument("--fitness", choices=("acc", "neg_loss"), default="acc",
                   help="what search maximises: the supernet's accuracy or minus its loss")
    p.add_argument("--max-flops-quantile", type=float, default=0.5,
                   help="FLOPs cap: this quantile of the space's archs (1 = no cap)")
    p.add_argument("--protocol", default="paper", help="the bench protocol (held-out images)")
    p.add_argument("--data", default=None, help="CIFAR-10 (the bench's --data)")
    p.add_argument("--eval-images", type=int, default=500)
    p.add_argument("--calib-images", type=int, default=256)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--fuse", default=None, metavar="PROXY:W,...",
                   help="search by the supernet's fitness fused with proxies (track1 search "
                        "--fuse), each arch ranked among --fuse-reference seeded archs")
    p.add_argument("--fuse-reference", type=int, default=64)
    p.add_argument("--fuse-probe", type=int, default=64,
                   help="training images the --fuse proxies see (the proxy report's NASWOT "
                        "batch)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    protocol = get_protocol(args.protocol)
    fuse = parse_fuse(args.fuse) if args.fuse else {}
    images = load_eval_data(args.data, args.eval_images, args.calib_images, seed=0,
                            protocol=protocol)
    gt = load_ground_truth()
    seeds = [int(s) for s in args.seeds.split(",")]
    opts = SearchOptions(bn_mode="recalibrate", batch_size=256, calib_batch_size=None,
                         device="cpu", fitness=args.fitness)
    rows, oracle = [], None
    for run in args.runs.split(","):
        supernet, _ = load_supernet(Path(args.bench) / run / "ckpt" / "supernet" / "last.pth")
        space = supernet.space
        every = [a for a in (space.decode(c) for c in gt if "none~" not in c or
                             "none" in space.ops)]
        flops = sorted(space.cost(a)["flops"] for a in every)
        q = min(max(args.max_flops_quantile, 0.0), 1.0)
        bounds = Bounds(max_flops=flops[min(len(flops) - 1, int(q * (len(flops) - 1)))]) \
            if q < 1 else Bounds()
        within = [space.encode(a) for a in every if bounds.admits(space.cost(a))]
        oracle = {"archs": len(within), "best_test": max(gt[c].test for c in within),
                  "mean_test": statistics.mean(gt[c].test for c in within),
                  "max_flops": bounds.max_flops}
        with AppendLog(out / run / "scored.jsonl", "arch", ("acc", "loss")) as cache:
            own = SupernetFitness(supernet, images, opts, cache, torch.device("cpu"))
            fitness = own
            if fuse:  # one reference per supernet (search seed 0's), shared by every search
                # the proxies on real images, as the fusion report measured them: every
                # proxy sees the whole --fuse-probe batch (the Teacher's own default,
                # track1.proxies.protocol, gives each proxy its authors' count)
                probe = probe_batch(args.data, args.fuse_probe, 32, 0)[:2]
                teacher = Teacher(space, list(fuse), num_classes=10, probe=probe)
                fitness = FusedFitness(own, teacher, fuse, fusion_reference(
                    space, bounds, args.fuse_reference, 0))
            for seed in seeds:
                for method in ("evolution", "random"):
                    t0 = time.perf_counter()
                    if method == "evolution":
                        history = regularized_evolution(
                            space, fitness, population=args.population,
                            generations=args.generations, bounds=bounds, seed=seed)
                    else:
                        history = random_search(
                            space, fitness, samples=args.population * (args.generations + 1),
                            batch=args.population, bounds=bounds, seed=seed)
                    arch, pred = max(history, key=lambda t: t[1])
                    code = space.encode(arch)
                    rows.append({"run": run, "method": method, "seed": seed,
                                 "archs_scored": len({space.encode(a) for a, _ in history}),
                                 "arch": code, "pred": pred, "test": gt[code].test,
                                 "valid": gt[code].valid, "flops": space.cost(arch)["flops"],
                                 "seconds": round(time.perf_counter() - t0, 1)})
                    print(json.dumps(rows[-1]), flush=True)
            own.close()
    summary = {"protocol": args.protocol, "fitness": args.fitness, "population": args.population,
               "fuse": fuse or None, "fuse_reference": args.fuse_reference if fuse else None,
               "generations": args.generations, "eval_images": args.eval_images,
               "calib_images": args.calib_images, "max_flops_quantile": args.max_flops_quantile,
               "oracle_within_cap": oracle, "rows": rows, "mean": {}}
    for run in args.runs.split(","):
        for method in ("evolution", "random"):
            sel = [r for r in rows if r["run"] == run and r["method"] == method]
            summary["mean"][f"{run}/{method}"] = {
                "test": statistics.mean(r["test"] for r in sel),
                "test_sd": statistics.pstdev(r["test"] for r in sel),
                "valid": statistics.mean(r["valid"] for r in sel), "n": len(sel)}
    write_json_atomic(summary, out / "summary.json", indent=1)
    print(f"oracle within the cap: best test {oracle['best_test']:.2f}%, mean "
          f"{oracle['mean_test']:.2f}% over {oracle['archs']} archs")
    for key, m in summary["mean"].items():
        print(f"{key:32s} test {m['test']:.2f} +- {m['test_sd']:.2f}  valid {m['valid']:.2f}  "
              f"(n={m['n']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Pilot (issue 18, item 2): does averaging the discovery statistics over a second probe
(another init and batch) or a bigger batch raise the shipped blend's Kendall? On 600 archs
outside both the search and the held-out split (order[5000:5600] of split seed 0)."""
import random, sys, json
from pathlib import Path
import numpy as np
from scipy.stats import kendalltau
from track1.nb201.ground_truth import load_ground_truth
from track1.bench.discover import arch_stats
from track1.data import probe_batch
from track1.proxies.discover.program import from_dict, evaluate_any, pad
from track1.proxies.discovered_blend import PROGRAM
gt = load_ground_truth()
order = list(gt); random.Random(0).shuffle(order)
codes = order[5000:5600]
data = ".devdata/cifar10-jpeg.tar.gz"
root = Path("runs/pilot")
which = sys.argv[1]
if which == "s0b16":
    x, y, _ = probe_batch(data, 16, 32, 0); st = arch_stats(codes, root / which, x, y, 0)
elif which == "s1b16":
    x, y, _ = probe_batch(data, 16, 32, 1); st = arch_stats(codes, root / which, x, y, 1)
elif which == "s0b32":
    x, y, _ = probe_batch(data, 32, 32, 0); st = arch_stats(codes, root / which, x, y, 0)
elif which == "s0b16b":   # same init, the next 16 images of the seed-0 probe batch
    x, y, _ = probe_batch(data, 32, 32, 0); st = arch_stats(codes, root / which, x[16:], y[16:], 0)
elif which == "report":
    prog = from_dict(PROGRAM)
    truth = [gt[c].valid for c in codes]
    def load(w):
        f = root / w
        return [np.load(f / f"{gt[c].index:05d}.npy") for c in codes] if f.exists() and len(list(f.glob('*.npy'))) >= len(codes) else None
    sets = {w: load(w) for w in ("s0b16", "s1b16", "s0b32", "s0b16b")}
    out = {}
    def k(st):
        return float(kendalltau(evaluate_any(prog, *pad(st)), truth).statistic)
    for w, st in sets.items():
        if st is not None: out[w] = k(st)
    if sets["s0b16"] and sets["s1b16"]:
        out["mean_stats_s0s1"] = k([(a + b) / 2 for a, b in zip(sets["s0b16"], sets["s1b16"])])
        p0 = evaluate_any(prog, *pad(sets["s0b16"])); p1 = evaluate_any(prog, *pad(sets["s1b16"]))
        out["mean_scores_s0s1"] = float(kendalltau(p0 + p1, truth).statistic)
        out["s0_vs_s1_scores"] = float(kendalltau(p0, p1).statistic)
    if sets["s0b16"] and sets["s0b16b"]:
        out["mean_stats_s0_two_batches"] = k([(a + b) / 2 for a, b in zip(sets["s0b16"], sets["s0b16b"])])
        out["s0_vs_s0b_scores"] = float(kendalltau(evaluate_any(prog, *pad(sets["s0b16"])), evaluate_any(prog, *pad(sets["s0b16b"]))).statistic)
    print(json.dumps(out, indent=1))

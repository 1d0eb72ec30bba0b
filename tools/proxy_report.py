"""Zero-cost proxy report: Kendall / Spearman of every proxy against NAS-Bench-201
ground truth, and the proxies' mutual Kendall on a sample of the Track 1 list.

    .venv/bin/python tools/proxy_report.py                    # the fixed 1,000 archs
    .venv/bin/python tools/proxy_report.py --all --proxies flops,params
    .venv/bin/python tools/proxy_report.py --archs 0 --track1-archs 40   # Track 1 part only

Every arch is scored on a freshly built network whose weights are seeded from the arch
code, with one fixed batch of CIFAR-10 training images (labels real), so a score never
depends on the order of work. Scores are appended to a JSONL cache as produced
(``--out``/cache_*.jsonl, its name carries the settings): an interrupted run resumes
where it stopped. The summary JSON and per-arch CSV go to ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import math
import platform
import random
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from track1.commands.argtypes import shard_spec
from track1.infra.atomic import write_json_atomic
from track1.scoring.metrics import finite_below, rank_metrics
from track1.nb201.ground_truth import fixed_subset, load_ground_truth
from track1.nb201.space import NB201Space
from track1.proxies import PROXIES, SET_PROXIES, az_nas, cache_keys, protocol, set_scores
from track1.proxies.zen import arch_seed, zen_score
from track1.infra.resumable import AppendLog
from track1.data import probe_batch

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- correlations
def correlations(pred: list[float], gt: list[float]) -> dict[str, float]:
    """Kendall tau-b, Spearman rho and Pearson r (pred's -inf mapped below its minimum)."""
    m = rank_metrics(finite_below(pred), gt)
    return {k: m[k] for k in ("kendall", "spearman", "pearson")}


# ---------------------------------------------------------------- scoring
def open_cache(path: Path) -> AppendLog:
    """Per-arch proxy scores in a JSONL file (``track1.infra.resumable``): one line per
    finished arch, appended and flushed as produced, so a crash loses at most the arch in
    flight; ``merged`` joins the lines of one arch (a later run may add proxies)."""
    return AppendLog(path, "arch", fsync_every=1)


def missing(cache: AppendLog, code: str, names: list[str]) -> list[str]:
    """The fields still to compute for ``code`` (a set proxy's components, not its name)."""
    row = cache.merged.get(code, {})
    keys = dict.fromkeys(k for n in names for k in cache_keys(n))
    return [k for k in keys if k not in row]


def score_archs(space, codes: list[str], names: list[str], cache: AppendLog, *,
                x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int, zen_batch: int,
                desc: str, images: dict[str, int] | None = None,
                options: dict[str, dict] | None = None, device: str = "cpu") -> dict[str, float]:
    """Fill ``cache`` with every proxy of every arch, each on its prefix of the probe batch
    (``track1.proxies.protocol``; ``images`` overrides its counts, ``options`` its
    options); returns seconds spent per field."""
    seconds = {k: 0.0 for n in names for k in cache_keys(n)}
    todo = [c for c in codes if missing(cache, c, names)]
    for code in tqdm(todo, desc=desc, unit="arch", dynamic_ncols=True):
        arch = space.decode(code)
        s = arch_seed(code, seed)
        torch.manual_seed(s)
        net = space.build(arch, num_classes=num_classes).to(device)
        row = {"arch": code}
        # AZ-NAS re-initialises the built network itself (no copy), so it runs after the
        # proxies that read the weights the network was built with
        for name in sorted(missing(cache, code, names), key=lambda n: n.startswith("az_")):
            t = time.perf_counter()
            if name == "zen":
                try:
                    v = zen_score(space, arch, batch=zen_batch, resolution=x.shape[-1],
                                  seed=seed, num_classes=num_classes, device=device)
                except ValueError:  # log(0): a BN fed only zeros (a dead NB201 node)
                    v = float("-inf")
            elif name.startswith("az_"):
                if "az_expressivity" in row:
                    continue
                comps = az_nas.components(net, x, seed=s, in_place=True)
                seconds[name] += time.perf_counter() - t
                row.update({f"az_{k}": float(v) for k, v in comps.items()})
                continue
            else:
                v = protocol.run(name, net, x, y, seed=s, overrides=images,
                                 options=(options or {}).get(name))
            seconds[name] += time.perf_counter() - t
            row[name] = float(v)
        cache.append(row)
    return seconds


def images_of(args, names: list[str]) -> dict[str, int]:
    """The probe images each proxy sees: the protocol's, or the command line's."""
    given = {"naswot": args.naswot_batch, "zico": args.zico_batch, "swap": args.swap_batch}
    return {n: given.get(n, args.batch) for n in names}


def options_of(args) -> dict[str, dict]:
    return {"swap": {"repeats": args.swap_repeats}}


# ---------------------------------------------------------------- report parts
def nb201_part(args, names: list[str], x, y, out: Path) -> dict:
    space = NB201Space()
    gt = load_ground_truth()
    codes = fixed_subset(15625 if args.all else args.archs, seed=args.subset_seed)
    # ZiCo's two batches of 64 are the authors' protocol: the tag names another size only
    tag = (f"b{args.batch}-nw{args.naswot_batch}-z{args.zen_batch}-s{args.seed}"
           + (f"-zc{args.zico_batch}" if args.zico_batch != 128 else "")
           + (f"-sw{args.swap_batch}x{args.swap_repeats}"
              if (args.swap_batch, args.swap_repeats) != (16, 32) else ""))
    cache = open_cache(out / f"cache_nb201_{tag}.jsonl")
    t0 = time.perf_counter()
    k, n = args.shard
    if n > 1:  # one of n processes: score every n-th arch into this folder's cache, no table
        score_archs(space, codes[k::n], names, cache, x=x, y=y, num_classes=10,
                    seed=args.seed, zen_batch=args.zen_batch, desc=f"nb201 shard {k}/{n}",
                    images=images_of(args, names), options=options_of(args),
                    device=args.device)
        return {"archs": len(codes[k::n]), "shard": f"{k}/{n}", "label": f"shard{k}of{n}",
                "batch": args.batch, "naswot_batch": args.naswot_batch,
                "zen_batch": args.zen_batch, "zico_batch": args.zico_batch,
                "swap": [args.swap_batch, args.swap_repeats],
                "wall_s_this_run": round(time.perf_counter() - t0, 1), "proxies": {}}
    seconds = score_archs(space, codes, names, cache, x=x, y=y, num_classes=10,
                          seed=args.seed, zen_batch=args.zen_batch,
                          desc=f"nb201 x{len(codes)}", images=images_of(args, names),
                          options=options_of(args), device=args.device)
    wall = time.perf_counter() - t0
    table = {}
    rows = [cache.merged[c] for c in codes]
    for name in names:
        pred = set_scores(name, rows)
        table[name] = {target: correlations(pred, [getattr(gt[c], target) for c in codes])
                       for target in ("valid", "test")}
        table[name]["seconds_this_run"] = round(sum(seconds[k] for k in cache_keys(name)
                                                    if k != "flops" or name == "flops"), 2)
    label = "all" if len(codes) == 15625 else f"fixed{len(codes)}"
    with open(out / f"nb201_{label}_{tag}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "valid", "test", *names])
        columns = [set_scores(n, rows) for n in names]
        for i, c in enumerate(codes):
            w.writerow([c, gt[c].valid, gt[c].test, *[col[i] for col in columns]])
    return {"archs": len(codes), "subset_seed": args.subset_seed, "label": label,
            "batch": args.batch, "naswot_batch": args.naswot_batch, "zen_batch": args.zen_batch,
            "zico_batch": args.zico_batch, "swap": [args.swap_batch, args.swap_repeats],
            "wall_s_this_run": round(wall, 1), "proxies": table}


def track1_part(args, names: list[str], out: Path) -> dict:
    from track1.resnet48.official import load_arch_list
    from track1.resnet48.space import ResNet48Space
    space = ResNet48Space()
    official = list(load_arch_list(validate=False).values())
    codes = random.Random(args.subset_seed).sample(official, args.track1_archs)
    # every proxy sees the batch's first --track1-batch images, SWAP its own --swap-batch
    # (with 8 images every subnet reaches SWAP's ceiling of 2^8 patterns)
    images = {n: args.swap_batch if n == "swap" else args.track1_batch for n in names}
    x, y, _ = probe_batch(args.data, max(images.values()), args.track1_res, args.seed)
    y = y % 1000
    tag = f"r{args.track1_res}-b{args.track1_batch}-s{args.seed}"
    cache = open_cache(out / f"cache_track1_{tag}.jsonl")
    t0 = time.perf_counter()
    score_archs(space, codes, names, cache, x=x, y=y, num_classes=1000, seed=args.seed,
                zen_batch=min(args.zen_batch, 8), desc=f"track1 x{len(codes)}",
                images=images, options=options_of(args))
    return {"archs": len(codes), "resolution": args.track1_res, "batch": args.track1_batch,
            **({"swap": [args.swap_batch, args.swap_repeats]} if "swap" in names else {}),
            "wall_s_this_run": round(time.perf_counter() - t0, 1),
            "mutual_kendall": mutual_kendall(names, [cache.merged[c] for c in codes])}


def mutual_kendall(names: list[str], rows: list[dict]) -> dict[str, dict[str, float]]:
    """Kendall between every two proxies' scores over ``rows`` (one per arch)."""
    scores = {n: set_scores(n, rows) for n in names}
    return {a: {b: round(correlations(scores[a], finite_below(scores[b]))["kendall"], 4)
                for b in names} for a in names}


def track1_cache_part(args, names: list[str]) -> dict:
    """The proxies' mutual Kendall over the archs of a ``track1 proxy-cache`` file that
    hold every one of them (read only: a run may still be appending to it)."""
    from track1.infra.resumable import merge_by_key, read_records
    merged = merge_by_key(read_records(args.track1_cache, "key")[0], "key")
    rows = [r for r in merged.values() if all(k in r for n in names for k in cache_keys(n))]
    if len(rows) < 2:
        raise SystemExit(f"--track1-cache {args.track1_cache}: {len(rows)} archs hold every "
                         f"one of {names}; at least 2 needed")
    seen = [n for n in names if f"{n}_resolution" in rows[0]]
    from track1.resnet48.official import load_arch_list
    whole = {r["key"] for r in rows} >= load_arch_list(validate=False).keys()
    return {"archs": len(rows), "of": len(merged), "source": str(args.track1_cache),
            "resolution": rows[0][f"{seen[0]}_resolution"] if seen else None,
            "batch": rows[0][f"{seen[0]}_batch"] if seen else None,
            "selection": "(the whole official Track 1 list) from a proxy-cache file, Gaussian "
                         "probe images" if whole else
                         "of the official Track 1 list held by a proxy-cache file (a run "
                         "still going holds the list's first ones), Gaussian probe images",
            "mutual_kendall": mutual_kendall(names, rows)}


def markdown(summary: dict) -> str:
    lines = []
    nb = summary.get("nb201")
    if nb:
        lines += [f"NAS-Bench-201 CIFAR-10, {nb['archs']} archs ({nb['label']}); "
                  f"gradient batch {nb['batch']}, NASWOT batch {nb['naswot_batch']}",
                  "", "| proxy | Kendall (valid) | Spearman (valid) | Kendall (test) | "
                  "Spearman (test) |", "|---|---|---|---|---|"]
        for name, r in nb["proxies"].items():
            lines.append(f"| {name} | {r['valid']['kendall']:.3f} | {r['valid']['spearman']:.3f} "
                         f"| {r['test']['kendall']:.3f} | {r['test']['spearman']:.3f} |")
    t1 = summary.get("track1")
    if t1:
        names = list(t1["mutual_kendall"])
        lines += ["", f"Track 1 list, {t1['archs']} archs, mutual Kendall "
                  f"({t1['resolution']}px, batch {t1['batch']})", "",
                  "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for a in names:
            lines.append(f"| {a} | " + " | ".join(f"{t1['mutual_kendall'][a][b]:.2f}"
                                                 for b in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=1000, help="NB201 archs (fixed subset; 0 skips)")
    ap.add_argument("--all", action="store_true", help="all 15,625 NB201 archs")
    ap.add_argument("--subset-seed", type=int, default=0)
    ap.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated")
    ap.add_argument("--batch", type=int, default=protocol.DEFAULT_IMAGES,
                    help="images for the gradient proxies")
    ap.add_argument("--naswot-batch", type=int, default=protocol.IMAGES["naswot"])
    ap.add_argument("--zen-batch", type=int, default=16)
    ap.add_argument("--zico-batch", type=int, default=protocol.IMAGES["zico"],
                    help="images for ZiCo, in two equal batches (the authors: 2 x 64)")
    ap.add_argument("--swap-batch", type=int, default=protocol.IMAGES["swap"],
                    help="images for SWAP (the authors' correlation script: 16)")
    ap.add_argument("--swap-repeats", type=int, default=protocol.OPTIONS["swap"]["repeats"],
                    help="SWAP's Gaussian re-initialisations averaged (the authors: 32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None,
                    help="CIFAR-10 folder or tar (default: the shared tarball if present, "
                         "else the embedded demo set)")
    ap.add_argument("--track1-archs", type=int, default=0, help="Track 1 archs (0 skips)")
    ap.add_argument("--track1-res", type=int, default=64)
    ap.add_argument("--track1-batch", type=int, default=8)
    ap.add_argument("--track1-cache", default=None,
                    help="instead of --track1-archs: the mutual Kendall over the archs of this "
                         "track1 proxy-cache JSONL that hold every proxy of --proxies")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--shard", default="0/1", type=shard_spec,
                    help="K/N: score every N-th arch from the K-th into this --out's cache, "
                         "no table (N processes at once; cat their caches into one folder and "
                         "rerun without --shard for the table)")
    ap.add_argument("--out", default="runs/proxy_report")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.proxies.split(",") if n.strip()]
    for n in names:
        if n not in PROXIES + SET_PROXIES:
            ap.error(f"unknown proxy {n!r}; choose from {list(PROXIES + SET_PROXIES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"machine": f"{platform.processor() or platform.machine()}, "
                                f"{torch.get_num_threads()} torch threads, CPU"
                     if not torch.cuda.is_available() else torch.cuda.get_device_name(),
                     "seed": args.seed, "command": " ".join(sys.argv)}
    if args.all or args.archs > 0:
        n = max(args.batch, args.naswot_batch,
                protocol.probe_size(names, images_of(args, names)))
        x, y, data_name = probe_batch(args.data, n, 32, args.seed)
        x, y = x.to(args.device), y.to(args.device)
        summary["data"] = data_name
        summary["nb201"] = nb201_part(args, names, x, y, out)
    if args.track1_cache:
        summary["track1"] = track1_cache_part(args, names)
    elif args.track1_archs > 0:
        summary["track1"] = track1_part(args, names, out)
    parts = [p for p in ("nb201", "track1") if p in summary]
    label = "_".join(parts + ([summary["nb201"]["label"]] if "nb201" in summary else []))
    path = out / f"summary_{label}.json"
    write_json_atomic(summary, path, indent=1)
    print(markdown(summary))
    print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

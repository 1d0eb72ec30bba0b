"""A proxy's own noise on NAS-Bench-201: the same archs scored under several seeds.

A zero-cost proxy draws something at random per arch: its weights (seeded by the arch code
and the report's ``--seed``), its probe images, its Gaussian inputs. Its Kendall tau with
the ground truth is therefore one draw of a distribution, and a gap between two proxies
(or a teacher and a supernet) means something only beside that spread. This reads the
proxy report's per-arch table of the same archs under each seed
(``tools/proxy_report.py --seed K`` writes ``nb201_<set>_<tag>-s<K>.csv``) and gives, per
proxy and per equal-weight mix of proxies (mean of ranks over the set, as the trainer's
teacher mixes them):

- Kendall with the valid and the test accuracy under each seed, their mean and standard
  deviation over seeds;
- the proxy's agreement with itself: Kendall between its scores under two seeds, the mean
  and the minimum over every pair of seeds (1 for a deterministic proxy such as FLOPs);
- the spread that comes from the sample of archs instead: the standard deviation of the
  first seed's Kendall with the valid accuracy over ``--bootstrap`` resamples of the archs
  (with replacement, seeded), i.e. how far another draw of as many archs could move it.

    D=runs/proxies-seeds; T=b16-nw64-z16
    .venv/bin/python tools/proxy_noise.py --csv $D/nb201_fixed200_$T-s0.csv \\
        $D/nb201_fixed200_$T-s1.csv $D/nb201_fixed200_$T-s2.csv --mix meco+az_nas --out $D/noise.json

On Track 1 subnets there is no ground truth: ``--track1-cache`` reads ``track1
proxy-cache`` files of the same subnets under several ``--seed``s and gives each proxy's
Kendall with itself across seeds, and with FLOPs, params and Zen-score under each seed.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import math
import random
import statistics
import sys
from pathlib import Path

from track1.infra.atomic import write_json_atomic
from track1.infra.ranks import mean_ranks
from track1.scoring.metrics import finite_below, kendall

#: columns of the report's table that are not a proxy
NOT_PROXIES = ("arch", "valid", "test")


def read_table(path: Path) -> dict[str, dict[str, float]]:
    """``{arch: {column: value}}`` of one proxy report table."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"--csv {path}: no rows")
    return {r["arch"]: {k: float(v) for k, v in r.items() if k != "arch"} for r in rows}


def mixed(columns: dict[str, list[float]], mix: str) -> list[float]:
    """The equal-weight mean of ranks of the proxies joined by ``+`` in ``mix``."""
    parts = mix.split("+")
    unknown = [p for p in parts if p not in columns]
    if unknown:
        raise SystemExit(f"--mix {mix}: {unknown} not in the tables' proxies {sorted(columns)}")
    return mean_ranks([finite_below(columns[p]) for p in parts])


def spread(values: list[float]) -> dict[str, float]:
    """Mean and standard deviation (over seeds; 0 for one seed)."""
    return {"mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def bootstrap_sd(scores: list[float], truth: list[float], resamples: int, seed: int = 0) -> float:
    """Standard deviation of Kendall(scores, truth) over ``resamples`` resamples of the
    archs with replacement (NaN without resamples)."""
    if resamples < 2:
        return math.nan
    rng = random.Random(seed)
    n = len(scores)
    taus = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        taus.append(kendall([scores[i] for i in pick], [truth[i] for i in pick]))
    return statistics.stdev(taus)


def noise(tables: list[dict[str, dict[str, float]]], mixes: list[str],
          bootstrap: int = 0) -> dict:
    """Per proxy and mix: Kendall with the ground truth per seed (and its spread), the
    Kendall between its scores under every two seeds, and (``bootstrap`` resamples) the
    spread of the first seed's Kendall over resamples of the archs."""
    archs = sorted(tables[0])
    for i, t in enumerate(tables[1:], 1):
        if sorted(t) != archs:
            raise SystemExit(f"table {i} scores other archs than table 0: every seed must "
                             f"score the same set")
    names = [c for c in next(iter(tables[0].values())) if c not in NOT_PROXIES
             and all(c in next(iter(t.values())) for t in tables)]
    truth = {g: [tables[0][a][g] for a in archs] for g in ("valid", "test")}
    per_seed: list[dict[str, list[float]]] = []
    for t in tables:
        columns = {n: [t[a][n] for a in archs] for n in names}
        columns |= {m: mixed(columns, m) for m in mixes}
        per_seed.append(columns)
    out: dict[str, dict] = {}
    for name in [*names, *mixes]:
        scores = [finite_below(c[name]) for c in per_seed]
        row: dict[str, object] = {}
        for g, gt in truth.items():
            taus = [kendall(s, gt) for s in scores]
            row[g] = {"per_seed": taus} | spread(taus)
        pairs = [kendall(a, b) for a, b in itertools.combinations(scores, 2)]
        row["self"] = ({"mean": statistics.fmean(pairs), "min": min(pairs)} if pairs
                       else {"mean": math.nan, "min": math.nan})
        row["archs_sd"] = bootstrap_sd(scores[0], truth["valid"], bootstrap)
        out[name] = row
    return {"archs": len(archs), "seeds": len(tables), "bootstrap": bootstrap, "proxies": out}


def read_track1_caches(paths: list[Path], names: list[str],
                       given: list[str] | None = None) -> list[list[dict]]:
    """Per ``track1 proxy-cache`` file (one per seed, plain or gzipped), the rows of the
    archs that every file holds with every proxy of ``names``, in one order (the list's
    keys, sorted); AZ-NAS counts as held when its components are. Each file holds one
    seed and no two files the same: a line's ``seed``, else the file's entry of ``given``
    (files of a proxy-cache that did not write it), else 0."""
    from track1.infra.resumable import merge_by_key, read_records
    from track1.proxies import cache_keys
    merged = [merge_by_key(read_records(p, "key")[0], "key") for p in paths]
    fallback = [int(g) for g in given] if given else [0] * len(paths)
    seeds = [sorted({int(r.get("seed", f)) for r in m.values()}) for m, f in zip(merged, fallback)]
    for p, s in zip(paths, seeds):
        if len(s) != 1:
            raise SystemExit(f"--track1-cache {p}: holds lines of seeds {s}; one seed per file")
    if len({s[0] for s in seeds}) != len(seeds):
        raise SystemExit(f"--track1-cache: two files hold the same seed ({[s[0] for s in seeds]}); "
                         f"the noise compares different seeds")
    fields = [k for n in names for k in cache_keys(n)]
    keys = sorted(set.intersection(*[{k for k, r in m.items() if all(f in r for f in fields)}
                                     for m in merged]))
    if len(keys) < 3:
        raise SystemExit(f"--track1-cache: {len(keys)} archs are held with every one of "
                         f"{names} by all {len(paths)} files; at least 3 needed")
    return [[m[k] for k in keys] for m in merged]


def track1_noise(seeded: list[list[dict]], names: list[str], mixes: list[str],
                 against: list[str]) -> dict:
    """Per proxy and mix on Track 1 subnets (no ground truth there): its Kendall with
    itself under every two seeds (mean, min), and its Kendall with each proxy of
    ``against`` under each seed (mean and sd over seeds). AZ-NAS is aggregated over the
    set, as its paper ranks one."""
    from track1.proxies import set_scores
    per_seed = []
    for rows in seeded:
        columns = {n: finite_below(set_scores(n, rows)) for n in names}
        per_seed.append(columns | {m: mixed(columns, m) for m in mixes})
    out: dict[str, dict] = {}
    for name in [*names, *mixes]:
        scores = [c[name] for c in per_seed]
        pairs = [kendall(a, b) for a, b in itertools.combinations(scores, 2)]
        row: dict[str, object] = {"self": {"mean": statistics.fmean(pairs), "min": min(pairs)}}
        for other in against:
            taus = [kendall(c[name], c[other]) for c in per_seed]
            row[other] = {"per_seed": taus} | spread(taus)
        out[name] = row
    return {"archs": len(seeded[0]), "seeds": len(seeded), "against": against, "proxies": out}


def track1_markdown(result: dict) -> str:
    against = result["against"]
    lines = ["| proxy | seed-to-seed Kendall (mean, min) | "
             + " | ".join(f"with {a}: mean +- sd over seeds" for a in against) + " |",
             "|" + "---|" * (2 + len(against))]
    for name, row in result["proxies"].items():
        lines.append(f"| {name} | {row['self']['mean']:.3f}, {row['self']['min']:.3f} | "
                     + " | ".join(f"{row[a]['mean']:.3f} +- {row[a]['sd']:.3f}" for a in against)
                     + " |")
    return "\n".join(lines)


def markdown(result: dict, seeds: list[str]) -> str:
    head = "| proxy | " + " | ".join(f"valid s{s}" for s in seeds) + \
        " | valid mean +- sd | test mean +- sd | seed-to-seed Kendall (mean, min) |" \
        " arch-sample sd (bootstrap) |"
    lines = [head, "|" + "---|" * (len(seeds) + 5)]
    for name, row in result["proxies"].items():
        v, t, s = row["valid"], row["test"], row["self"]
        lines.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v["per_seed"])
                     + f" | {v['mean']:.3f} +- {v['sd']:.3f} | {t['mean']:.3f} +- {t['sd']:.3f}"
                     f" | {s['mean']:.3f}, {s['min']:.3f} | {row['archs_sd']:.3f} |")
    return "\n".join(lines)


def plot(result: dict, out_png: Path) -> None:
    """One row per proxy and mix: each seed's Kendall (valid) as a point, the mean as a bar
    end, and the arch-sample spread (+- one bootstrap sd) around the mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(result["proxies"])
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    for i, name in enumerate(names):
        row = result["proxies"][name]
        v, sd = row["valid"], row["archs_sd"]
        y = len(names) - 1 - i
        if math.isfinite(sd):
            ax.errorbar(v["mean"], y, xerr=sd, fmt="none", ecolor="0.6", capsize=4,
                        label="arch-sample sd (bootstrap)" if i == 0 else None)
        ax.plot(v["per_seed"], [y] * len(v["per_seed"]), "o", color="C0", alpha=0.6,
                label="one seed" if i == 0 else None)
        ax.plot([v["mean"]], [y], "|", color="C3", markersize=16, mew=2,
                label="mean over seeds" if i == 0 else None)
    ax.set_yticks(range(len(names)), list(reversed(names)))
    ax.set_xlabel(f"Kendall tau with the valid accuracy ({result['archs']} NB201 archs)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", nargs="+", type=Path,
                    help="the proxy report's nb201_*.csv of the same archs, one per seed")
    ap.add_argument("--track1-cache", nargs="+", type=Path,
                    help="instead: `track1 proxy-cache` files of Track 1 subnets, one per seed "
                         "(--seed K), read over the archs all of them hold")
    ap.add_argument("--proxies", default="flops,params,zen,meco,meco_opt,az_nas",
                    help="with --track1-cache: the proxies to read")
    ap.add_argument("--against", default="flops,params,zen",
                    help="with --track1-cache: the proxies each one is compared with")
    ap.add_argument("--seeds", default=None,
                    help="their seeds, comma-separated, for the table's head (default 0, 1, ...); "
                         "with --track1-cache each file's seed where its lines do not say")
    ap.add_argument("--mix", action="append", default=[],
                    help="an equal-weight mix of proxies, e.g. meco+az_nas (repeatable)")
    ap.add_argument("--bootstrap", type=int, default=1000,
                    help="resamples of the archs for the arch-sample spread (0: none)")
    ap.add_argument("--out", type=Path, default=None, help="the JSON summary")
    ap.add_argument("--plot", type=Path, default=None, help="a PNG of the table's spreads")
    args = ap.parse_args(argv)
    if (args.csv is None) == (args.track1_cache is None):
        ap.error("give either --csv (NAS-Bench-201 tables) or --track1-cache (proxy caches)")
    if args.track1_cache is not None:
        return track1_main(args)
    seeds = args.seeds.split(",") if args.seeds else [str(i) for i in range(len(args.csv))]
    if len(seeds) != len(args.csv):
        raise SystemExit(f"--seeds names {len(seeds)} seeds for {len(args.csv)} tables")
    result = noise([read_table(p) for p in args.csv], args.mix, args.bootstrap)
    result |= {"tables": [str(p) for p in args.csv], "seed_labels": seeds}
    print(f"NAS-Bench-201, {result['archs']} archs under {result['seeds']} seeds "
          f"({args.bootstrap} resamples of the archs)")
    print(markdown(result, seeds))
    if args.out:
        write_json_atomic(result, args.out, indent=1)
        print(f"summary: {args.out}")
    if args.plot:
        plot(result, args.plot)
        print(f"plot: {args.plot}")
    return 0


def track1_main(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.proxies.split(",") if n.strip()]
    against = [n.strip() for n in args.against.split(",") if n.strip()]
    if len(args.track1_cache) < 2:
        raise SystemExit("--track1-cache: give at least two files (seeds) to compare")
    unknown = [a for a in against if a not in names]
    if unknown:
        raise SystemExit(f"--against {unknown}: not among --proxies {names}")
    if args.seeds and len(args.seeds.split(",")) != len(args.track1_cache):
        raise SystemExit(f"--seeds names {len(args.seeds.split(','))} seeds for "
                         f"{len(args.track1_cache)} files")
    seeded = read_track1_caches(args.track1_cache, names,
                                args.seeds.split(",") if args.seeds else None)
    result = track1_noise(seeded, names, args.mix, against)
    result |= {"caches": [str(p) for p in args.track1_cache]}
    print(f"Track 1 subnets, {result['archs']} archs under {result['seeds']} seeds")
    print(track1_markdown(result))
    if args.out:
        write_json_atomic(result, args.out, indent=1)
        print(f"summary: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

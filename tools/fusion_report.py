"""Rank fusion of every committed NAS-Bench-201 bench with the zero-cost proxies: does a
weighted mean of ranks of the supernet's score and a proxy beat both?

    .venv/bin/python tools/fusion_report.py --out docs/results/fusion-nb201-committed-2core-cpu

For each bench folder listed in docs/results/ORDER and each of its runs, from the
committed ``predictions.csv`` (no training, no scoring: seconds on a CPU): the supernet's
Kendall alone (by accuracy and by -loss), each proxy's alone (the committed per-arch
scores over all 15,625 archs), and the fusion at the proxy weight that ranks best on a
seeded half of the run's archs, reported on the OTHER half (the weight is tuned on ground
truth, so never reported where it was tuned). Beside them, with no ground truth, each
run's agreement (Kendall) of the supernet's score with every proxy over all its archs, and
the teacher its ranking loss distilled (from its ``summary.json``): does a supernet hold
its teacher's order better than SPOS does? Writes ``summary.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from track1.infra.atomic import write_json_atomic
from track1.infra.ranks import mean_ranks
from track1.scoring.fusion import tune_weight
from track1.scoring.metrics import finite_below, kendall

ROOT = Path(__file__).resolve().parent.parent
#: each proxy's committed per-arch scores over all 15,625 archs
PROXY_CSV = {name: ROOT / "docs/results" / folder / "nb201_all_b16-nw64-z16-s0.csv"
             for names, folder in ((("flops", "params", "synflow", "naswot"),
                                    "proxies-nb201-15625archs-2core-cpu"),
                                   (("meco",), "proxies-meco-nb201-15625archs-2core-cpu"),
                                   (("az_nas",), "proxies-aznas-nb201-15625archs-2core-cpu"))
             for name in names}
#: equal-weight mixes (the mean of each part's average rank over all 15,625 archs): the
#: training-free teacher meco+az_nas, Kendall 0.756 / 0.772 over the space
MIXES = {"meco+az_nas": ("meco", "az_nas")}
PROXIES = (*PROXY_CSV, *MIXES)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def add_mixes(proxy: dict[str, dict[str, float]]) -> None:
    """Each of ``MIXES`` as a column: the mean of its parts' average ranks over the archs."""
    archs = sorted(proxy)
    for mix, parts in MIXES.items():
        mixed = mean_ranks([finite_below([proxy[a][p] for a in archs]) for p in parts])
        for a, value in zip(archs, mixed):
            proxy[a][mix] = value


def teacher_of(summary: dict) -> str | None:
    """The prior a run's ranking loss distilled (``teacher.priors``), None for a run with
    no ranking loss (SPOS)."""
    config = summary.get("config", {})
    if config.get("loss", {}).get("ranking", "none") == "none":
        return None
    priors = config.get("teacher", {}).get("priors")
    return "+".join(map(str, priors)) if isinstance(priors, list) else priors


def run_report(rows: list[dict[str, str]], proxy: dict[str, dict[str, float]],
               seed: int, teacher: str | None = None) -> dict:
    """Per key: each proxy alone, the supernet alone and fused (the weight tuned on one
    half, reported on the other); and ``agreement``, the supernet's Kendall with each proxy
    over all the run's archs (no ground truth: how much of a proxy's order the supernet
    holds, its teacher's above all)."""
    gt = [float(r["gt"]) for r in rows]
    keys = {"accuracy": [float(r["pred"]) for r in rows],
            "neg_loss": [-float(r["loss"]) for r in rows]}
    out: dict = {"archs": len(rows), "teacher": teacher, "agreement": {}}
    for key, sup in keys.items():
        scores = {name: [proxy[r["arch"]][name] for r in rows] for name in PROXIES}
        out[key] = {name: tune_weight(sup, scores[name], gt, kendall, seed=seed)
                    for name in PROXIES}
        out["agreement"][key] = {name: kendall(sup, finite_below(scores[name]))
                                 for name in PROXIES}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0, help="seed of the tune / report split")
    args = ap.parse_args(argv)
    proxy: dict[str, dict[str, float]] = {}
    for name, path in PROXY_CSV.items():
        for r in read_csv(path):
            proxy.setdefault(r["arch"], {})[name] = float(r[name])
    add_mixes(proxy)
    benches = [line.split()[1] for line in (ROOT / "docs/results/ORDER").read_text().splitlines()
               if line.startswith("bench ")]
    report: dict = {"proxies": list(PROXIES), "split_seed": args.seed, "benches": {}}
    for bench in benches:
        folder = ROOT / "docs/results" / bench
        runs = sorted(p for p in folder.iterdir() if (p / "predictions.csv").exists())
        report["benches"][bench] = {
            p.name: run_report(read_csv(p / "predictions.csv"), proxy, args.seed,
                               teacher_of(json.loads((p / "summary.json").read_text())))
            for p in runs}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(report, args.out / "summary.json", indent=1)
    for bench, runs in report["benches"].items():
        print(f"{bench}:")
        for run, r in runs.items():
            best = {k: max(r[k].items(), key=lambda kv: kv[1]["fused"]) for k in ("accuracy",
                                                                                 "neg_loss")}
            print(f"  {run:28s} " + "; ".join(
                f"{k}: supernet {r[k][n]['supernet']:.3f}, {n} {r[k][n]['proxy']:.3f}, fused "
                f"{r[k][n]['fused']:.3f} (w {r[k][n]['weight']:.2f})" for k, (n, _) in best.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

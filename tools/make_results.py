"""Generate docs/RESULTS.md from bench run directories and proxy-report summaries.

    .venv/bin/python tools/make_results.py --bench runs/nb201-quick-700steps-b64-2core-cpu \
        --proxies runs/proxies-nb201-1000archs-2core-cpu/summary_nb201_track1_fixed1000.json

Every bench run in the tables has its ``predictions.csv`` (and summary) copied under
``docs/results/<bench folder>/<run>/`` and every proxy report under
``docs/results/<report folder>/`` (the folder names as given, so name ``--out`` by the
scheme of docs/results/README.md), and the bench figures are recomputed from those very
files, so anyone can check them. ``bash tools/rebuild_results.sh`` regenerates
docs/RESULTS.md from the committed folders alone.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
from pathlib import Path

from track1.infra.atomic import atomic_write
from track1.bench.predictions import metrics_of

ROOT = Path(__file__).resolve().parent.parent
#: docs/REFERENCE.md §4 (RD-NAS paper, NB201 CIFAR-10, 200 random subnets, 250-epoch GPU budget)
PAPER = {"spos": (0.7743, 0.9273, 0.8955), "fairnas": (0.7062, 0.8874, 0.8281),
         "rdnas": (0.8708, 0.9734, 0.9500)}
PAPER_PROXIES = {"flops": 0.5292, "params": 0.5664, "snip": 0.5116, "synflow": 0.5883,
                 "zen": 0.4880, "naswot": 0.5513}
#: docs/REFERENCE.md §6: the anchors over all 15,625 archs vs cifar10_valid_acc
ANCHOR_ALL = {"params": 0.533, "naswot": 0.569}
#: the AZ-NAS paper's table (Lee & Ham, CVPR 2024) as issue 18 quotes it: Kendall over all
#: 15,625 archs, each proxy with its official code (not re-checked against the paper here)
ANCHOR_AZ = {"flops": 0.578, "params": 0.578, "synflow": 0.571, "naswot": 0.557,
             "zico": 0.589, "zen": 0.296, "az_nas": 0.741}


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _copy(src: Path, dst: Path) -> None:
    """Copy into docs/results (a no-op when regenerating from the committed copy itself)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and src.resolve() == dst.resolve():
        return
    shutil.copyfile(src, dst)


def _score_s(summary: dict) -> float:
    wall = summary["wall_s"]
    return float(wall.get("score", wall.get("score_this_session", 0.0)))


def describe_protocol(summary: dict) -> str:
    """One paragraph on what a run trained and scored (from its summary's protocol)."""
    p = summary.get("protocol") or {}
    if p.get("name") in (None, "quick"):
        return ""
    ops = p["ops"] if isinstance(p["ops"], list) else ["all 5 ops"]
    model = summary["config"].get("model", {})
    return (f"Protocol `{p['name']}`: candidate ops {', '.join(ops)} "
            f"(C={model.get('C', 16)}, N={model.get('N', 5)}, cell BN affine "
            f"{model.get('bn_affine', True)}, head dropout {model.get('dropout', 0.0)}); trained "
            f"on a seeded {p['train_fraction']:.0%} of the CIFAR-10 training set, each arch scored "
            f"on {p['eval_images']} fixed images of the other part after BN re-calibration on "
            f"{p['calib_images']} fixed images of the training part; the scored set is "
            f"{summary['archs']} fixed {'none-free ' if p.get('none_free') else ''}archs "
            f"(seed 0). Lambda of `{summary['method']}` (a method's `lambda_variant` rescales "
            f"it): {summary['config']['lambda']}.")


def curve_plot(by_method: dict, out_png: Path) -> bool:
    """Kendall against training steps, by accuracy (left) and by -loss (right): one line
    per method (mean over seeds), each seed as a faint point; False when no run was
    scored at more than one budget point."""
    runs = [s for ss in by_method.values() for s in ss if len(s.get("curve", [])) > 1]
    if not runs:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, title in ((axes[0], "kendall", "by accuracy"),
                           (axes[1], "kendall_neg_loss", "by -loss")):
        for i, (method, ss) in enumerate(by_method.items()):
            curves = [s["curve"] for s in ss if len(s.get("curve", [])) > 1]
            if not curves:
                continue
            color = colors[i % len(colors)]
            steps = [p["steps"] for p in curves[0]]
            for c in curves:
                ax.plot([p["steps"] for p in c], [p[key] for p in c], "o", color=color,
                        alpha=0.35, markersize=4)
            mean = [statistics.mean(c[j][key] for c in curves) for j in range(len(steps))]
            ax.plot(steps, mean, "-", color=color, label=f"{method} ({len(curves)} seeds)")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xlabel("training steps")
        ax.set_title(f"Kendall {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Kendall tau vs ground truth")
    axes[1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return True


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _fmt_none_free(ss: list[dict]) -> str:
    """The none-free part's Kendall where a set mixes archs with and without ``none``
    (a none-free set: the Kendall column already is that quantity)."""
    values = [s["none_free"]["accuracy"]["kendall"] for s in ss if s.get("none_free")]
    if not values:
        return "= Kendall" if (ss[0].get("protocol") or {}).get("none_free") else ""
    n = ss[0]["none_free"]["accuracy"]["n"]
    return f"{_fmt(values)} ({n} archs)"


def _fmt_noise(ss: list[dict]) -> str:
    """The scorer's split-half Kendall by accuracy / by -loss (mean over seeds), or why
    there is none: predictions scored before the scorer kept each half's scores."""
    halves = [s["split_half"] for s in ss if s.get("split_half")]
    if not halves:
        return "not measured (scorer 1)"
    return (f"{statistics.mean(h['accuracy'] for h in halves):.3f} / "
            f"{statistics.mean(h['neg_loss'] for h in halves):.3f}")


def _loss_vs_flops(rows: list[dict[str, str]]) -> float:
    """Kendall between a run's -loss order and the archs' FLOPs: how far the supernet's
    order follows model size (the FLOPs teacher pulls RD-NAS towards it)."""
    from track1.scoring.metrics import kendall
    from track1.nb201.space import NB201Space
    space = NB201Space()
    flops = [space.cost(space.decode(r["arch"]))["flops"] for r in rows]
    return kendall([-float(r["loss"]) for r in rows], flops)


def bench_section(bench: Path, docs_results: Path) -> tuple[list[str], dict]:
    runs = sorted(p for p in bench.iterdir() if (p / "summary.json").exists())
    by_method: dict[str, list[dict]] = {}
    for run in runs:
        s = json.loads((run / "summary.json").read_text())
        # recompute from the predictions that get committed, so the table is what they say
        rows = _read_rows(run / "predictions.csv")
        metrics = metrics_of(rows)
        s["accuracy"], s["neg_loss"] = metrics["accuracy"], metrics["neg_loss"]
        s["acc_tiebreak"] = metrics["acc_tiebreak"]
        s["split_half"] = metrics.get("split_half")       # None: scored before scorer 2
        s["none_free"] = metrics.get("none_free")
        s["loss_vs_flops"] = _loss_vs_flops(rows)
        preds = [float(r["pred"]) for r in rows]
        s["pred_range"] = (min(preds), max(preds))
        by_method.setdefault(s["method"], []).append(s)
        for pred in sorted(run.glob("predictions*.csv")):
            _copy(pred, docs_results / run.name / pred.name)
        _copy(run / "summary.json", docs_results / run.name / "summary.json")
    lines = ["| method | Kendall | Spearman | Pearson | top-10% precision | Kendall (-loss) | "
             "Kendall (accuracy, ties by -loss) | noise floor: split-half Kendall "
             "(accuracy / -loss) | Kendall (none-free part) | Kendall (-loss vs FLOPs) | "
             "subnet acc % (min-max) | seeds | archs | budget | train wall | score wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    best: dict[str, float] = {}
    for method, ss in by_method.items():
        acc = {k: [s["accuracy"][k] for s in ss] for k in ("kendall", "spearman", "pearson",
                                                          "top10_precision")}
        b = ss[0]["budget"]
        budget = (f"{b['epochs']} ep x {b['steps'] // max(b['epochs'], 1)} steps x batch "
                  f"{b['batch_size']} x {b['paths_per_step']} paths ({b['images_seen']:,} images), "
                  f"{b.get('device_name', b['device'])}")
        train_min = statistics.mean(s["wall_s"]["train"] for s in ss) / 60
        score_min = statistics.mean(_score_s(s) for s in ss) / 60
        lines.append(f"| {method} | {_fmt(acc['kendall'])} | {_fmt(acc['spearman'])} | "
                     f"{_fmt(acc['pearson'])} | {_fmt(acc['top10_precision'])} | "
                     f"{_fmt([s['neg_loss']['kendall'] for s in ss])} | "
                     f"{_fmt([s['acc_tiebreak']['kendall'] for s in ss])} | "
                     f"{_fmt_noise(ss)} | "
                     f"{_fmt_none_free(ss)} | "
                     f"{_fmt([s['loss_vs_flops'] for s in ss])} | "
                     f"{min(s['pred_range'][0] for s in ss):.1f}-"
                     f"{max(s['pred_range'][1] for s in ss):.1f} | "
                     f"{','.join(str(s['seed']) for s in ss)} | {ss[0]['archs']} | {budget} | "
                     f"{train_min:.1f} min | {score_min:.1f} min |")
        best[method] = statistics.mean(acc["kendall"])
    for name, (k, sp, p) in PAPER.items():
        lines.append(f"| paper: {name} | {k:.3f} | {sp:.3f} | {p:.3f} | | | | | {k:.3f} | | | | "
                     "200 | 250 epochs, batch 512, 4-op space, GPU (RD-NAS paper, Table 2) | | |")
    info = {"by_method": by_method, "kendall": best,
            "eval": by_method[next(iter(by_method))][0]["eval"] if by_method else {},
            "target": by_method[next(iter(by_method))][0]["target"] if by_method else ""}
    return lines, info


def bn_section(bench: Path, docs_results: Path) -> list[str]:
    root = bench / "bn_compare"
    if not root.exists():
        return []
    lines = []
    for run in sorted(p for p in root.iterdir() if (p / "summary.json").exists()):
        s = json.loads((run / "summary.json").read_text())
        lines += [f"Supernet `{s['run']}`, {s['archs']} archs, {s['eval']['images']} evaluation "
                  f"images, {s['eval']['calib_images']} calibration images:", "",
                  "| BN mode | Kendall | Spearman | Pearson | top-10% precision | score wall |",
                  "|---|---|---|---|---|---|"]
        usable = {}
        for mode, m in s["modes"].items():
            rows = _read_rows(run / f"predictions_{mode}.csv")
            a = metrics_of(rows)["accuracy"]
            constant = len({r["pred"] for r in rows}) < 2
            if not constant:
                usable[mode] = a["kendall"]
            note = " (every arch scored the same: no ranking)" if constant else ""
            lines.append(f"| {mode}{note} | {a['kendall']:.3f} | {a['spearman']:.3f} | "
                         f"{a['pearson']:.3f} | {a['top10_precision']:.2f} | "
                         f"{m['score_s_this_session'] / 60:.1f} min |")
            _copy(run / f"predictions_{mode}.csv",
                  docs_results / "bn_compare" / run.name / f"predictions_{mode}.csv")
        _copy(run / "summary.json", docs_results / "bn_compare" / run.name / "summary.json")
        if usable:
            best = max(usable, key=usable.get)
            lines += ["", f"Highest Kendall among modes that rank at all: **{best}**."]
    return lines


def _same_figures(a: dict, b: dict) -> bool:
    """Two reports of one proxy give the same correlations (its timing and the last
    float bits of a sum aside)."""
    return all(abs(a[t][m] - b[t][m]) < 1e-9 for t in ("valid", "test")
               for m in ("kendall", "spearman", "pearson") if m in a.get(t, {}))


def _merge_nb201(paths: list[Path], docs_results: Path) -> tuple[dict, list[dict]]:
    """NB201 proxy results by subset label, in order: a later summary of the same subset
    replaces the proxies it names (a proxy re-run after a fix), keeping the others.
    Each file and its per-arch CSVs are copied into ``docs/results/<its folder's name>/``."""
    merged: dict[str, dict] = {}
    summaries = []
    for path in paths:
        s = json.loads(path.read_text())
        summaries.append(s)
        dest = docs_results / path.parent.resolve().name
        _copy(path, dest / path.name)
        nb = s.get("nb201")
        if not nb:
            continue
        for csv_path in path.parent.glob(f"nb201_{nb['label']}_*.csv"):
            _copy(csv_path, dest / csv_path.name)
        rel = f"docs/results/{dest.name}/{path.name}"
        entry = merged.setdefault(nb["label"], {**nb, "proxies": {}, "source": {},
                                                "replaced": set(), "first": str(rel),
                                                "machine": s["machine"]})
        for name, r in nb["proxies"].items():
            if name in entry["proxies"]:
                if _same_figures(entry["proxies"][name], r):
                    continue      # the same figures again (a cache re-read): the first stays
                entry["replaced"].add(name)
            entry["proxies"][name] = r
            entry["source"][name] = (str(rel), s["machine"], nb["wall_s_this_run"])
    return merged, summaries


def proxy_section(paths: list[Path], docs_results: Path) -> tuple[list[str], dict]:
    lines: list[str] = []
    merged, summaries = _merge_nb201(paths, docs_results)
    for label, nb in merged.items():
        which = (f"all {nb['archs']:,} archs" if label == "all" else
                 f"{nb['archs']} archs ({label}, drawn with seed {nb['subset_seed']})")
        lines += [f"NAS-Bench-201 CIFAR-10, {which}; a freshly initialised network per arch "
                  f"(weights seeded by the arch code); gradient proxies on {nb['batch']} "
                  f"CIFAR-10 training images, NASWOT on {nb['naswot_batch']}, Zen on "
                  f"{nb['zen_batch']} Gaussian images; {nb['machine']}, "
                  f"{nb['wall_s_this_run'] / 60:.0f} min:", "",
                  "| proxy | Kendall (valid) | Spearman (valid) | Kendall (test) | "
                  "Spearman (test) | paper Kendall (200 archs) | anchor, all 15,625 | "
                  "AZ-NAS paper's table, all 15,625 |",
                  "|---|---|---|---|---|---|---|---|"]
        later = {}
        for name, r in nb["proxies"].items():
            src = nb["source"][name]
            mark = ""
            if src[0] != nb["first"]:
                later[name] = src
                mark = " (re-run)" if name in nb["replaced"] else " (added)"
            lines.append(f"| {name}{mark} | {r['valid']['kendall']:.3f} | "
                         f"{r['valid']['spearman']:.3f} | {r['test']['kendall']:.3f} | "
                         f"{r['test']['spearman']:.3f} | "
                         f"{format(PAPER_PROXIES[name], '.3f') if name in PAPER_PROXIES else ''} | "
                         f"{ANCHOR_ALL[name] if name in ANCHOR_ALL else ''} | "
                         f"{ANCHOR_AZ[name] if name in ANCHOR_AZ else ''} |")
        for name, (rel, machine, wall) in later.items():
            lines.append("")
            lines.append(f"`{name}` ({'re-run' if name in nb['replaced'] else 'added'}): from "
                         f"`{rel}` ({machine}, "
                         + (f"{wall / 60:.0f} min" if wall >= 30 else
                            "its table read from a cache scored earlier: see its COMMAND.txt")
                         + "), a later run on the same "
                         + ("archs that replaces the first one's figure." if name in
                            nb["replaced"] else "archs."))
        lines.append("")
    for s in summaries:
        t1 = s.get("track1")
        if t1:
            names = list(t1["mutual_kendall"])
            where = t1.get("selection", "drawn from the official Track 1 list (seed 0)")
            lines += [f"Mutual Kendall of the proxies on {t1['archs']:,} archs {where}, "
                      f"{t1['resolution']}x{t1['resolution']} "
                      f"inputs, batch {t1['batch']}, 1,000-class head:", "",
                      "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for a in names:
                lines.append(f"| {a} | " + " | ".join(f"{t1['mutual_kendall'][a][b]:.2f}"
                                                     for b in names) + " |")
            lines.append("")
    return lines, merged


def _noise_note(by_method: dict, method: str, value: float, spos: float | None) -> str:
    """Whether the RD-NAS - SPOS gap stands out of the seed-to-seed spread."""
    if spos is None:
        return ""
    runs = [by_method.get(method, []), by_method.get("spos", [])]
    if min(len(r) for r in runs) < 2:
        return (" A gap under 0.05 between methods is within the noise of one seed."
                if abs(value - spos) < 0.05 else "")
    spread = max(statistics.stdev(s["accuracy"]["kendall"] for s in r) for r in runs)
    return (f" The gap ({value - spos:+.3f}) is {'within' if abs(value - spos) < spread else 'outside'}"
            f" the seed-to-seed standard deviation ({spread:.3f}).")


def beats_both(cell: dict) -> bool:
    """Whether a run's fused Kendall is strictly above the supernet's and the proxy's."""
    return cell["fused"] > max(cell["supernet"], cell["proxy"])


def fusion_table(summary: dict) -> list[str]:
    """Markdown: per bench, method and key, the mean over seeds (held-out half) of the
    supernet alone and, for every proxy, the proxy alone and fused with the supernet, with
    how many runs the fusion beats both of its parts on."""
    names = summary["proxies"]
    lines = ["| bench | method | seeds | key | supernet alone | "
             + " | ".join(f"{n}: alone / fused (runs fused beats both)" for n in names) + " |",
             "|---" * (5 + len(names)) + "|"]
    for bench, runs in summary["benches"].items():
        by_method: dict[str, list[dict]] = {}
        for run, r in runs.items():
            by_method.setdefault(run.rsplit("_s", 1)[0], []).append(r)
        for method, rs in by_method.items():
            for key in ("accuracy", "neg_loss"):
                cells = []
                for name in names:
                    alone, fused = (statistics.mean(r[key][name][k] for r in rs)
                                    for k in ("proxy", "fused"))
                    wins = sum(beats_both(r[key][name]) for r in rs)
                    cells.append(f"{alone:.3f} / {fused:.3f} ({wins}/{len(rs)})")
                sup = statistics.mean(r[key][names[0]]["supernet"] for r in rs)
                lines.append(f"| `{bench}` | {method} | {len(rs)} | {key} | {sup:.3f} | "
                             + " | ".join(cells) + " |")
    return lines + fusion_totals(summary)


def fusion_totals(summary: dict) -> list[str]:
    """Two rows per key: over every run of every bench, and over the runs whose supernet
    alone ranks the held-out half above chance, how many runs the fusion with each proxy
    beats both of its parts on."""
    names = summary["proxies"]
    runs = [r for runs in summary["benches"].values() for r in runs.values()]
    lines = []
    for key in ("accuracy", "neg_loss"):
        for label, keep in (("every run", lambda r: True),
                            ("runs whose supernet alone is above 0",
                             lambda r: r[key][names[0]]["supernet"] > 0)):
            rs = [r for r in runs if keep(r)]
            cells = [f"({sum(beats_both(r[key][n]) for r in rs)}/{len(rs)})" for n in names]
            lines.append(f"| **all benches** | {label} | {len(rs)} | {key} | | "
                         + " | ".join(cells) + " |")
    return lines


def transfer_table(summary: dict) -> list[str]:
    """Markdown: per bench and RD-NAS method whose teacher is one of the report's proxies,
    the supernet's Kendall with its own teacher over all the run's archs (mean over seeds),
    SPOS's with the same teacher on the same bench, and on how many seeds the RD-NAS
    supernet holds its teacher's order better than the SPOS supernet of the same seed."""
    names = set(summary["proxies"])
    keys = ("accuracy", "neg_loss")
    lines = ["| bench | method | teacher | seeds | supernet with its teacher: accuracy / -loss "
             "| SPOS with that teacher | seeds above SPOS of the same seed |",
             "|---|---|---|---|---|---|---|"]
    for bench, runs in summary["benches"].items():
        by_method: dict[str, dict[str, dict]] = {}
        for run, r in runs.items():
            method, seed = run.rsplit("_s", 1)
            by_method.setdefault(method, {})[seed] = r
        spos = by_method.get("spos", {})
        for method, rs in by_method.items():
            teacher = next(iter(rs.values())).get("teacher")
            if teacher not in names or not spos:
                continue
            own = [statistics.mean(r["agreement"][k][teacher] for r in rs.values()) for k in keys]
            base = [statistics.mean(r["agreement"][k][teacher] for r in spos.values())
                    for k in keys]
            paired = [seed for seed in rs if seed in spos]
            above = [sum(rs[seed]["agreement"][k][teacher] > spos[seed]["agreement"][k][teacher]
                         for seed in paired) for k in keys]
            lines.append(f"| `{bench}` | {method} | {teacher} | {len(rs)} | "
                         f"{own[0]:.3f} / {own[1]:.3f} | {base[0]:.3f} / {base[1]:.3f} "
                         f"({len(spos)}) | {above[0]} / {above[1]} of {len(paired)} |")
    return lines


def standing(info: dict, proxies: dict) -> list[str]:
    k = info.get("kendall", {})
    by_method = info.get("by_method", {})
    out = []
    if by_method:
        first = next(iter(by_method.values()))[0]
        b = first["budget"]
        out.append(f"Headline bench: {b['epochs']} epochs x batch {b['batch_size']} "
                   f"({b['steps']:,} steps, {b['images_seen']:,} images per path) on "
                   f"{b.get('device_name', b['device'])}, {first['archs']} archs; mean over seeds "
                   f"{sorted({s['seed'] for ss in by_method.values() for s in ss})}.")
        out.append("")
        loss_k = {m: statistics.mean(s["neg_loss"]["kendall"] for s in ss)
                  for m, ss in by_method.items()}
        out.append("- Ranked by mean cross-entropy instead of accuracy (Kendall of -loss): "
                   + ", ".join(f"`{m}` {v:.3f}" for m, v in loss_k.items()) + ".")
        free = {m: [s["none_free"]["accuracy"]["kendall"] for s in ss if s.get("none_free")]
                for m, ss in by_method.items()}
        free = {m: v for m, v in free.items() if v}
        if free:
            n = next(s["none_free"]["accuracy"]["n"] for ss in by_method.values() for s in ss
                     if s.get("none_free"))
            out.append("- The paper's figures are over none-free archs of a 4-op supernet; this "
                       f"bench trained all 5 ops. On its {n} none-free archs: "
                       + ", ".join(f"`{m}` {statistics.mean(v):.3f}" for m, v in free.items())
                       + " (the `paper` protocol measures that quantity directly; not yet run "
                         "at its budget).")
    spos = k.get("spos")
    n_spos = len(by_method.get("spos", []))
    rd = {m: v for m, v in k.items() if m.startswith("rdnas") and len(by_method[m]) >= n_spos}
    rd = rd or {m: v for m, v in k.items() if m.startswith("rdnas")}
    pair = [(a, b) for a in by_method.get("rdnas_flops", []) for b in by_method.get("spos", [])
            if a["seed"] == b["seed"]]
    if len(pair) > 1:
        for key, label in (("accuracy", "accuracy"), ("neg_loss", "-loss")):
            wins = sum(a[key]["kendall"] > b[key]["kendall"] for a, b in pair)
            out.append(f"- RD-NAS (FLOPs) against SPOS seed by seed, Kendall by {label}: "
                       + ", ".join(f"seed {a['seed']} {a[key]['kendall']:.3f} vs "
                                   f"{b[key]['kendall']:.3f}" for a, b in pair)
                       + f": ahead on {wins} of {len(pair)}.")
    if spos is not None:
        out.append(f"- SPOS baseline: Kendall {spos:.3f} against the paper's 0.774 "
                   f"({spos - 0.774:+.3f}); the target (within 0.03) is "
                   f"{'met' if abs(spos - 0.774) <= 0.03 else 'NOT met'} at this budget.")
    if rd:
        m, v = max(rd.items(), key=lambda kv: kv[1])
        out.append(f"- Best RD-NAS variant: `{m}` Kendall {v:.3f} "
                   f"({'above' if spos is not None and v > spos else 'not above'} SPOS at equal "
                   f"budget; paper RD-NAS 0.871, ambition 0.90: "
                   f"{'met' if v >= 0.871 else 'NOT met'})."
                   + _noise_note(by_method, m, v, spos))
    fixed = next((p for lbl, p in proxies.items() if lbl.startswith("fixed")), None)
    if fixed:
        best = max(fixed["proxies"], key=lambda n: fixed["proxies"][n]["valid"]["kendall"])
        out.append(f"- Best single proxy on the fixed {fixed['archs']}: `{best}` Kendall "
                   f"{fixed['proxies'][best]['valid']['kendall']:.3f} (anchor: about 0.57).")
        every = proxies.get("all")
        if every:
            out.append("- Over all 15,625 archs: " + ", ".join(
                f"`{n}` {r['valid']['kendall']:.3f}" + (f" (anchor {ANCHOR_ALL[n]})" if n in ANCHOR_ALL else "")
                for n, r in every["proxies"].items()) + ".")
        for name, ref in ANCHOR_ALL.items():
            if name in fixed["proxies"]:
                v = fixed["proxies"][name]["valid"]["kendall"]
                out.append(f"- `{name}` on the fixed {fixed['archs']}: {v:.3f} vs {ref} over "
                           f"all 15,625 in the anchors ({v - ref:+.3f}).")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", type=Path, action="append", default=[],
                    help="bench-nb201 --out folder (repeatable: one table each, in the "
                         "order given; the first one, the headline, sets 'where we stand')")
    ap.add_argument("--bench-command", action="append", default=[],
                    help="the command that produced each --bench, in the same order")
    ap.add_argument("--proxies", type=Path, nargs="*", default=[],
                    help="proxy_report summary JSON files; a later one of the same arch "
                         "subset replaces the proxies it holds (a re-run after a fix)")
    ap.add_argument("--proxy-command", default="", help="the command that produced --proxies")
    ap.add_argument("--fusion", type=Path, default=None,
                    help="a tools/fusion_report.py folder (its summary.json and COMMAND.txt)")
    ap.add_argument("--notes", type=Path, default=None, help="markdown appended verbatim")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    args = ap.parse_args(argv)
    docs = args.out.parent
    for p in args.proxies:
        if not p.exists():
            ap.error(f"proxy summary not found: {p}")
    for bench in args.bench:
        if not bench.is_dir():
            ap.error(f"bench folder not found: {bench}")
    lines = ["# Results", "",
             "Generated by `tools/make_results.py` from the run folders; do not edit by hand. "
             "Every table's per-arch predictions are committed under `docs/results/`, so each "
             "figure can be recomputed.", ""]
    info: dict = {}
    proxies: dict = {}
    commands = args.bench_command + [""] * (len(args.bench) - len(args.bench_command))
    for bench, command in zip(args.bench, commands):
        dest = docs / "results" / bench.name
        table, bench_info = bench_section(bench, dest)
        info = info or bench_info
        ev = bench_info.get("eval", {})
        by_method = bench_info.get("by_method", {})
        # the protocol's own lambda: a plain RD-NAS run's, not a lambda variant's
        first = (by_method.get("rdnas_flops") or
                 next((s for ss in by_method.values() for s in ss), {}))
        first = first[0] if isinstance(first, list) else first
        protocol = describe_protocol(first) if first else ""
        lines += [f"## NAS-Bench-201: ranking consistency of supernets (`{bench.name}`)", ""]
        if protocol:
            lines += [protocol, ""]
        scored = ("" if protocol else
                  f"Each arch is scored by its top-1 accuracy on {ev.get('images', '?')} fixed "
                  f"CIFAR-10 test images after BN re-calibration on "
                  f"{ev.get('calib_images', '?')} fixed training images. ")
        lines += [
                  f"Ground truth: NAS-Bench-201 `{bench_info.get('target', '')}` (200-epoch "
                  f"stand-alone accuracy), used only to measure. {scored}"
                  "Every row shares the budget, the seed and the data order; SPOS trains two "
                  "uniform single paths per step, RD-NAS the same two paths ranked against "
                  "each other by the teacher (no extra forward), so the budgets are equal. "
                  f"Predictions: `docs/results/{bench.name}/`.", ""]
        if command:
            lines += ["```", command, "```", ""]
        lines += table + [""]
        if curve_plot(bench_info.get("by_method", {}), dest / "kendall_over_training.png"):
            lines += [f"![Kendall over training](results/{bench.name}/"
                      "kendall_over_training.png)", "",
                      "Kendall over training: " + "; ".join(
                          f"{s['run']} " + ", ".join(f"{c['steps']}: {c['kendall']:.3f}"
                                                     for c in s["curve"])
                          for ss in bench_info["by_method"].values() for s in ss
                          if len(s.get("curve", [])) > 1), ""]
        bn = bn_section(bench, dest)
        if bn:
            lines += ["## BN handling when scoring (picks evaluate's default)", ""] + bn + [""]
    if args.proxies:
        body, proxies = proxy_section(args.proxies, docs / "results")
        lines += ["## Zero-cost proxies", ""]
        if args.proxy_command:
            lines += ["```", args.proxy_command, "```", ""]
        lines += ["`paper`: the RD-NAS paper's Kendall on its 200 archs (docs/REFERENCE.md §4); "
                  "`anchor`: Kendall over all 15,625 archs measured independently of this "
                  "code (docs/REFERENCE.md §6).", ""]
        lines += body
    if args.fusion is not None:
        summary = json.loads((args.fusion / "summary.json").read_text())
        lines += ["## Fusion: the supernet's ranks averaged with a proxy's", "",
                  "```", (args.fusion / "COMMAND.txt").read_text().strip(), "```", "",
                  "For every committed bench run, the supernet's score (top-1, or minus the loss) "
                  "and a zero-cost proxy are fused by a weighted mean of ranks "
                  "(`track1/scoring/fusion.py`). The proxy's weight is chosen on a seeded half "
                  "of the run's archs against the ground truth and every figure below is "
                  "Kendall on the OTHER half (the weight is never reported where it was tuned). "
                  "Every proxy is shown, alone and fused (the weights chosen per seed are in "
                  "the source); the proxies' per-arch scores are those of "
                  "`proxies-nb201-15625archs-2core-cpu`, for MeCo "
                  "`proxies-meco-nb201-15625archs-2core-cpu`, for AZ-NAS "
                  "`proxies-aznas-nb201-15625archs-2core-cpu` (aggregated over all 15,625); "
                  "`meco+az_nas` is the training-free teacher, the mean of the two's ranks over "
                  "all 15,625 archs. A fused figure equal to the "
                  "proxy's means the tuned weight left the supernet out (weight 1). "
                  f"Source: `docs/results/{args.fusion.name}/summary.json`.", ""]
        lines += fusion_table(summary) + [""]
        lines += ["## Does a supernet learn its teacher's order?", "",
                  "From the same summary, with no ground truth: the Kendall of each supernet's "
                  "score with the prior its ranking loss distilled (`teacher.priors`), over all "
                  "the run's archs, beside the SPOS supernets' Kendall with that prior on the "
                  "same bench (no ranking loss: what training alone puts there). Mean over "
                  "seeds; the last column pairs each RD-NAS seed with the SPOS run of the same "
                  "seed. The prior's values are the committed ones (the proxy report's seed 0); "
                  "a run of another seed distilled its own draw of the prior, which agrees with "
                  "these at 0.85-0.94 for the probe proxies (\"The proxies' own noise\"; FLOPs "
                  "is exact).", ""]
        lines += transfer_table(summary) + [""]
    stand = standing(info, proxies)
    if stand:
        lines += ["## Where we stand against the targets", ""] + stand + [""]
    if args.notes is not None:
        lines += [args.notes.read_text().rstrip(), ""]
    atomic_write(args.out, lambda f: f.write("\n".join(lines)), binary=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

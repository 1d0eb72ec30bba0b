"""What a ranking teacher passes on, measured on NAS-Bench-201 from committed per-arch
proxy values (the proxy report's ``nb201_*.csv``; nothing is scored again):

- the Kendall tau of the teacher's order of every arch of the space with the ground
  truth (valid and test accuracy);
- its agreement on the pairs the trainer asks it about: pairs drawn by the margin sampler
  of the bench's RD-NAS methods, the share it orders as the test accuracy does, orders the
  other way, or leaves tied.

Each teacher is the trainer's own ``Teacher`` (its cache preloaded from the CSVs), under
both ways of mixing several priors (``teacher.mix``: ranks among the reference sample, or
inside the compared pair). ``--tune A+B`` chooses B's weight on a seeded search split of
archs (Kendall with the valid accuracy; at most 1,000 archs) and reports every figure of
that teacher on the other archs only; the search split never holds one of the fixed
archs the NAS-Bench-201 bench scores (``--exclude-fixed``).

    D=docs/results; C=nb201_all_b16-nw64-z16-s0.csv
    .venv/bin/python tools/teacher_report.py --scores $D/proxies-nb201-15625archs-2core-cpu/$C \\
        $D/proxies-meco-nb201-15625archs-2core-cpu/$C \\
        --teachers meco synflow meco+synflow --tune meco+synflow --out runs/teacher_report
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

from track1.infra.atomic import write_json_atomic
from track1.infra.resumable import read_records
from track1.nas.sampler import MarginSampler
from track1.nas.teacher import MIXES, Teacher, parse_priors
from track1.proxies import cache_keys
from track1.nb201.ground_truth import fixed_subset, load_ground_truth
from track1.nb201.opnames import PAPER_OPS
from track1.nb201.space import NB201Space
from track1.scoring.metrics import finite_below, rank_metrics

WEIGHTS = [i / 20 for i in range(11)]          # a second prior's share: 0 to 0.5


def read_scores(paths: list[str]) -> dict[str, dict[str, float]]:
    """arch code -> field -> value, joined over the files (a later file's field wins): a
    report's CSV, or its JSONL cache (which also holds AZ-NAS's components, so ``az_nas``
    can be ranked against the teacher's reference as in training)."""
    out: dict[str, dict[str, float]] = {}
    for path in paths:
        if path.endswith(".jsonl"):
            rows, _ = read_records(Path(path), "arch")
        else:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        for row in rows:
            out.setdefault(row["arch"], {}).update(
                {k: float(v) for k, v in row.items() if k not in ("arch", "valid", "test")})
    return out


def teacher_for(space: NB201Space, priors: str, mix: str,
                scores: dict[str, dict[str, float]], reference: int) -> Teacher:
    t = Teacher(space, priors, mix=mix, set_reference=reference)
    for key in t.cache:   # a prior's values, or a set proxy's fields (az_*, flops)
        t.cache[key].update({c: v[key] for c, v in scores.items() if key in v})
    return t


def remember(teacher: Teacher, scores: dict[str, dict[str, float]]) -> None:
    """Keep what ``teacher`` computed (reference archs a partial cache lacks) for the
    next teacher, so each is scored once per run."""
    for key, table in teacher.cache.items():
        for code, value in table.items():
            scores.setdefault(code, {}).setdefault(key, value)


def pair_agreement(teacher: Teacher, pairs: list[tuple], gt: dict) -> dict[str, float]:
    """Shares of ``pairs`` the teacher orders as the test accuracy does, the other way,
    or leaves tied (pairs of equal accuracy are skipped)."""
    counts = {"agree": 0, "disagree": 0, "tied": 0}
    space = teacher.space
    for a, b in pairs:
        ta, tb = gt[space.encode(a)].test, gt[space.encode(b)].test
        if ta == tb:
            continue
        pa, pb = teacher.scores([a, b])
        counts["tied" if pa == pb else "agree" if (pa > pb) == (ta > tb) else "disagree"] += 1
    n = max(sum(counts.values()), 1)
    return {k: round(v / n, 4) for k, v in counts.items()}


def measure(teacher: Teacher, archs: list, pairs: list[tuple], gt: dict) -> dict:
    codes = [teacher.space.encode(a) for a in archs]
    values = finite_below(teacher.mixed(archs) if len(teacher.priors) > 1 else
                          [teacher.prior(teacher.priors[0], a) for a in archs])
    return {"archs": len(archs),
            **{f"kendall_{t}": round(rank_metrics(values, [getattr(gt[c], t) for c in codes])
                                     ["kendall"], 4) for t in ("valid", "test")},
            "pairs": pair_agreement(teacher, pairs, gt)}


def tune(space: NB201Space, spec: str, search: list, scores: dict, gt: dict,
         reference: int) -> tuple[str, float]:
    """``A+B`` with B's weight chosen on ``search`` (Kendall with the valid accuracy)."""
    a, b = spec.split("+")
    best = (-2.0, "")
    for w in WEIGHTS:
        priors = a if w == 0 else f"{a}:{1 - w:g}+{b}:{w:g}"
        t = teacher_for(space, priors, "reference", scores, reference)
        k = measure(t, search, [], gt)["kendall_valid"]
        remember(t, scores)
        best = max(best, (k, priors))
    return best[1], best[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scores", nargs="+", required=True,
                    help="per-arch CSVs or JSONL caches of the proxy report")
    ap.add_argument("--teachers", nargs="+", default=["meco", "synflow", "meco+synflow"])
    ap.add_argument("--tune", nargs="*", default=[],
                    help="A+B: B's weight chosen on a split, reported on the rest")
    ap.add_argument("--space", choices=("paper", "all"), default="all",
                    help="paper: the bench's 4 ops (4,096 archs); all: 5 ops (15,625)")
    ap.add_argument("--search-archs", type=int, default=1000)
    ap.add_argument("--exclude-fixed", type=int, default=1000,
                    help="the search split avoids the bench's fixed evaluation archs")
    ap.add_argument("--pairs", type=int, default=20000, help="margin-sampler pairs")
    ap.add_argument("--threshold", type=float, default=6.7, help="the RD-NAS methods' margin")
    ap.add_argument("--reference", type=int, default=256, help="teacher.reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/teacher_report")
    args = ap.parse_args(argv)
    if args.search_archs > 1000:
        ap.error("--search-archs: ground truth is used on at most 1,000 archs")
    for spec in args.tune:
        if len(spec.split("+")) != 2 or ":" in spec:
            ap.error(f"--tune {spec!r}: two priors A+B without weights (B's is tuned)")
    space = NB201Space(ops=PAPER_OPS if args.space == "paper" else None)
    gt = load_ground_truth()
    scores = read_scores(args.scores)
    # the archs every teacher has all its fields for (a partial cache: its archs only)
    fields = {k for spec in args.teachers + args.tune for name in parse_priors(spec)[0]
              for k in cache_keys(name)}
    archs = [space.decode(c) for c in gt
             if c in scores and fields <= set(scores[c])
             and (args.space == "all" or "none~" not in c)]
    # the search split never holds an arch of the fixed set the bench scores, so a weight
    # tuned here is never tuned on the archs a bench figure of its teacher is read on
    fixed = set(fixed_subset(args.exclude_fixed, seed=0, none_free=args.space == "paper"))
    order = [i for i, a in enumerate(archs) if space.encode(a) not in fixed]
    random.Random(args.seed).shuffle(order)
    chosen = set(order[:args.search_archs])
    search = [a for i, a in enumerate(archs) if i in chosen]
    held = [a for i, a in enumerate(archs) if i not in chosen]
    if args.tune and (len(search) < 10 or len(held) < 10):
        ap.error(f"--tune: {len(search)} search and {len(held)} held-out archs outside the "
                 f"fixed {args.exclude_fixed}; score more archs (proxy_report.py --all)")
    # pairs as the trainer draws them, of archs with every field (a partial cache: more
    # draws; an arch outside it would be scored here)
    sampler = MarginSampler(space, args.threshold, seed=args.seed)
    have = {space.encode(a) for a in archs}
    pairs: list[tuple] = []
    for _ in range(100 * args.pairs):
        if len(pairs) == args.pairs:
            break
        a, b = sampler.pair()
        if space.encode(a) in have and space.encode(b) in have:
            pairs.append((a, b))
    held_codes = {space.encode(a) for a in held}
    held_pairs = [(a, b) for a, b in pairs
                  if space.encode(a) in held_codes and space.encode(b) in held_codes]
    rows = []
    for spec, tuned in [(t, False) for t in args.teachers] + [(t, True) for t in args.tune]:
        priors, search_k = tune(space, spec, search, scores, gt, args.reference) if tuned \
            else (spec, None)
        for mix in (MIXES if "+" in priors else MIXES[:1]):
            t = teacher_for(space, priors, mix, scores, args.reference)
            row = {"teacher": priors, "mix": mix if "+" in priors else "-",
                   "on": "held-out" if tuned else "all",
                   **measure(t, held if tuned else archs, held_pairs if tuned else pairs, gt)}
            if tuned:
                row["tuned_on"] = {"archs": len(search), "kendall_valid": round(search_k, 4)}
            remember(t, scores)
            rows.append(row)
            print(f"{row['teacher']:<28} {row['mix']:<9} {row['on']:<8} "
                  f"Kendall {row['kendall_valid']:.4f} / {row['kendall_test']:.4f}  pairs "
                  f"agree {row['pairs']['agree']:.4f} disagree {row['pairs']['disagree']:.4f} "
                  f"tied {row['pairs']['tied']:.4f}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic({"command": " ".join(sys.argv), "space": args.space, "fields": sorted(fields),
                       "archs": len(archs), "pairs": len(pairs), "threshold": args.threshold,
                       "reference": args.reference, "seed": args.seed, "rows": rows},
                      out / f"teacher_report_{args.space}.json", indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rank agreement between two result files: Kendall, Spearman, Pearson (+ top-k) and a
rank-scatter plot.

Why: every claim this project makes about a supernet or a proxy is a rank correlation
against something else (a submission vs stand-alone accuracy, a proxy vs ground
truth). Inputs can be, in any mix:

- a submission / list JSON ``{key: {"acc": ..., "arch": ...}}``;
- a per-rank results JSONL of ``evaluate`` (``{"key", "arch", "acc"}`` per line);
- a CSV with an ``arch`` column (or ``key``/``index``) and a numeric column
  (e.g. NAS-Bench-201 ground truth: ``--key-b cifar10_valid_acc``).

Entries are matched by arch code when both files have one, else by key. ``.gz`` is
read transparently.

    python tools/rank_report.py submission/CVPR_2022_NAS_Track1_test.json truth.csv \\
        --key-b acc --plot runs/rank.png
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from track1.errors import UserError  # noqa: E402
from track1.evaluate.metrics import rank_correlations, top_k_precision  # noqa: E402


class ReportError(UserError, ValueError):
    pass


def _text(path: Path) -> str:
    if not path.is_file():
        raise ReportError(f"file not found: {path}")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def load_scores(path: str | Path, key: str) -> tuple[dict[str, float], dict[str, str]]:
    """``({id: value}, {id: arch})`` from a JSON, JSONL or CSV result file."""
    path = Path(path)
    text = _text(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    values: dict[str, float] = {}
    archs: dict[str, str] = {}

    def put(ident: str, rec: dict, where: str) -> None:
        if key not in rec:
            raise ReportError(f"{path}: {where} has no {key!r} field (fields: {sorted(rec)[:8]})")
        try:
            values[ident] = float(rec[key])
        except (TypeError, ValueError):
            raise ReportError(f"{path}: {where}: {key}={rec[key]!r} is not a number") from None
        if isinstance(rec.get("arch"), str):
            archs[ident] = rec["arch"]

    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise ReportError(f"{path}: empty CSV")
        for i, row in enumerate(rows):
            ident = row.get("key") or row.get("index") or row.get("arch") or str(i)
            put(ident, row, f"row {i + 2}")
    elif name.endswith(".jsonl"):
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line of a killed run
                put(str(rec.get("key", i)), rec, f"line {i + 1}")
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ReportError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ReportError(f"{path}: expected a JSON object {{key: {{...}}}}")
        for ident, rec in data.items():
            if not isinstance(rec, dict):
                raise ReportError(f"{path}: entry {ident!r} is not an object")
            put(ident, rec, f"entry {ident!r}")
    return values, archs


def match(a: tuple[dict, dict], b: tuple[dict, dict]) -> tuple[list[str], list[float], list[float], str]:
    (va, aa), (vb, ab) = a, b
    if aa and ab and len(aa) == len(va) and len(ab) == len(vb):
        by_arch_b = {code: ident for ident, code in ab.items()}
        ids = [i for i in va if aa[i] in by_arch_b]
        return ids, [va[i] for i in ids], [vb[by_arch_b[aa[i]]] for i in ids], "arch"
    ids = [i for i in va if i in vb]
    return ids, [va[i] for i in ids], [vb[i] for i in ids], "key"


def rank_scatter(x: list[float], y: list[float], out: Path, labels: tuple[str, str],
                 title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata
    rx, ry = rankdata(x), rankdata(y)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.scatter(rx, ry, s=6 if len(x) > 500 else 14, alpha=0.5, linewidths=0)
    n = len(x)
    ax.plot([1, n], [1, n], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"rank by {labels[0]}")
    ax.set_ylabel(f"rank by {labels[1]}")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="first result file (e.g. the submission)")
    p.add_argument("b", help="second result file (e.g. ground truth or a proxy)")
    p.add_argument("--key", default="acc", help="value field of both files (default: acc)")
    p.add_argument("--key-a", default=None, help="value field of A (overrides --key)")
    p.add_argument("--key-b", default=None, help="value field of B (overrides --key)")
    p.add_argument("--top-k", type=float, default=0.1,
                   help="top-k precision: a count, or a fraction of the matched entries (0.1)")
    p.add_argument("--plot", default=None, help="write a rank-scatter PNG here")
    p.add_argument("--json", action="store_true", help="print only one JSON object")
    args = p.parse_args(argv)
    try:
        a = load_scores(args.a, args.key_a or args.key)
        b = load_scores(args.b, args.key_b or args.key)
        ids, x, y, by = match(a, b)
        if len(ids) < 2:
            raise ReportError(f"only {len(ids)} entries match between {args.a} and {args.b} "
                              "(by arch code, else by key)")
        report = rank_correlations(x, y)
        k = int(args.top_k) if args.top_k >= 1 else max(1, math.ceil(args.top_k * len(ids)))
        k = min(k, len(ids))
        report.update({"top_k": k, "top_k_precision": top_k_precision(x, y, k), "matched_by": by,
                       "only_in_a": len(a[0]) - len(ids), "only_in_b": len(b[0]) - len(ids)})
        if args.plot:
            title = (f"n={len(ids)}  Kendall {report['kendall']:.3f}  Spearman "
                     f"{report['spearman']:.3f}  Pearson {report['pearson']:.3f}")
            names = [f"{Path(f).parent.name}/{Path(f).name}" for f in (args.a, args.b)]
            labels = tuple(f"{n} [{k}]" for n, k in zip(names, (args.key_a or args.key,
                                                             args.key_b or args.key)))
            report["plot"] = str(rank_scatter(x, y, Path(args.plot), labels, title))
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.a}  vs  {args.b}: {report['n']} matched by {by} "
              f"({report['only_in_a']} only in A, {report['only_in_b']} only in B)")
        for name in ("kendall", "spearman", "pearson"):
            print(f"  {name:<9} {report[name]: .4f}")
        print(f"  top-{k} precision {report['top_k_precision']:.3f}")
        if args.plot:
            print(f"  plot: {report['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

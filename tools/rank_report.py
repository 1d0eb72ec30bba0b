"""Rank agreement between two result files: Kendall, Spearman, Pearson (+ top-k) and a
rank-scatter plot.

The command line over ``track1.evaluate.report`` (which reads the files: a submission /
list JSON, a per-rank results JSONL of ``evaluate``, or a CSV with an ``arch``/``key``
column and a numeric one, ``.gz`` too; entries are matched by arch code, else by key).

    python tools/rank_report.py submission/CVPR_2022_NAS_Track1_test.json truth.csv \\
        --key-b acc --plot runs/rank.png
"""
from __future__ import annotations

import argparse
import json
import sys

from track1.evaluate.report import ReportError, rank_report


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
        report = rank_report(args.a, args.b, key_a=args.key_a or args.key,
                             key_b=args.key_b or args.key, top_k=args.top_k, plot=args.plot)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{args.a}  vs  {args.b}: {report['n']} matched by {report['matched_by']} "
              f"({report['only_in_a']} only in A, {report['only_in_b']} only in B)")
        for name in ("kendall", "spearman", "pearson"):
            print(f"  {name:<9} {report[name]: .4f}")
        print(f"  top-{report['top_k']} precision {report['top_k_precision']:.3f}")
        if args.plot:
            print(f"  plot: {report['plot']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

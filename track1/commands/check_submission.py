"""``python -m track1 check-submission FILE [--archs LIST]``: validate a submission JSON.

Exit 0 when valid; exit 1 printing the first problem otherwise.
"""
from __future__ import annotations

import argparse
import sys



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-submission", help="validate a Track 1 submission JSON",
                       description="Check keys (same order as the list), arch strings "
                                   "(identical to the list's) and acc values (finite, in "
                                   "[0, 1]). Exit 0 when valid, 1 with the first problem.")
    p.add_argument("file", help="submission JSON, e.g. submission/CVPR_2022_NAS_Track1_test.json")
    p.add_argument("--archs", default=None,
                   help="the list it answers (default: the official 45,000-subnet list)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.evaluate.submission import first_problem
    from track1.resnet48.official import OFFICIAL_LIST
    problem = first_problem(args.file, args.archs or OFFICIAL_LIST)
    if problem is not None:
        print(f"invalid: {problem}", file=sys.stderr)
        return 1
    print(f"valid: {args.file}")
    return 0

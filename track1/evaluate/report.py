"""Rank agreement between two result files: Kendall, Spearman, Pearson, top-k precision
and a rank-scatter plot (``tools/rank_report.py`` is the command line over it).

Why: every claim this project makes about a supernet or a proxy is a rank correlation
against something else (a submission vs stand-alone accuracy, a proxy vs ground
truth). Inputs can be, in any mix:

- a submission / list JSON ``{key: {"acc": ..., "arch": ...}}``;
- a per-rank results JSONL of ``evaluate`` (``{"key", "arch", "acc"}`` per line);
- a CSV with an ``arch`` column (or ``key``/``index``) and a numeric column
  (e.g. NAS-Bench-201 ground truth, value field ``cifar10_valid_acc``).

Entries are matched by arch code when both files have one, else by key. ``.gz`` is
read transparently.
"""
from __future__ import annotations

import csv
import gzip
import zlib
import io
import json
import math
from pathlib import Path
from typing import Any

from track1.infra.errors import UserError
from track1.scoring.metrics import rank_metrics, top_k_precision

#: ``({id: value}, {id: arch code})`` as read from one result file
Scores = tuple[dict[str, float], dict[str, str]]


class ReportError(UserError, ValueError):
    """A result file that cannot be read or compared (missing, malformed, no such field,
    too few matching entries): one line, exit 2."""


def _text(path: Path) -> str:
    if not path.is_file():
        raise ReportError(f"file not found: {path}")
    raw = path.read_bytes()
    try:
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise ReportError(f"cannot read {path}: {str(e)[:200]}") from None


def load_scores(path: str | Path, key: str) -> Scores:
    """``({id: value}, {id: arch})`` from a JSON, JSONL or CSV result file; ``key`` names
    the value field. A torn last JSONL line (a killed run) is skipped."""
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


def match(a: Scores, b: Scores) -> tuple[list[str], list[float], list[float], str]:
    """The entries of ``a`` also in ``b``: ``(ids, values in a, values in b, "arch"|"key")``,
    matched by arch code when every entry of both files has one, else by key."""
    (va, aa), (vb, ab) = a, b
    if aa and ab and len(aa) == len(va) and len(ab) == len(vb):
        by_arch_b = {code: ident for ident, code in ab.items()}
        ids = [i for i in va if aa[i] in by_arch_b]
        return ids, [va[i] for i in ids], [vb[by_arch_b[aa[i]]] for i in ids], "arch"
    ids = [i for i in va if i in vb]
    return ids, [va[i] for i in ids], [vb[i] for i in ids], "key"


def rank_scatter(x: list[float], y: list[float], out: Path, labels: tuple[str, str],
                 title: str) -> Path:
    """Write a PNG of rank by ``x`` against rank by ``y`` (the diagonal = perfect
    agreement) to ``out``; returns ``out``."""
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


def rank_report(a: str | Path, b: str | Path, key_a: str = "acc", key_b: str = "acc",
                top_k: float = 0.1, plot: str | Path | None = None) -> dict[str, Any]:
    """Compare result files ``a`` and ``b`` (value fields ``key_a`` and ``key_b``).

    Returns ``n``, ``kendall``, ``spearman``, ``pearson``, ``top_k`` (a count, or a
    fraction of the matched entries when below 1) with ``top_k_precision``,
    ``matched_by`` and the entries ``only_in_a`` / ``only_in_b``; with ``plot``, also
    writes the rank-scatter PNG there and returns its path as ``plot``. Raises
    ``ReportError`` on an unreadable file or fewer than 2 matching entries.
    """
    scores_a, scores_b = load_scores(a, key_a), load_scores(b, key_b)
    ids, x, y, by = match(scores_a, scores_b)
    if len(ids) < 2:
        raise ReportError(f"only {len(ids)} entries match between {a} and {b} "
                          "(by arch code, else by key)")
    report: dict[str, Any] = rank_metrics(x, y)
    k = int(top_k) if top_k >= 1 else max(1, math.ceil(top_k * len(ids)))
    k = min(k, len(ids))
    report.update({"top_k": k, "top_k_precision": top_k_precision(x, y, k), "matched_by": by,
                   "only_in_a": len(scores_a[0]) - len(ids),
                   "only_in_b": len(scores_b[0]) - len(ids)})
    if plot:
        title = (f"n={len(ids)}  Kendall {report['kendall']:.3f}  Spearman "
                 f"{report['spearman']:.3f}  Pearson {report['pearson']:.3f}")
        names = [f"{Path(f).parent.name}/{Path(f).name}" for f in (a, b)]
        labels = (f"{names[0]} [{key_a}]", f"{names[1]} [{key_b}]")
        report["plot"] = str(rank_scatter(x, y, Path(plot), labels, title))
    return report

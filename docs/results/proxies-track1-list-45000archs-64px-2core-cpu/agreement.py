"""How each proxy orders the Track 1 list against the subnets' size: for every subnet of
the list's cache (this folder's track1_proxies_r64_b8.jsonl.gz), its rank by FLOPs
against its rank by params, Zen-score, MeCo, MeCo_opt, AZ-NAS (aggregated over the whole
list, as its paper ranks a set) and the training-free teacher meco_opt+az_nas (the
equal-weight mean of the two's ranks), as ranks in [0, 1] (1: ranked best), one panel
each, with the Kendall of the two. No ground truth: the list has none here. Also, for
each proxy, the share of the variance of its ranks that the subnet's total depth (the sum
of code digits 1-4), stage 1's depth (digit 1), and stage 1's depth with the stem width
(digit 5) explain (eta squared, between-group over total): MeCo at 64 px sees only the
stem and stage 1 (meco_coverage.py). And the proxies' mutual Kendall within a total depth
(the Kendall inside each of its 16 values, weighted by its pairs): what they agree on
beyond depth; and, within a total depth, each proxy's Kendall with each stage's depth:
where it would put a given number of blocks.

    .venv/bin/python docs/results/proxies-track1-list-45000archs-64px-2core-cpu/agreement.py
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent))

from track1.infra.ranks import mean_ranks, ranks  # noqa: E402
from track1.infra.resumable import merge_by_key, read_records  # noqa: E402
from track1.proxies import cache_keys, set_scores  # noqa: E402

PANELS = ["params", "zen", "meco", "meco_opt", "az_nas", "meco_opt+az_nas"]
NAMES = {"params": "params", "zen": "Zen-score", "meco": "MeCo", "meco_opt": "MeCo_opt",
         "az_nas": "AZ-NAS", "meco_opt+az_nas": "meco_opt+az_nas (teacher)"}


def explained(values: np.ndarray, groups: list[str]) -> float:
    """Eta squared: the share of the variance of ``values`` between the groups' means."""
    keys, index = np.unique(groups, return_inverse=True)
    means = np.bincount(index, values) / np.bincount(index)
    return float(((means[index] - values.mean()) ** 2).sum() / ((values - values.mean()) ** 2).sum())


def within_groups(a: np.ndarray, b: np.ndarray, groups: np.ndarray) -> float:
    """Kendall of ``a`` with ``b`` inside each group, the mean weighted by its pairs (a
    group where either is constant has no Kendall and is left out)."""
    total = weight = 0.0
    for g in np.unique(groups):
        i = groups == g
        tau = float(kendalltau(a[i], b[i])[0]) if i.sum() >= 2 else float("nan")
        if not np.isnan(tau):
            pairs = i.sum() * (i.sum() - 1) / 2
            total += tau * pairs
            weight += pairs
    return total / weight


def main() -> None:
    merged = merge_by_key(read_records(HERE / "track1_proxies_r64_b8.jsonl.gz", "key")[0], "key")
    need = {k for n in ("zen", "meco", "meco_opt", "az_nas") for k in cache_keys(n)}
    rows = [r for r in merged.values() if need <= r.keys()]
    score = {n: np.asarray(set_scores(n, rows), float)
             for n in ("flops", "params", "zen", "meco", "meco_opt", "az_nas")}
    # the teacher's equal-weight mix, as the proxy tools build it
    score["meco_opt+az_nas"] = np.asarray(mean_ranks([score["meco_opt"], score["az_nas"]]))
    unit = {n: np.asarray(ranks(v)) for n, v in score.items()}
    kendall = {n: round(float(kendalltau(score["flops"], score[n])[0]), 4) for n in PANELS}
    codes = [r["arch"] for r in rows]
    by = {"total_depth": [str(sum(int(d) for d in c[1:5])) for c in codes],
          "stage1_depth": [c[1] for c in codes], "stage1_depth_and_stem": [c[1] + c[5] for c in codes]}
    share = {n: {g: round(explained(unit[n], v), 4) for g, v in by.items()}
             for n in ["flops"] + PANELS}
    depth = np.array(by["total_depth"])
    mutual = ["flops", "params", "zen", "meco", "meco_opt", "az_nas"]
    inside = {a: {b: round(within_groups(score[a], score[b], depth), 4) for b in mutual if b != a}
              for a in mutual}
    stages = {f"stage{k}_depth": np.array([float(c[k]) for c in codes]) for k in (1, 2, 3, 4)}
    where = {n: {st: round(within_groups(score[n], d, depth), 4) for st, d in stages.items()}
             for n in mutual + ["meco_opt+az_nas"]}
    print(json.dumps({"subnets": len(rows), "of": len(merged), "kendall_with_flops": kendall,
                      "rank_variance_explained": share,
                      "mutual_kendall_within_total_depth": inside,
                      "kendall_with_stage_depth_within_total_depth": where}, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.6), sharex=True, sharey=True)
    for ax, n in zip(axes.flat, PANELS):
        ax.hexbin(unit["flops"], unit[n], gridsize=40, bins="log", cmap="viridis",
                  mincnt=1, extent=(0, 1, 0, 1))
        ax.set_title(f"{NAMES[n]}: Kendall with FLOPs {kendall[n]:.2f}", fontsize=10)
    for ax in axes[1]:
        ax.set_xlabel("rank by FLOPs (0 smallest, 1 largest)")
    for ax in axes[:, 0]:
        ax.set_ylabel("rank by the proxy (1: ranked best)")
    fig.suptitle(f"The official Track 1 list: {len(rows):,} subnets, 64 px, 8 Gaussian images "
                 f"(counts per cell, log scale)", fontsize=11)
    fig.tight_layout()
    fig.savefig(HERE / "agreement.png", dpi=110)


if __name__ == "__main__":
    main()

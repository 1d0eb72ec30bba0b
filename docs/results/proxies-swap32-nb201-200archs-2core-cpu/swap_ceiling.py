"""SWAP's ceiling: with N images a network's count of distinct firing patterns is at most
2^N. This reads the fixed 200 NAS-Bench-201 archs scored with the authors' 16 images
(proxies-swap-nb201-200archs-2core-cpu) and with 32 (this folder), and the 200 Track 1
subnets scored with 16 (proxies-track1-200archs-64px-2core-cpu), and writes how near the
counts come to their ceiling, Kendall with the accuracies for each count of images, a
paired bootstrap of the difference (1,000 resamples of the archs, seed 0), and a picture.

    .venv/bin/python docs/results/proxies-swap32-nb201-200archs-2core-cpu/swap_ceiling.py
"""
import csv
import json
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent


def table(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {r["arch"]: r for r in csv.DictReader(f)}


def main() -> None:
    s16 = table(RESULTS / "proxies-swap-nb201-200archs-2core-cpu" / "nb201_fixed200_b16-nw64-z16-s0.csv")
    s32 = table(HERE / "nb201_fixed200_b16-nw64-z16-s0-sw32x32.csv")
    archs = list(s32)
    a16 = np.array([float(s16[c]["swap"]) for c in archs])
    a32 = np.array([float(s32[c]["swap"]) for c in archs])
    valid = np.array([float(s16[c]["valid"]) for c in archs])
    test = np.array([float(s16[c]["test"]) for c in archs])
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(1000):
        i = rng.integers(0, len(archs), len(archs))
        diffs.append(kendalltau(a16[i], valid[i])[0] - kendalltau(a32[i], valid[i])[0])
    rows = {}
    with open(RESULTS / "proxies-track1-200archs-64px-2core-cpu" / "cache_track1_r64-b8-s0.jsonl") as f:
        for line in f:
            r = json.loads(line)
            rows.setdefault(r["arch"], {}).update(r)
    t1 = np.array([r["swap"] for r in rows.values() if "swap" in r])

    def share(x: np.ndarray, n: int) -> dict[str, float]:
        return {q: round(float(v) / 2 ** n, 6) for q, v in
                (("min", x.min()), ("median", np.median(x)), ("max", x.max()))}

    out = {
        "nb201_fixed200": {
            "archs": len(archs),
            "16_images": {"kendall_valid": round(kendalltau(a16, valid)[0], 4),
                          "kendall_test": round(kendalltau(a16, test)[0], 4),
                          "count_share_of_2^16": share(a16, 16),
                          "archs_above_99pct_of_ceiling": int((a16 > 0.99 * 2 ** 16).sum())},
            "32_images": {"kendall_valid": round(kendalltau(a32, valid)[0], 4),
                          "kendall_test": round(kendalltau(a32, test)[0], 4),
                          "count_share_of_2^32": share(a32, 32)},
            "kendall_16_vs_32": round(kendalltau(a16, a32)[0], 4),
            "paired_bootstrap_valid_16_minus_32": {
                "mean": round(float(np.mean(diffs)), 4), "sd": round(float(np.std(diffs)), 4),
                "share_above_0": float(np.mean(np.array(diffs) > 0))}},
        "track1_200_64px_16_images": {"subnets": len(t1), "count_share_of_2^16": share(t1, 16)},
    }
    (HERE / "swap_ceiling.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, x, n, tau in ((axes[0], a16, 16, out["nb201_fixed200"]["16_images"]),
                          (axes[1], a32, 32, out["nb201_fixed200"]["32_images"])):
        live = x > 1
        ax.scatter(x[live] / 2 ** n if n == 16 else x[live], valid[live], s=8)
        ax.set_xlabel("count / 2^16 (the ceiling)" if n == 16 else "count (ceiling 2^32)")
        ax.set_title(f"SWAP, {n} images: Kendall {tau['kendall_valid']:.3f}")
        if n == 16:
            ax.axvline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set_ylabel("NB201 CIFAR-10 valid accuracy (%)")
    fig.suptitle("The fixed 200 NAS-Bench-201 archs (archs that score 1 or 0 left out)", fontsize=9)
    fig.tight_layout()
    fig.savefig(HERE / "swap_ceiling.png", dpi=110)


if __name__ == "__main__":
    main()

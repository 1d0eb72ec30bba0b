"""Do the Track 1 teachers' preferences come from the 64 px probe? The list's first 400
subnets scored again at 224 px, the competition's resolution (this folder's cache), beside
their 64 px values in the whole list's cache (proxies-track1-list-45000archs-64px-2core-cpu):
for MeCo, MeCo_opt, AZ-NAS (aggregated over these 400 at each resolution) and the teacher
meco_opt+az_nas (equal-weight mean of ranks), at each resolution: the Kendall with FLOPs,
the share of rank variance that total depth explains, and, within a total depth, the
Kendall with each stage's depth (agreement.py's measures); and each proxy's Kendall
between its two resolutions. AZ-NAS also at 224 px on 16 images (this folder's b16 file),
where its stage-4 covariances (16 x 49 = 784 observations of 512 channels) are no longer
rank-limited as with 8 (392), and the teacher from it and MeCo_opt at 224 px.

    .venv/bin/python docs/results/proxies-track1-224px-400archs-2core-cpu/resolution_check.py
"""
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

HERE = Path(__file__).resolve().parent
LIST = HERE.parent / "proxies-track1-list-45000archs-64px-2core-cpu"
sys.path.insert(0, str(HERE.parent.parent.parent))
sys.path.insert(0, str(LIST))

from agreement import explained, within_groups  # noqa: E402
from track1.infra.ranks import mean_ranks, ranks  # noqa: E402
from track1.infra.resumable import merge_by_key, read_records  # noqa: E402
from track1.proxies import cache_keys, set_scores  # noqa: E402

PROXIES = ("meco", "meco_opt", "az_nas")


def scores(rows: list[dict]) -> dict[str, np.ndarray]:
    s = {n: np.asarray(set_scores(n, rows), float) for n in ("flops",) + PROXIES}
    s["meco_opt+az_nas"] = np.asarray(mean_ranks([s["meco_opt"], s["az_nas"]]))
    return s


def read(path: Path) -> dict[str, dict]:
    return merge_by_key(read_records(path, "key")[0], "key")


def main() -> None:
    hi = read(HERE / "track1_proxies_r224_b8_first400.jsonl")
    b16 = read(HERE / "track1_proxies_r224_b16_first400.jsonl")
    need = [k for n in PROXIES for k in cache_keys(n)]
    keys = [k for k, r in hi.items() if all(f in r for f in need)
            and all(f in b16.get(k, {}) for f in cache_keys("az_nas"))]
    lo = read(LIST / "track1_proxies_r64_b8.jsonl.gz")
    at = {"64px_8images": scores([lo[k] for k in keys]),
          "224px_8images": scores([hi[k] for k in keys]),
          # AZ-NAS on 16 images; MeCo and MeCo_opt as at 224 px on 8 (each reads one image's maps)
          "224px_16images_for_az_nas": scores([hi[k] | {f: b16[k][f] for f in cache_keys("az_nas")}
                                               for k in keys])}
    codes = [hi[k]["arch"] for k in keys]
    depth = np.array([sum(int(d) for d in c[1:5]) for c in codes])
    stages = {f"stage{j}_depth": np.array([float(c[j]) for c in codes]) for j in (1, 2, 3, 4)}
    names = list(PROXIES) + ["meco_opt+az_nas"]
    out = {"subnets": len(keys), "by_resolution": {}}
    for res, s in at.items():
        out["by_resolution"][res] = {n: {
            "kendall_with_flops": round(float(kendalltau(s["flops"], s[n])[0]), 3),
            "total_depth_explains": round(explained(np.asarray(ranks(s[n])), [str(d) for d in depth]), 3),
            "kendall_with_stage_depth_within_total_depth": {
                st: round(within_groups(s[n], d, depth), 3) for st, d in stages.items()}}
            for n in names}
    out["kendall_with_64px_8images"] = {
        res: {n: round(float(kendalltau(at["64px_8images"][n], s[n])[0]), 3) for n in names}
        for res, s in at.items() if res != "64px_8images"}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

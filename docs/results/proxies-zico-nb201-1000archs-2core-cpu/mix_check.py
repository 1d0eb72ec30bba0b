"""Does ZiCo add to the training-free teacher meco+az_nas? On the NB201 archs the ZiCo run
over all 15,625 had reached (its partial cache here; every other value from the committed
all-15,625 runs): each proxy's and each equal-weight mix's Kendall with the ground truth,
through tools/proxy_noise.py (one seed; the arch-sample spread from 1,000 bootstrap
resamples). AZ-NAS is aggregated over these archs, as its paper ranks a set.

    .venv/bin/python docs/results/proxies-zico-nb201-1000archs-2core-cpu/mix_check.py
"""
import csv
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import proxy_noise  # noqa: E402
from track1.infra.resumable import merge_by_key, read_records  # noqa: E402
from track1.nb201.ground_truth import load_ground_truth  # noqa: E402
from track1.proxies import az_nas  # noqa: E402

TAG = "b16-nw64-z16-s0"


def main() -> None:
    zico = merge_by_key(read_records(HERE / f"cache_nb201_{TAG}.jsonl", "arch")[0], "arch")
    az = merge_by_key(read_records(ROOT / "docs/results/proxies-aznas-nb201-15625archs-2core-cpu"
                                   / f"cache_nb201_{TAG}.jsonl", "arch")[0], "arch")
    with open(ROOT / "docs/results/proxies-meco-nb201-15625archs-2core-cpu" / f"nb201_all_{TAG}.csv") as f:
        meco = {r["arch"]: float(r["meco"]) for r in csv.DictReader(f)}
    gt = load_ground_truth()
    archs = sorted(a for a, r in zico.items() if "zico" in r)
    views = az_nas.aggregate([az_nas.views(az[a]) for a in archs])
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "table.csv"
        with open(table, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["arch", "valid", "test", "flops", "meco", "az_nas", "zico"])
            for a, v in zip(archs, views):
                w.writerow([a, gt[a].valid, gt[a].test, az[a]["flops"], meco[a], v, zico[a]["zico"]])
        result = proxy_noise.noise([proxy_noise.read_table(table)],
                                   ["meco+az_nas", "meco+az_nas+zico", "az_nas+zico"], 1000)
    print(json.dumps({"archs": result["archs"], "kendall": {
        k: {"valid": round(r["valid"]["mean"], 3), "test": round(r["test"]["mean"], 3),
            "archs_sd": round(r["archs_sd"], 3)} for k, r in result["proxies"].items()}}, indent=1))


if __name__ == "__main__":
    main()

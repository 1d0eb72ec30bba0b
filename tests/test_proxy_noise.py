"""``tools/proxy_noise.py``: a proxy's Kendall per seed, its spread, and its agreement with
itself across seeds, from the proxy report's per-seed tables."""
from __future__ import annotations

import csv
import json
import random
import statistics
import sys
from pathlib import Path

import pytest
from scipy.stats import kendalltau, rankdata

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
try:
    import proxy_noise
finally:
    sys.path.pop(0)


def write_table(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_noise_reads_each_seed_and_the_proxy_against_itself(tmp_path):
    rng = random.Random(0)
    archs = [f"a{i}" for i in range(30)]
    valid = {a: rng.random() for a in archs}
    test = {a: valid[a] + 0.1 * rng.random() for a in archs}
    noisy = [{a: valid[a] + 0.3 * rng.random() for a in archs} for _ in range(3)]
    other = [{a: rng.random() for a in archs} for _ in range(3)]
    paths = [write_table(tmp_path / f"s{s}.csv", [
        {"arch": a, "valid": valid[a], "test": test[a], "flops": 2 * valid[a] + 1,
         "noisy": noisy[s][a], "other": other[s][a]} for a in reversed(archs)])
        for s in range(3)]
    result = proxy_noise.noise([proxy_noise.read_table(p) for p in paths], ["noisy+other"], 50)
    flops, n, mix = (result["proxies"][k] for k in ("flops", "noisy", "noisy+other"))
    # a deterministic proxy: the same Kendall under every seed, and itself exactly
    assert flops["valid"]["per_seed"] == [pytest.approx(1.0)] * 3
    assert flops["valid"]["sd"] == pytest.approx(0.0) and flops["self"]["min"] == pytest.approx(1.0)
    # a noisy one: each seed's Kendall as scipy gives it, and below 1 against itself
    taus = [kendalltau([noisy[s][a] for a in archs], [test[a] for a in archs]).statistic
            for s in range(3)]
    assert n["test"]["per_seed"] == pytest.approx(taus)
    assert n["test"]["mean"] == pytest.approx(sum(taus) / 3)
    selfs = [kendalltau([noisy[i][a] for a in archs], [noisy[j][a] for a in archs]).statistic
             for i, j in ((0, 1), (0, 2), (1, 2))]
    assert n["self"]["mean"] == pytest.approx(sum(selfs) / 3) and n["self"]["min"] == pytest.approx(min(selfs))
    assert n["self"]["mean"] < 0.95
    # the arch-sample spread: none for a perfect ranking, some for a noisy one, by hand
    assert flops["archs_sd"] == pytest.approx(0.0) and n["archs_sd"] > 0.01
    rng = random.Random(0)
    picks = [[rng.randrange(30) for _ in range(30)] for _ in range(50)]
    s0 = [noisy[0][a] for a in sorted(archs)]           # the tool's order: sorted names
    v = [valid[a] for a in sorted(archs)]
    taus = [kendalltau([s0[i] for i in p], [v[i] for i in p]).statistic for p in picks]
    assert n["archs_sd"] == pytest.approx(statistics.stdev(taus))
    # the mix: the mean of the two proxies' ranks under the same seed
    ranks = [(rankdata([noisy[0][a] for a in archs]) + rankdata([other[0][a] for a in archs])) / 2]
    assert mix["valid"]["per_seed"][0] == pytest.approx(
        kendalltau(ranks[0], [valid[a] for a in archs]).statistic)
    # the command writes the same figures, and the table names every row
    out = tmp_path / "noise.json"
    png = tmp_path / "noise.png"
    assert proxy_noise.main(["--csv", *map(str, paths), "--mix", "noisy+other", "--out", str(out),
                             "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads(out.read_text())
    assert written["proxies"]["noisy"]["self"] == pytest.approx(n["self"])
    assert written["seed_labels"] == ["0", "1", "2"] and written["archs"] == 30


def test_noise_refuses_tables_of_other_archs_and_unknown_mixes(tmp_path):
    a = write_table(tmp_path / "a.csv", [{"arch": "x", "valid": 1, "test": 1, "p": 1},
                                         {"arch": "y", "valid": 2, "test": 2, "p": 3}])
    b = write_table(tmp_path / "b.csv", [{"arch": "x", "valid": 1, "test": 1, "p": 1},
                                         {"arch": "z", "valid": 2, "test": 2, "p": 3}])
    tables = [proxy_noise.read_table(p) for p in (a, b)]
    with pytest.raises(SystemExit, match="same set"):
        proxy_noise.noise(tables, [])
    with pytest.raises(SystemExit, match="not in the tables"):
        proxy_noise.noise([tables[0]], ["p+q"])


def test_track1_noise_reads_proxy_caches_of_several_seeds(tmp_path):
    """``--track1-cache``: over the subnets every file holds with every proxy (an arch's
    lines joined; one missing in a file, or lacking a proxy, left out), each proxy's Kendall
    with itself across seeds and with FLOPs under each seed; AZ-NAS aggregated over the set."""
    from scipy.stats import kendalltau
    rng = random.Random(0)
    keys = [f"arch{i}" for i in range(8)]
    flops = {k: rng.random() for k in keys}
    seeds = []
    for s in range(2):
        vals = {k: {"m": rng.random(), "az_expressivity": rng.random(),
                    "az_progressivity": rng.random(), "az_trainability": rng.random()} for k in keys}
        lines = [{"key": k, "arch": "x", "flops": flops[k], "params": 1} for k in keys]
        lines += [{"key": k, **v} for k, v in vals.items() if not (s == 1 and k == "arch7")]
        path = tmp_path / f"s{s}.jsonl"
        path.write_text("".join(json.dumps(l) + "\n" for l in lines))
        seeds.append((path, vals))
    names = ["flops", "az_nas"]
    out = tmp_path / "t1.json"
    with pytest.raises(SystemExit, match="the same seed"):    # neither file says its seed
        proxy_noise.main(["--track1-cache", str(seeds[0][0]), str(seeds[1][0]),
                          "--proxies", ",".join(names), "--against", "flops"])
    assert proxy_noise.main(["--track1-cache", str(seeds[0][0]), str(seeds[1][0]),
                             "--proxies", ",".join(names), "--against", "flops",
                             "--seeds", "0,1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["archs"], result["seeds"]) == (7, 2)            # arch7 lacks seed 1's lines
    from track1.proxies import az_nas
    held = keys[:7]
    az = [az_nas.aggregate([az_nas.views(v[k] | {"flops": flops[k]}) for k in held])
          for _, v in seeds]
    row = result["proxies"]["az_nas"]
    assert row["self"]["mean"] == pytest.approx(kendalltau(az[0], az[1]).statistic)
    assert row["flops"]["per_seed"] == pytest.approx(
        [kendalltau(a, [flops[k] for k in held]).statistic for a in az])
    assert result["proxies"]["flops"]["self"]["min"] == 1.0
    with pytest.raises(SystemExit, match="not among --proxies"):
        proxy_noise.main(["--track1-cache", str(seeds[0][0]), str(seeds[1][0]),
                          "--proxies", "az_nas", "--against", "flops"])

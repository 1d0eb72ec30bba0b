"""AZ-NAS as its paper aggregates it (ranks over the scored set), on the archs of a partial
proxy-report cache; FLOPs and MeCo on the same archs. Usage: partial_summary.py CACHE MECO_CSV"""
import csv, json, sys
from track1.proxies import az_nas
from track1.nb201.ground_truth import load_ground_truth
from track1.scoring.metrics import rank_metrics
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line); rows.setdefault(r["arch"], {}).update(r)
meco = {r["arch"]: float(r["meco"]) for r in csv.DictReader(open(sys.argv[2]))}
gt = load_ground_truth()
codes = [c for c in gt if c in rows and all(k in rows[c] for k in az_nas.CACHED)]
scores = {"az_nas": az_nas.aggregate([az_nas.views(rows[c]) for c in codes]),
          "flops": [rows[c]["flops"] for c in codes], "meco": [meco[c] for c in codes]}
out = {"archs": len(codes), "order": "the first archs of each shard (shard k/2: every other arch of the table's index order from k), shard 0 further on than shard 1",
       **{t: {n: {k: round(v, 4) for k, v in rank_metrics(s, [getattr(gt[c], t) for c in codes]).items()
                  if k in ("kendall", "spearman")} for n, s in scores.items()} for t in ("valid", "test")}}
print(json.dumps(out, indent=1))

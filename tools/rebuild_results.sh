#!/usr/bin/env bash
# Rebuild docs/RESULTS.md from committed files only: every bench folder listed in
# docs/results/nb201/ORDER (its runs' summary.json and predictions*.csv, its COMMAND.txt),
# the proxy summaries under docs/results/proxies/ and docs/results/NOTES.md.
#   bash tools/rebuild_results.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TRACK1_PYTHON:-.venv/bin/python}"
R=docs/results
args=()
while read -r bench; do
  [[ -z "$bench" || "$bench" == \#* ]] && continue
  args+=(--bench "$R/nb201/$bench" --bench-command "$(cat "$R/nb201/$bench/COMMAND.txt")")
done < "$R/nb201/ORDER"
exec "$PY" tools/make_results.py "${args[@]}" \
  --proxies "$R/proxies/summary_nb201_track1_fixed1000.json" \
            "$R/proxies/proxy_report_zen/summary_nb201_fixed1000.json" \
            "$R/proxies/proxy_report_all/summary_nb201_all.json" \
  --proxy-command "$(cat "$R/proxies/COMMAND.txt")" --notes "$R/NOTES.md"

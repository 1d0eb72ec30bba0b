#!/usr/bin/env bash
# Rebuild docs/RESULTS.md from committed files only: the run folders listed in
# docs/results/ORDER (bench-nb201 runs: their summary.json and predictions*.csv; proxy
# reports: their summary_*.json; each folder's COMMAND.txt) and docs/results/NOTES.md.
#   bash tools/rebuild_results.sh
# RESULTS_OUT=PATH writes there instead (tests/test_results_doc.py compares the two).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${TRACK1_PYTHON:-.venv/bin/python}"
R=docs/results
args=()
proxies=()
proxy_commands=""
while read -r kind folder rest; do
  [[ -z "$kind" || "$kind" == \#* ]] && continue
  [[ -d "$R/$folder" && -f "$R/$folder/COMMAND.txt" && -z "$rest" ]] || {
    echo "docs/results/ORDER: bad line '$kind $folder $rest' (need: bench|proxies FOLDER with a COMMAND.txt)" >&2; exit 2; }
  case "$kind" in
    bench) args+=(--bench "$R/$folder" --bench-command "$(cat "$R/$folder/COMMAND.txt")") ;;
    fusion) args+=(--fusion "$R/$folder") ;;
    proxies)
      summaries=("$R/$folder"/summary_*.json)
      [[ ${#summaries[@]} -eq 1 && -f "${summaries[0]}" ]] || {
        echo "$R/$folder: need exactly one summary_*.json" >&2; exit 2; }
      proxies+=("${summaries[0]}")
      proxy_commands+="${proxy_commands:+$'\n'}$(cat "$R/$folder/COMMAND.txt")" ;;
    *) echo "docs/results/ORDER: unknown kind '$kind' (bench, proxies or fusion)" >&2; exit 2 ;;
  esac
done < "$R/ORDER"
exec "$PY" tools/make_results.py "${args[@]}" --proxies "${proxies[@]}" \
  --proxy-command "$proxy_commands" --notes "$R/NOTES.md" --out "${RESULTS_OUT:-docs/RESULTS.md}"

#!/usr/bin/env bash
# The device queue: what runs first, in this order, whenever a GPU is lent (README,
# "Development"). Each entry is one device command under 9 minutes that leaves at most 8
# files under $OUT; run them one call each, then commit what comes back under
# docs/results/<folder>/ with its COMMAND.txt.
#
#   bash tools/device_queue.sh nb201      the NAS-Bench-201 paper-protocol table (SPOS and
#                                         RD-NAS x 3 seeds): probe, plan, train, score, collect
#   bash tools/device_queue.sh track1     Track 1 scoring rate at 224 px over windows spread
#                                         across the whole prefix-sorted 45k list
#   bash tools/device_queue.sh proxies    ZiCo and SWAP over all 15,625 NB201 archs (MeCo(_opt)
#                                         and AZ-NAS are committed from the CPU; PROXY_LIST=
#                                         others); 6 shards at once on the GPU, each from a
#                                         copy of the committed ZiCo cache (PROXY_CACHE=<a
#                                         cache_*.jsonl>, default below; empty: from scratch)
#   bash tools/device_queue.sh t1proxies  ZiCo and SWAP over the 45k list (T1_PROXIES= others),
#                                         added to the committed list cache of MeCo, AZ-NAS,
#                                         Zen-score and MeCo_opt (T1_CACHE=<jsonl[.gz]>, default
#                                         below; empty: from scratch); proxy-cache, 64 px,
#                                         batch 8, 6 shards at once
#   bash tools/device_queue.sh rehearse   nb201 and track1 on this CPU with toy budgets (what
#                                         to run before spending device time; the proxy
#                                         entries say below how to rehearse them)
#
# Needs: the CIFAR-10 JPEG tar as a real file (not a link) at .devdata/cifar10-jpeg.tar.gz,
# carried with the call (carry: [".devdata"]); a CUDA python3 with torch, torchvision, timm,
# scipy, pyyaml and tqdm (TRACK1_PYTHON, default python3). LIMIT_S bounds entry nb201.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TRACK1_CACHE_DIR="${TRACK1_CACHE_DIR:-/tmp/track1_cache}"
PY="${TRACK1_PYTHON:-python3}"
OUT="${OUT:-runs/device_out}"
CIFAR=.devdata/cifar10-jpeg.tar.gz
mkdir -p "$OUT"
if [[ "${1:-}" != rehearse && ( ! -f "$CIFAR" || -L "$CIFAR" ) ]]; then
  echo "device_queue: $CIFAR must be a real file (cp ../shared/data/cifar10/cifar10-jpeg.tar.gz .devdata/)" >&2
  exit 2
fi
case "${1:-}" in
  nb201)
    timeout 570 "$PY" tools/device_nb201_paper.py --limit-s "${LIMIT_S:-520}" --out "$OUT" \
      --cifar "$CIFAR"
    ;;
  track1)
    timeout 540 "$PY" tools/bench_evaluate.py --windows 8 --window-size 24 --image-size 224 \
      --device cuda --data "$CIFAR" --eval-images 10000 --calib-images 2048 --batch-size 500 \
      --json-out "$OUT/track1_rate.json" 2>&1 | grep -v Warning | tee "$OUT/track1_rate_log.txt"
    ;;
  proxies)
    # each shard appends to its own cache; the merged cache and the table come back. The
    # probe images come from the carried tar, as in the committed CPU reports (without
    # --data a machine lacking ../shared would fall back to the embedded subset)
    # (rehearse on a CPU: PROXY_ARCHS=12 PROXY_DEVICE=cpu bash tools/device_queue.sh proxies)
    P="${PROXY_LIST:-flops,zico,swap}"
    SEL="--all"; [[ -n "${PROXY_ARCHS:-}" ]] && SEL="--archs $PROXY_ARCHS"
    DEV="${PROXY_DEVICE:-cuda}"
    PROXY_CACHE="${PROXY_CACHE-docs/results/proxies-zico-nb201-1000archs-2core-cpu/cache_nb201_b16-nw64-z16-s0.jsonl}"
    for k in 0 1 2 3 4 5; do
      mkdir -p "$OUT/shard$k"
      [[ -n "${PROXY_CACHE:-}" ]] && cp "$PROXY_CACHE" "$OUT/shard$k/$(basename "$PROXY_CACHE")"
      timeout 480 "$PY" tools/proxy_report.py $SEL --proxies $P --device "$DEV" --threads 2 \
        --data "$CIFAR" --shard $k/6 --out "$OUT/shard$k" > "$OUT/shard$k/log.txt" 2>&1 &
    done
    wait
    name=$(basename "$(ls "$OUT"/shard0/cache_*.jsonl | head -1)")
    awk 1 "$OUT"/shard*/"$name" | sort -u > "$OUT/$name"   # awk 1: as in t1proxies below
    rm -rf "$OUT"/shard*
    timeout 50 "$PY" tools/proxy_report.py $SEL --proxies $P --device "$DEV" --data "$CIFAR" --out "$OUT" \
      > "$OUT/proxies_log.txt" 2>&1 || echo "not every arch scored yet: rerun with PROXY_CACHE=$OUT/$name" | tee -a "$OUT/proxies_log.txt"
    ;;
  t1proxies)
    # each shard starts from a copy of the committed cache (it skips what is there) and
    # appends its new lines; the union comes back as one gzip file (the whole list's lines
    # are about 19 MB plain, over what a call brings back; sort -u: the copied lines are
    # byte-identical; awk 1 ends each file's last line, so a line torn by the timeout stays
    # a line of its own, dropped when the cache is read, and never swallows the next file's)
    # (rehearse on a CPU: T1_LIMIT=12 T1_DEVICE=cpu bash tools/device_queue.sh t1proxies)
    # (at another resolution, a cache of its own: T1_RES=224 T1_CACHE= T1_PROXIES=meco_opt,az_nas)
    R="${T1_RES:-64}"
    T1="--proxies ${T1_PROXIES:-zico,swap} --resolution $R --batch 8 --no-progress"
    [[ -n "${T1_LIMIT:-}" ]] && T1="$T1 --limit $T1_LIMIT"
    T1_CACHE="${T1_CACHE-docs/results/proxies-track1-list-45000archs-64px-2core-cpu/track1_proxies_r64_b8.jsonl.gz}"
    if [[ "${T1_CACHE:-}" == *.gz ]]; then gzip -dc "$T1_CACHE" > "$OUT/t1_committed.jsonl"
    elif [[ -n "${T1_CACHE:-}" ]]; then cp "$T1_CACHE" "$OUT/t1_committed.jsonl"; fi
    for k in 0 1 2 3 4 5; do
      if [[ -f "$OUT/t1_committed.jsonl" ]]; then cp "$OUT/t1_committed.jsonl" "$OUT/t1_s$k.jsonl"; fi
      timeout 500 "$PY" -m track1 proxy-cache $T1 --device "${T1_DEVICE:-cuda}" --threads 2 \
        --shard $k/6 --out "$OUT/t1_s$k.jsonl" > "$OUT/t1_log$k.txt" 2>&1 &
    done
    wait
    awk 1 "$OUT"/t1_s*.jsonl | sort -u | gzip -9 > "$OUT/track1_proxies_r${R}_b8.jsonl.gz"
    rm -f "$OUT"/t1_s*.jsonl "$OUT/t1_committed.jsonl"
    tail -n 2 "$OUT"/t1_log*.txt
    ;;
  rehearse)
    "$PY" tools/device_nb201_paper.py --rehearse --out "$OUT/nb201" --bench-dir "$OUT/nb201_bench" \
      && "$PY" tools/bench_evaluate.py --windows 2 --window-size 3 --image-size 32 --device cpu \
        --eval-images 100 --calib-images 64 --batch-size 100 --json-out "$OUT/track1_rate.json"
    ;;
  *)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac

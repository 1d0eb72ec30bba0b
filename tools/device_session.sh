#!/usr/bin/env bash
# GPU measurements on one CUDA machine (run from the repository root).
# Each phase fits in 10 minutes; logs and result archives go to $OUT (default
# runs/device_out). The machine needs a CUDA PyTorch with torchvision, timm, scipy,
# pyyaml and tqdm (TRACK1_PYTHON, default python3), and the CIFAR-10 JPEG tar at
# $CIFAR (default .devdata/cifar10-jpeg.tar.gz, git-ignored: the CIFAR-10 JPEG tar of
# docs/REFERENCE.md §8).
#
#   bash tools/device_session.sh check      CUDA test suite + demo train/evaluate on CUDA
#   bash tools/device_session.sh eval224    evaluation benchmark at 224 px (issue 4)
#   bash tools/device_session.sh probe      NB201 step time, 1 process vs N in parallel
#   [COMPARE_BN=spos_s0] bash tools/device_session.sh nb201 METHODS SEEDS EPOCHS BATCH [ARCHS]
#                                           NB201 bench, one process per (method, seed)
#                                           (the loop that produced docs/RESULTS.md's GPU
#                                           table; `bench-nb201 --jobs N` now does the same)
# The NAS-Bench-201 paper-protocol table is its own one-call script:
#   PYTHONUNBUFFERED=1 python3 tools/device_nb201_paper.py --limit-s 530   (carry .devdata)
set -uo pipefail
PY="${TRACK1_PYTHON:-python3}"
OUT="${OUT:-runs/device_out}"
CIFAR="${CIFAR:-.devdata/cifar10-jpeg.tar.gz}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 TRACK1_CACHE_DIR="${TRACK1_CACHE_DIR:-/tmp/track1_cache}"
# the device's python3 has no track1 installed: the tools find the package through here
export PYTHONPATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
phase="${1:?phase: check | eval224 | probe | nb201}"
shift

stamp() { echo "=== $(date +%T) $*"; }

case "$phase" in
  check)
    stamp "machine"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
    "$PY" -c "import torch, torchvision, timm, scipy; print('torch', torch.__version__, 'tv', torchvision.__version__, 'timm', timm.__version__, torch.cuda.get_device_name())"
    stamp "test suite on the CUDA machine (fvcore is not installed there)"
    timeout 240 "$PY" -m pytest tests -q -x -n 8 -p no:cacheprovider \
      --deselect tests/test_costs.py::test_fvcore_cross_check 2>&1 | tail -15
    stamp "demo train on CUDA (bf16, channels_last), then evaluate 500 subnets"
    TRACK1_PYTHON="$PY" timeout 200 bash run.sh train --config demo --device cuda --no-progress \
      --ckpt-dir /tmp/ckpt 2>&1 | tail -5
    TRACK1_PYTHON="$PY" timeout 200 bash run.sh evaluate --checkpoint /tmp/ckpt/demo/last.pth \
      --limit 500 --out /tmp/sub.json --results-dir /tmp/eval_results --no-progress 2>&1 | tail -6
    stamp "training step time at 224 px, batch 128 (ResNet-48 supernet, bf16, channels_last)"
    timeout 240 "$PY" tools/bench_train.py --image-size 224 --batch 128 --steps 10 --warmup 3 \
      --device cuda 2>&1 | grep -v Warning
    ;;
  eval224)
    stamp "ImageNet-sized synthetic JPEGs (500x375, ~100 KB, as ImageNet val)"
    "$PY" tools/make_synthetic_imagefolder.py /tmp/synth224 --source "$CIFAR" \
      --train 2048 --val 2000 --workers 16 || exit 1
    stamp "bench_evaluate 224 px: first subnets of the list, recalibrate + batch"
    "$PY" tools/bench_evaluate.py --device cuda --data /tmp/synth224 --image-size 224 \
      --subnets "${SUBNETS:-6}" --eval-images 2000 --calib-images 2048 --bn-modes recalibrate batch \
      --ref-workers 16 --ref-batch-size 256 --batch-size 512 --threads 8 --amp --dense-conv \
      --json-out "$OUT/bench_evaluate_224.json" 2>&1 | grep -v Warning
    stamp "bench_evaluate 224 px: a window of the prefix-sorted list (as a full run meets it)"
    "$PY" tools/bench_evaluate.py --device cuda --data /tmp/synth224 --image-size 224 \
      --subnets "${SUBNETS:-6}" --eval-images 2000 --calib-images 2048 --bn-modes recalibrate \
      --window --ref-workers 16 --ref-batch-size 256 --batch-size 512 --threads 8 --amp \
      --dense-conv --json-out "$OUT/bench_evaluate_224_window.json" 2>&1 | grep -v Warning
    ;;
  probe)
    n="${1:-6}"
    common=(--data "$CIFAR" --archs 20 --epochs 1 --steps-per-epoch 200 --no-progress
            --calib-images 256 --eval-images 500)
    for batch in 64 256; do
      stamp "1 process, rdnas_flops, batch $batch"
      "$PY" -m track1 bench-nb201 "${common[@]}" --methods rdnas_flops --batch-size "$batch" \
        --out "/tmp/probe_1_b$batch" > "$OUT/probe_1_b$batch.log" 2>&1
      grep "steps/s" "$OUT/probe_1_b$batch.log" | tail -2
    done
    stamp "$n processes in parallel, rdnas_flops, batch 256"
    for i in $(seq 1 "$n"); do
      "$PY" -m track1 bench-nb201 "${common[@]}" --methods rdnas_flops --batch-size 256 \
        --seeds "$i" --out "/tmp/probe_${n}_b256" > "$OUT/probe_${n}_$i.log" 2>&1 &
    done
    wait
    for i in $(seq 1 "$n"); do grep "steps/s" "$OUT/probe_${n}_$i.log" | tail -1; done
    ;;
  nb201)
    methods="${1:?methods}"; seeds="${2:?seeds}"; epochs="${3:?epochs}"; batch="${4:?batch}"
    archs="${5:-1000}"
    out="${BENCH_OUT:-runs/bench_nb201_gpu}"
    stamp "warm the decoded-image cache once (every process then loads it)"
    "$PY" -c "
from track1.data import resolve_source, decode_to_tensor
decode_to_tensor(resolve_source('$CIFAR', 'train'), 32, crop_ratio=1.0, progress=False)" || exit 1
    stamp "bench: methods=$methods seeds=$seeds epochs=$epochs batch=$batch archs=$archs"
    IFS=, read -ra ms <<< "$methods"; IFS=, read -ra ss <<< "$seeds"
    for m in "${ms[@]}"; do for s in "${ss[@]}"; do
      # each run is capped so that the archive below is always written within the call
      timeout "${RUN_LIMIT_S:-500}" "$PY" -m track1 bench-nb201 --data "$CIFAR" --methods "$m" \
        --seeds "$s" --epochs "$epochs" --batch-size "$batch" --archs "$archs" --no-progress \
        --score-batch "${SCORE_BATCH:-1000}" --out "$out" ${STEPS:+--steps-per-epoch $STEPS} \
        $([[ "${COMPARE_BN:-}" == "${m}_s$s" ]] && echo --compare-bn "${m}_s$s") \
        > "$OUT/nb201_${m}_s$s.log" 2>&1 &
    done; done
    wait
    stamp "results"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null || true
    for f in "$out"/*/summary.json; do
      "$PY" -c "import json,sys; s=json.load(open('$f')); a=s['accuracy']; print(s['run'], 'kendall %.4f spearman %.4f pearson %.4f top10 %.2f train %.0fs' % (a['kendall'], a['spearman'], a['pearson'], a['top10_precision'], s['wall_s']['train']))"
    done
    # checkpoints stay behind (13 MB each with optimiser state): run every follow-up that
    # needs a trained supernet (COMPARE_BN) in this same call
    tar czf "$OUT/bench_nb201_gpu.tar.gz" --exclude='*.pth' "$out"
    ;;
  *)
    echo "unknown phase $phase" >&2; exit 2
    ;;
esac

"""What the machine can do: native bf16 on the CPU, and its measured matrix-product peak.

Benchmarks divide measured throughput by these to say how close a path comes to the
hardware (``tools/bench_cpu_forward.py``, ``tools/bench_evaluate.py --ceiling``).
"""
from __future__ import annotations

import time
from typing import Callable

import torch


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of ``repeats`` timed calls of ``fn`` after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cpu_native_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX); elsewhere bf16
    is emulated and slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_peak_gmacs(dtype: torch.dtype = torch.float32, repeats: int = 3, n: int = 4096) -> float:
    """Multiply-accumulates per second (in 1e9) of an ``n``^3 matrix product on the CPU
    with torch's current thread count: the practical peak a convolution can approach."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return n ** 3 / best_seconds(lambda: a @ b, repeats) / 1e9


def bf16_is_native(device: torch.device) -> bool:
    """Whether bf16 autocast pays off on ``device``: on CUDA (the GPUs this targets all
    run bf16 natively) and on CPUs with AVX512-BF16 or AMX. ``evaluate --amp auto`` uses
    it; on CPU-2 bf16 scores subnets 1.6-2.0x faster than fp32 and moves accuracies by at
    most 0.006 (docs/BENCHMARKS.md), less than changing the calibration chunking does."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_native_bf16())

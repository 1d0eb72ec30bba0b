"""Benchmark: ResNet-48 subnet forward passes on the CPU at low resolution, and how close
they come to the CPU's own peak.

What it measures, all in one run on the same subnets and the same random images:
  1. the CPU's peak: a 4096^3 matrix product in fp32 and (where the CPU has native
     bf16) bf16, in multiply-accumulates per second;
  2. two kernels that scoring at 32 px depends on: max-pool on the stem output in NCHW
     vs channels_last, and a 3x3 conv on 1x1 / 2x2 maps as ``F.conv2d`` vs one dense
     matrix product (``track1.ops.tiny_map_conv``);
  3. the whole forward pass of each subnet with train-mode BN (what recalibration
     runs) and eval-mode BN, in each layout and precision, with and without the
     tiny-map lowering: images/s, the ratio to the plain NCHW fp32 path, and the share
     of peak (real multiply-accumulates, padding taps left out, per second / peak).

The share of peak bounds what any implementation can gain at this resolution: at 100%
of it, a forward pass cannot run faster than ``macs_unpadded / peak``.

    .venv/bin/python tools/bench_cpu_forward.py [--subnets 3] [--batch-size 1024]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import track1  # noqa: E402,F401 (first: it sets OpenMP's wait policy before torch loads)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from track1.resnet48.costs import count_costs  # noqa: E402
from track1.infra.hardware import best_seconds, cpu_native_bf16, cpu_peak_gmacs  # noqa: E402
from track1.ops.dynamic_ops import DynamicConv2d  # noqa: E402
from track1.resnet48.supernet import ResNet48Supernet  # noqa: E402
from track1.ops.tiny_map_conv import conv2d_dense  # noqa: E402
from track1.resnet48.official import load_arch_list  # noqa: E402


def kernel_rows(batch: int, dtypes: list[torch.dtype], repeats: int) -> list[dict]:
    rows = []
    with torch.inference_mode():
        for dtype in dtypes:
            dt = str(dtype).removeprefix("torch.")
            x = torch.randn(batch, 64, 16, 16, dtype=dtype)  # the stem output at 32 px
            xc = x.contiguous(memory_format=torch.channels_last)
            nchw = best_seconds(lambda: F.max_pool2d(x, 3, 2, 1), repeats)
            nhwc = best_seconds(lambda: F.max_pool2d(xc, 3, 2, 1), repeats)
            rows.append({"kernel": "max-pool 3x3/2 on [N,64,16,16]", "dtype": dt,
                         "baseline": "NCHW", "ms_baseline": 1e3 * nchw,
                         "ours": "channels_last", "ms_ours": 1e3 * nhwc, "ratio": nchw / nhwc})
            for c, size, stride in ((512, 1, 1), (256, 2, 1), (256, 2, 2)):
                x = torch.randn(batch, c, size, size, dtype=dtype)
                w = torch.randn(c, c, 3, 3, dtype=dtype)
                conv = best_seconds(lambda: F.conv2d(x, w, None, stride, 1), repeats)
                dense = best_seconds(lambda: conv2d_dense(x, w, stride, 1), repeats)
                rows.append({"kernel": f"3x3/{stride} conv {c}->{c} on {size}x{size} maps",
                             "dtype": dt, "baseline": "F.conv2d",
                             "ms_baseline": 1e3 * conv, "ours": "one dense matrix product",
                             "ms_ours": 1e3 * dense, "ratio": conv / dense})
    return rows


def forward_rows(codes: list[str], batch: int, size: int, dtypes: list[torch.dtype],
                 peaks: dict[str, float], repeats: int) -> list[dict]:
    torch.manual_seed(0)
    net = ResNet48Supernet(num_classes=10)
    convs = [m for m in net.modules() if isinstance(m, DynamicConv2d)]
    x = torch.randn(batch, 3, size, size)
    configs = (("NCHW", False), ("channels_last", False), ("channels_last + tiny-map GEMM", True))
    rows = []
    for code in codes:
        net.set_arch(code)
        real_macs = count_costs(code, image_size=size, num_classes=10)["macs_unpadded"]
        baseline: dict[str, float] = {}
        for bn_mode in ("train", "eval"):
            net.train(bn_mode == "train")
            for dtype in dtypes:
                for layout, dense in configs:
                    fmt = torch.contiguous_format if layout == "NCHW" else torch.channels_last
                    net.to(memory_format=fmt)
                    xi = x.to(dtype).contiguous(memory_format=fmt)
                    for m in convs:
                        m.tiny_map_dense = dense
                    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
                    def forward() -> torch.Tensor:
                        for m in convs:  # each timed pass builds its tiny-map matrices, as
                            m.dense_cache.clear()  # a subnet's first chunk does when scoring
                        return net(xi)

                    with torch.inference_mode(), amp:
                        sec = best_seconds(forward, repeats)
                    baseline.setdefault(bn_mode, sec)  # the first config: NCHW fp32
                    dt = str(dtype).removeprefix("torch.")
                    rows.append({"subnet": code, "bn": bn_mode, "dtype": dt, "config": layout,
                                 "images_per_s": batch / sec, "ratio": baseline[bn_mode] / sec,
                                 "share_of_peak": real_macs * batch / sec / 1e9 / peaks[dt]})
    for m in convs:
        m.tiny_map_dense = True
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--subnets", type=int, default=3, help="the first N subnets of the official list")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="0: torch's default")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = [torch.float32] + ([torch.bfloat16] if cpu_native_bf16() else [])
    codes = list(load_arch_list(validate=False).values())[:args.subnets]
    print(f"bench_cpu_forward: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_native_bf16()}")
    peaks = {str(d).removeprefix("torch."): cpu_peak_gmacs(d, args.repeats) for d in dtypes}
    print("peak (4096^3 matrix product): " + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in peaks.items()))
    kernels = kernel_rows(args.batch_size, dtypes, args.repeats)
    for r in kernels:
        print(f"  {r['kernel']:<36} {r['dtype']:<8} {r['baseline']} {r['ms_baseline']:7.1f} ms | "
              f"{r['ours']} {r['ms_ours']:7.1f} ms | {r['ratio']:.2f}x")
    rows = forward_rows(codes, args.batch_size, args.image_size, dtypes, peaks, args.repeats)
    print(f"whole forward, batch {args.batch_size} at {args.image_size} px "
          "(ratio vs NCHW fp32, same BN mode; share of that dtype's peak):")
    for r in rows:
        print(f"  {r['subnet'][:12]}.. BN {r['bn']:<5} {r['dtype']:<8} {r['config']:<30} "
              f"{r['images_per_s']:7.0f} img/s  {r['ratio']:.2f}x  {100 * r['share_of_peak']:4.0f}% of peak")
    if args.json_out:
        args.json_out.write_text(json.dumps({"peaks_gmacs": peaks, "kernels": kernels,
                                             "forward": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

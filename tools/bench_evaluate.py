"""Benchmark: scoring subnets the reference way vs ours, same subnets, same images.

(a) reference: per subnet, ``set_arch`` on the supernet, then a ``DataLoader`` pass
    that decodes every calibration JPEG again (BN recalibration in train mode,
    momentum None), then one that decodes every evaluation JPEG again (torchvision
    Resize/CenterCrop/ToTensor/Normalize, batch 256, ``num_workers`` workers,
    ``no_grad``), as the reference solution did for each of the 45,000.
(b) ours: ``track1.evaluate.SubnetScorer`` on images decoded once (the one-time
    decode is timed and counted in ours, amortised over the subnets).

Both use the same BN mode, calibration images and evaluation images; the two paths
are interleaved subnet by subnet so that load from other processes hits both alike.
Prints subnets/s, images/s (calibration + evaluation images forwarded), the ratio,
the share of the reference's time spent decoding, and the projected time of the
full 45,000-subnet list with 2,048 calibration and 10,000 evaluation images.

    python tools/bench_evaluate.py [--subnets 5] [--bn-modes recalibrate batch]
        [--checkpoint PATH] [--threads 2] [--device cpu]
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import torch

from track1.ops.geometry import out_size, valid_taps
from track1.resnet48.costs import block_geometry, block_macs
from track1.data import decode_to_tensor, resolve_source
from track1.scoring.engine import SubnetScorer
from track1.scoring.bn import reset_bn_statistics, set_bn_train, PreserveBN
from track1.scoring.prefix import PrefixScorer
from track1.scoring.images import subset_indices
from track1.infra.hardware import cpu_native_bf16, cpu_peak_gmacs
from track1.ops.dynamic_ops import DynamicConv2d
from track1.resnet48.official import load_arch_list

FULL_LIST = 45_000


class ReferenceDataset(torch.utils.data.Dataset):
    """Decode + transform on every access, as an ImageFolder evaluation loader does."""

    def __init__(self, source, indices, size: int) -> None:
        import torchvision.transforms as T
        self.source, self.indices = source, indices
        self.transform = T.Compose([T.Resize(round(size / 0.875) if size > 64 else size),
                                    T.CenterCrop(size), T.ToTensor(),
                                    T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        image, label = self.source.load(self.indices[i])
        return self.transform(image), label


def reference_score(net, code, calib_loader, eval_loader, bn_mode: str, device) -> float:
    net.set_arch(code)
    # the reference ran with cuDNN's default heuristics (no autotuning); ours enables it
    benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False
    try:
        return _reference_pass(net, calib_loader, eval_loader, bn_mode, device)
    finally:
        torch.backends.cudnn.benchmark = benchmark


def _reference_pass(net, calib_loader, eval_loader, bn_mode: str, device) -> float:
    with torch.no_grad():
        if bn_mode == "recalibrate":
            reset_bn_statistics(net)
            net.train()
            for x, _ in calib_loader:
                net(x.to(device))
            net.eval()
        else:
            set_bn_train(net, bn_mode == "batch")
        correct = total = 0
        for x, y in eval_loader:
            pred = net(x.to(device)).argmax(1).cpu()
            correct += int((pred == y).sum())
            total += len(y)
    return correct / total


def dense_conv_tflops(device: torch.device, repeats: int = 20) -> dict[str, float]:
    """The GPU's measured dense-conv ceiling: bf16, channels_last, cuDNN-autotuned 3x3
    convolutions at ResNet-48's stage shapes (batch 256), timed with CUDA events after a
    warm-up; median TFLOP/s per shape (2 FLOPs per multiply-add) and the best of them.
    This is the rate a perfect scorer would forward the subnets' convolutions at."""
    torch.backends.cudnn.benchmark = True
    shapes = {"64ch@56": (64, 56), "128ch@28": (128, 28), "256ch@14": (256, 14), "512ch@7": (512, 7)}
    out: dict[str, float] = {}
    for name, (c, hw) in shapes.items():
        conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).to(device, torch.bfloat16)
        conv = conv.to(memory_format=torch.channels_last)
        xs = [torch.randn(256, c, hw, hw, device=device, dtype=torch.bfloat16)
              .contiguous(memory_format=torch.channels_last) for _ in range(4)]  # rotate inputs
        with torch.inference_mode():
            for x in xs * 3:
                conv(x)
            times = []
            for i in range(repeats):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                conv(xs[i % len(xs)])
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b) / 1e3)
        flops = 2 * 256 * hw * hw * c * c * 9
        out[name] = flops / sorted(times)[len(times) // 2] / 1e12
    out["best"] = max(out.values())
    return out


def decode_only(loader) -> float:
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def prefix_sharing(codes: list[str], image_size: int = 224, unpadded: bool = False
                   ) -> tuple[float, float]:
    """(all block MACs, MACs of distinct prefixes) at ``image_size`` px over ``codes``.

    A block's output (and, with recalibration on fixed images, its BN statistics)
    depends only on the stem and the blocks before it, so subnets sharing that prefix
    repeat the same computation; the gap is what prefix-ordered evaluation could save.
    """
    from track1.resnet48.arch import decode
    total = unique = 0.0
    seen: set = set()
    for code in codes:
        prefix: tuple = (decode(code).stem_channels,)
        for s, j, cin, mid, out, stride, hw in block_geometry(code, image_size):
            macs = block_macs(cin, mid, out, stride, hw, unpadded)
            prefix = prefix + ((s, j, mid, out),)
            total += macs
            if prefix not in seen:
                seen.add(prefix)
                unique += macs
    return total, unique


def min_macs_per_image(codes: list[str], image_size: int, shared: bool,
                       num_classes: int = 10) -> float:
    """The fewest multiply-accumulates per image that scoring ``codes`` needs (padding taps
    left out): every subnet's ``macs_unpadded`` from ``track1.resnet48.costs``, less, when
    ``shared``, the block prefixes and stems another subnet already computed."""
    from track1.resnet48.costs import count_costs_many
    from track1.resnet48.arch import decode
    macs = float(count_costs_many(codes, image_size=image_size,
                                  num_classes=num_classes)["macs_unpadded"].sum())
    if not shared:
        return macs
    total, unique = prefix_sharing(codes, image_size, unpadded=True)
    stems = [decode(c).stem_channels for c in codes]
    stem_macs = 3 * valid_taps(image_size, 7, 2, 3) ** 2
    return macs - (total - unique) - stem_macs * (sum(stems) - sum(set(stems)))


def conv_shapes(codes: list[str]) -> set[tuple]:
    """Distinct (c_in, c_out, kernel, stride, input size) convolutions of ResNet-48's
    blocks over ``codes`` at 224 px: what cuDNN autotunes once per batch size."""
    shapes: set[tuple] = set()
    for code in codes:
        for _, _, cin, mid, out, stride, hw in block_geometry(code):
            shapes.add((cin, mid, 3, stride, hw))
            shapes.add((mid, out, 3, 1, out_size(hw, 3, stride, 1)))
            if stride != 1 or cin != out:
                shapes.add((cin, out, 1, stride, hw))
    return shapes


def list_analysis(shards: int) -> int:
    """How much block compute the official list repeats (whole, and within K shards of
    either split), and how many distinct conv shapes it holds."""
    from track1.scoring.prefix import shard_in_prefix_order
    from track1.resnet48.arch import decode
    from track1.resnet48.supernet import segment_keys
    entries = list(load_arch_list(validate=False).items())
    codes = [c for _, c in entries]
    total, unique = prefix_sharing(codes)
    print(f"official list: block MACs {total:.4g}, of distinct prefixes {unique:.4g}: "
          f"{100 * (1 - unique / total):.1f}% repeated, up to {total / unique:.2f}x")
    decoded = [(k, decode(c)) for k, c in entries]
    for name, split in (("contiguous in prefix order", lambda r: [a.code for _, a in
                                                                  shard_in_prefix_order(decoded, r, shards, segment_keys)]),
                        ("strided (r::K)", lambda r: codes[r::shards])):
        t = u = 0.0
        for r in range(shards):
            rt, ru = prefix_sharing(split(r))
            t, u = t + rt, u + ru
        print(f"  within {shards} shards, {name}: {100 * (1 - u / t):.1f}% repeated")
    print(f"distinct block conv shapes in the list (per batch size): {len(conv_shapes(codes))}")
    return 0


def bench_prefix_window(args) -> int:
    """Plain ``SubnetScorer`` vs ``PrefixScorer`` on a window of the prefix-sorted list."""
    import random as _random

    from track1.resnet48.arch import decode
    from track1.resnet48.supernet import ResNet48Supernet, segment_keys
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net, size = ResNet48Supernet(10).eval(), args.image_size
    archs = sorted((decode(c) for c in load_arch_list(validate=False).values()), key=segment_keys)
    start = _random.Random(0).randrange(len(archs) - args.prefix_window)
    window = archs[start:start + args.prefix_window]
    total, unique = prefix_sharing([a.code for a in window])
    val, train = resolve_source(args.data, "val"), resolve_source(args.data, "train")
    ev, labels = decode_to_tensor(val, size, indices=subset_indices(len(val), args.eval_images, 0),
                                  progress=False)
    cal, _ = decode_to_tensor(train, size, indices=subset_indices(len(train), args.calib_images, 1),
                              progress=False)
    kw = dict(bn_mode="recalibrate", batch_size=args.batch_size, device="cpu")
    with SubnetScorer(net, ev, labels, cal, **kw) as scorer:
        t = time.perf_counter()
        plain = {a.code: scorer.score(a) for a in window}
        plain_t = time.perf_counter() - t
    with SubnetScorer(net, ev, labels, cal, **kw) as scorer:
        t = time.perf_counter()
        shared = {k: acc for k, _, acc in PrefixScorer(scorer).score_many([(a.code, a) for a in window])}
        shared_t = time.perf_counter() - t
    print(f"prefix window: subnets {start + 1}..{start + len(window)} of the prefix-sorted list, "
          f"{len(ev)} eval + {len(cal)} calib images at {size}px, BN recalibrate, "
          f"{torch.get_num_threads()} threads")
    print(f"  block MACs repeated within the window: {100 * (1 - unique / total):.1f}% "
          f"(whole list: 44.5%)")
    print(f"  plain {len(window) / plain_t:.3f} subnets/s | prefix-shared {len(window) / shared_t:.3f} "
          f"subnets/s | ratio {plain_t / shared_t:.2f}x | identical accuracies: {plain == shared}")
    return 0


def bench_list_windows(args) -> int:
    """Ours alone (prefix sharing, the evaluate default) on ``--windows`` windows of
    ``--window-size`` subnets spread evenly over the whole prefix-sorted official list,
    each timed at steady state (a first, untimed pass autotunes cuDNN for its shapes, as
    a full run does once per shape); the full list's time is projected from the mean
    seconds per subnet over all windows, not from one window's subnets."""
    from track1.resnet48.arch import decode
    from track1.resnet48.supernet import segment_keys
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from track1.registry import load_supernet
        net, _ = load_supernet(args.checkpoint, device)
    else:
        from track1.resnet48.supernet import ResNet48Supernet
        torch.manual_seed(0)
        net = ResNet48Supernet(10).to(device).eval()
    size = args.image_size
    ordered = sorted(load_arch_list(validate=False).values(), key=lambda c: segment_keys(decode(c)))
    w, k = args.window_size, args.windows
    starts = [round(i * (len(ordered) - w) / max(k - 1, 1)) for i in range(k)]
    windows = [ordered[a:a + w] for a in starts]
    val, train = resolve_source(args.data, "val"), resolve_source(args.data, "train")
    t = time.perf_counter()
    ev, labels = decode_to_tensor(val, size, indices=subset_indices(len(val), args.eval_images, 0),
                                  progress=False)
    cal, _ = decode_to_tensor(train, size, indices=subset_indices(len(train), args.calib_images, 1),
                              progress=False)
    decode_s = time.perf_counter() - t
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"bench_evaluate --windows: {k} windows of {w} subnets spread over the prefix-sorted "
          f"list of {len(ordered)}, {len(ev)} eval + {len(cal)} calib images at {size}px, BN "
          f"recalibrate, prefix sharing; {machine}; torch {torch.__version__}; decode "
          f"{decode_s:.1f} s", flush=True)
    rows = []
    with SubnetScorer(net, ev, labels, cal, bn_mode="recalibrate", batch_size=args.batch_size,
                      device=device) as scorer:
        for i, codes in enumerate(windows):
            times = []
            for _ in range(2 if device.type == "cuda" else 1):   # autotune, then timed
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                list(PrefixScorer(scorer).score_many([(c, c) for c in codes]))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            macs = min_macs_per_image(codes, size, shared=True) / len(codes)
            rows.append({"start": starts[i], "subnets": len(codes), "seconds": times[-1],
                         "warmup_s": times[0] if len(times) > 1 else None,
                         "subnets_per_s": len(codes) / times[-1], "macs_per_image": macs})
            print(f"  window {i + 1}/{k} (subnets {starts[i] + 1}..{starts[i] + w}): "
                  f"{rows[-1]['subnets_per_s']:.2f} subnets/s, {macs / 1e9:.2f} GMAC per image "
                  f"per subnet executed", flush=True)
    per_subnet = sum(r["seconds"] for r in rows) / sum(r["subnets"] for r in rows)
    hours = FULL_LIST * per_subnet / 3600
    macs = sum(r["macs_per_image"] * r["subnets"] for r in rows) / sum(r["subnets"] for r in rows)
    print(f"  mean over the windows: {1 / per_subnet:.2f} subnets/s, {macs / 1e9:.2f} GMAC per "
          f"image per subnet; the full list of {FULL_LIST:,} at this rate: {hours:.2f} h "
          f"on this device ({len(ev)} eval + {len(cal)} calib images)", flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({
            "machine": machine, "image_size": size, "eval_images": len(ev),
            "calib_images": len(cal), "windows": rows, "subnets_per_s": 1 / per_subnet,
            "full_list_hours": hours, "macs_per_image": macs, "decode_s": decode_s}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--subnets", type=int, default=5)
    p.add_argument("--bn-modes", nargs="+", default=["recalibrate", "batch"])
    p.add_argument("--checkpoint", default=None, help="default: a freshly initialised supernet")
    p.add_argument("--data", default=None, help="default: the embedded CIFAR-10 demo set")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--calib-images", type=int, default=2048)
    p.add_argument("--ref-batch-size", type=int, default=256)
    p.add_argument("--ref-workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--amp", action="store_true",
                   help="also time ours with bf16 autocast (CPU: needs AVX512-BF16/AMX to pay off)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json-out", default=None)
    p.add_argument("--dense-conv", action="store_true",
                   help="CUDA: also measure the GPU's dense-conv ceiling and report images/s "
                        "as a fraction of it for the timed subnets' FLOPs")
    p.add_argument("--ceiling", action="store_true",
                   help="CPU: also measure the CPU's matrix-product peak and report the most any "
                        "exact scoring with direct convolutions could gain over the reference: the "
                        "fewest multiply-accumulates these subnets need, at that peak")
    p.add_argument("--prefix-analysis", action="store_true",
                   help="only report how much block compute the official list repeats")
    p.add_argument("--shards", type=int, default=8,
                   help="with --prefix-analysis: also compare K contiguous prefix-order shards "
                        "(evaluate under torchrun) with K strided ones")
    p.add_argument("--prefix-window", type=int, default=0,
                   help="instead: time plain vs prefix-shared scoring (ours both) on W consecutive "
                        "subnets of the full list in prefix order, as a full run meets them")
    p.add_argument("--window", action="store_true",
                   help="take the subnets as a window of the prefix-sorted full list (as a full "
                        "run meets them) and score ours with prefix sharing, the evaluate default")
    p.add_argument("--windows", type=int, default=0,
                   help="instead: ours alone on K windows spread over the whole prefix-sorted "
                        "list, projecting the full list from their mean rate")
    p.add_argument("--window-size", type=int, default=24, help="subnets per --windows window")
    args = p.parse_args(argv)
    if args.windows:
        return bench_list_windows(args)
    if args.prefix_window:
        return bench_prefix_window(args)
    if args.prefix_analysis:
        return list_analysis(args.shards)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.checkpoint:
        from track1.registry import load_supernet, saved_image_size
        net, config = load_supernet(args.checkpoint, device)
        size = int(saved_image_size(config))
    else:
        from track1.resnet48.supernet import ResNet48Supernet
        torch.manual_seed(0)
        net, size = ResNet48Supernet(10).to(device).eval(), args.image_size
    val, train = resolve_source(args.data, "val"), resolve_source(args.data, "train")
    eval_idx = subset_indices(len(val), args.eval_images, 0)
    calib_idx = subset_indices(len(train), args.calib_images, 1)
    if args.window:
        import random as _random

        from track1.resnet48.supernet import segment_keys
        from track1.resnet48.arch import decode
        ordered = sorted(load_arch_list(validate=False).values(), key=lambda c: segment_keys(decode(c)))
        first = _random.Random(0).randrange(len(ordered) - args.subnets)
        codes = ordered[first:first + args.subnets]
    else:
        codes = list(load_arch_list(validate=False).values())[:args.subnets]
    loader = lambda src, idx: torch.utils.data.DataLoader(  # noqa: E731
        ReferenceDataset(src, idx, size), batch_size=args.ref_batch_size,
        num_workers=args.ref_workers, shuffle=False)
    calib_loader, eval_loader = loader(train, calib_idx), loader(val, eval_idx)
    # the reference runs its own copy of the supernet as the original code would: NCHW
    # weights and plain F.conv2d everywhere (the scorers below switch the shared net to
    # channels_last, which would otherwise speed up the reference's convolutions too)
    ref_net = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    for m in ref_net.modules():
        if isinstance(m, DynamicConv2d):
            m.tiny_map_dense = False

    t = time.perf_counter()
    ev_u8, ev_labels = decode_to_tensor(val, size, indices=eval_idx, use_cache=False, progress=False)
    cal_u8, _ = decode_to_tensor(train, size, indices=calib_idx, use_cache=False, progress=False)
    decode_once = time.perf_counter() - t
    ref_decode = decode_only(calib_loader) + decode_only(eval_loader)

    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"
    print(f"bench_evaluate: {len(codes)} subnets ({'a window of the prefix-sorted list, ours with prefix sharing' if args.window else 'the first of the list'}), {len(eval_idx)} eval + {len(calib_idx)} calib "
          f"images at {size}px; {machine}; torch {torch.__version__}")
    if args.window:
        total, unique = prefix_sharing(codes)  # at 224 px, as the whole-list figure
        print(f"  block MACs repeated within the window: {100 * (1 - unique / total):.1f}% "
              "(whole list: 44.5%, what a full run meets on average)")
    print(f"  one-time decode (ours): {decode_once:.2f} s; reference decode-only pass per subnet: "
          f"{ref_decode:.2f} s")
    ceiling = None
    if args.dense_conv and device.type == "cuda":
        ceiling = dense_conv_tflops(device)
        print("  dense-conv ceiling (bf16, channels_last, batch 256, 3x3): " + ", ".join(
            f"{k} {v:.0f}" for k, v in ceiling.items()) + " TFLOP/s")
    cpu_peak = None
    if args.ceiling and device.type == "cpu":
        peak_dtype = torch.bfloat16 if cpu_native_bf16() else torch.float32
        cpu_peak = {"dtype": str(peak_dtype).removeprefix("torch."), "gmacs": cpu_peak_gmacs(peak_dtype, repeats=10)}
        print(f"  CPU peak ({cpu_peak['dtype']} 4096^3 matrix product): {cpu_peak['gmacs']:.0f} GMAC/s")
    min_macs = min_macs_per_image(codes, size, shared=args.window,
                                  num_classes=getattr(net, "num_classes", 10))
    from track1.resnet48.costs import count_costs_many
    # forward FLOPs per image (2 per multiply-add of conv + fc) of the timed subnets at `size`
    flops_per_image = 2.0 * float(count_costs_many(codes, image_size=size)["macs"].mean())
    summary = {"subnets": len(codes), "image_size": size, "dense_conv_tflops": ceiling,
               "cpu_peak": cpu_peak, "min_macs_per_image_all_subnets": min_macs,
               "flops_per_image": flops_per_image, "eval_images": len(eval_idx),
               "calib_images": len(calib_idx), "machine": machine, "decode_once_s": decode_once,
               "reference_decode_per_subnet_s": ref_decode, "modes": {}}
    for mode in args.bn_modes:
        n_img = len(eval_idx) + (len(calib_idx) if mode == "recalibrate" else 0)
        ref_t = ours_t = 0.0
        ref_acc, our_acc = [], []
        amp_t, amp_acc = 0.0, []
        # "ours" runs fp32 like the reference (amp=False also on CUDA, where the product
        # default is bf16); --amp times the bf16 path separately
        scorer_kw = dict(bn_mode=mode, batch_size=args.batch_size, device=device)
        # both nets' stored BN statistics come back after each mode (the reference
        # recalibrates its copy in place)
        with PreserveBN(net), PreserveBN(ref_net), \
                SubnetScorer(net, ev_u8, ev_labels, cal_u8, amp=False, **scorer_kw) as scorer, \
                SubnetScorer(net, ev_u8, ev_labels, cal_u8, amp=True, **scorer_kw) as amp_scorer:
            def scores_in_order(sc: SubnetScorer):
                """Accuracies of ``codes`` in order: with --window (prefix-ordered codes) the
                shared-prefix path, which yields them in that same order; else one by one."""
                if args.window:
                    return (acc for _, _, acc in PrefixScorer(sc).score_many([(c, c) for c in codes]))
                return (sc.score(c) for c in codes)

            ours_it, amp_it = scores_in_order(scorer), scores_in_order(amp_scorer)
            ours_next, amp_next = (lambda _c: next(ours_it)), (lambda _c: next(amp_it))
            warm = {}
            if device.type == "cuda":
                # cuDNN autotunes every new conv shape once; a full run meets each shape
                # again thousands of times, so time ours at steady state and report the
                # one-time warm-up separately (the reference runs untuned, see above)
                for name, sc in (("ours", scorer), ("ours_bf16", amp_scorer if args.amp else None)):
                    if sc is None:
                        continue
                    t = time.perf_counter()
                    list(scores_in_order(sc))
                    warm[name] = time.perf_counter() - t
                print(f"  [{mode}] untimed warm-up pass (cuDNN autotuning of these subnets' shapes): "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in warm.items()))
            for code in codes:  # interleaved: the same load conditions for both
                t = time.perf_counter()
                ref_acc.append(reference_score(ref_net, code, calib_loader, eval_loader, mode, device))
                ref_t += time.perf_counter() - t
                t = time.perf_counter()
                our_acc.append(ours_next(code))
                ours_t += time.perf_counter() - t
                if args.amp:
                    t = time.perf_counter()
                    amp_acc.append(amp_next(code))
                    amp_t += time.perf_counter() - t
        ours_total = ours_t + decode_once
        row = {"warmup_pass_s": warm,
               "reference_s_per_subnet": ref_t / len(codes),
               "ours_s_per_subnet": ours_t / len(codes),
               "reference_subnets_per_s": len(codes) / ref_t,
               "ours_subnets_per_s": len(codes) / ours_t,
               "ours_subnets_per_s_incl_decode": len(codes) / ours_total,
               "reference_images_per_s": n_img * len(codes) / ref_t,
               "ours_images_per_s": n_img * len(codes) / ours_t,
               "ratio": ref_t / ours_t, "ratio_incl_decode": ref_t / ours_total,
               "reference_decode_share": min(1.0, ref_decode / (ref_t / len(codes))),
               "max_abs_acc_diff": max(abs(a - b) for a, b in zip(ref_acc, our_acc)),
               "full_list_projection_h": FULL_LIST * (10_000 + (2_048 if mode == "recalibrate" else 0))
               / (n_img * len(codes) / ours_t) / 3600}
        if args.amp:
            row.update({"full_list_projection_bf16_h": row["full_list_projection_h"] * amp_t / ours_t,
                        "ours_bf16_subnets_per_s": len(codes) / amp_t,
                        "ours_bf16_images_per_s": n_img * len(codes) / amp_t,
                        "ratio_bf16": ref_t / amp_t,
                        "bf16_max_abs_acc_diff": max(abs(a - b) for a, b in zip(amp_acc, our_acc))})
        if ceiling is not None:
            for key in ("ours", "ours_bf16"):
                if f"{key}_images_per_s" in row:
                    row[f"{key}_fraction_of_dense_conv"] = (
                        row[f"{key}_images_per_s"] * flops_per_image / (ceiling["best"] * 1e12))
        if cpu_peak is not None:
            fewest_s = n_img * min_macs / (cpu_peak["gmacs"] * 1e9)  # all subnets, at peak
            row.update({"fewest_s_at_peak": fewest_s, "ratio_bound_at_peak": ref_t / fewest_s,
                        "ours_share_of_bound": fewest_s / ours_t})
        summary["modes"][mode] = row
        print(f"  [{mode}] reference {row['reference_subnets_per_s']:.3f} subnets/s "
              f"({row['reference_images_per_s']:.0f} img/s) | ours {row['ours_subnets_per_s']:.3f} "
              f"subnets/s ({row['ours_images_per_s']:.0f} img/s) | ratio {row['ratio']:.2f}x "
              f"({row['ratio_incl_decode']:.2f}x with the one-time decode) | reference time in "
              f"decoding {100 * row['reference_decode_share']:.0f}% | max |acc diff| "
              f"{row['max_abs_acc_diff']:.4f} | full 45k list (10k eval"
              f"{' + 2,048 calib' if mode == 'recalibrate' else ''}) at this rate: "
              f"{row['full_list_projection_h']:.1f} h")
        if args.amp:
            print(f"  [{mode}] ours + bf16 autocast: {row['ours_bf16_subnets_per_s']:.3f} subnets/s "
                  f"({row['ours_bf16_images_per_s']:.0f} img/s), ratio {row['ratio_bf16']:.2f}x, "
                  f"full 45k list at this rate {row['full_list_projection_bf16_h']:.1f} h, "
                  f"max |acc diff| vs ours fp32 {row['bf16_max_abs_acc_diff']:.4f}")
        if ceiling is not None:
            print(f"  [{mode}] share of the dense-conv ceiling ({ceiling['best']:.0f} TFLOP/s) "
                  f"at {flops_per_image / 1e9:.2f} GFLOP per image: ours "
                  f"{100 * row['ours_fraction_of_dense_conv']:.1f}%"
                  + (f", ours bf16 {100 * row['ours_bf16_fraction_of_dense_conv']:.1f}%"
                     if args.amp else ""))
        if cpu_peak is not None:
            print(f"  [{mode}] ceiling: these subnets need at least {min_macs / len(codes) / 1e6:.1f} "
                  f"M multiply-accumulates per image each ({'distinct prefixes once, ' if args.window else ''}"
                  f"padding taps left out); at the {cpu_peak['dtype']} peak that is "
                  f"{row['fewest_s_at_peak'] / len(codes):.3f} s per subnet, so exact scoring with "
                  f"direct convolutions can be at most {row['ratio_bound_at_peak']:.1f}x the reference "
                  f"here even with every non-conv op free; ours (fp32) runs at "
                  f"{100 * row['ours_share_of_bound']:.0f}% of that bound"
                  + (f", ours bf16 at {100 * row['fewest_s_at_peak'] / amp_t:.0f}%" if args.amp else ""))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

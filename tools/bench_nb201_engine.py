"""NAS-Bench-201 engines, same run: the plain single-path step vs the static-graph step
(steps/s), and the one-arch scorer vs the many-archs-per-pass scorer (archs/s).

    .venv/bin/python tools/bench_nb201_engine.py                       # CPU, reduced
    .venv/bin/python tools/bench_nb201_engine.py --device cuda --batch 512 --steps 60 \
        --archs 100 --eval-images 5000 --calib-images 512 --json-out out.json

Both training paths get the same supernet weights, the same random batches and the same
archs (the sampler is seeded identically); each is warmed up (cuDNN autotuning, CUDA-graph
capture) before it is timed. Both scorers score the same archs on the same images with
re-calibrated BN and their results are compared (max |accuracy difference|). The paper
protocol's model is used (4 ops, BN without affine, dropout 0.1, C=16, N=5) unless
reduced with ``--C``/``--N``.
"""
from __future__ import annotations

import argparse
import copy
import json

import track1  # noqa: E402,F401 (first: it sets OpenMP's wait policy before torch loads)
import random  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from track1.scoring.engine import SubnetScorer  # noqa: E402
from track1.nas.sampler import MarginSampler  # noqa: E402
from track1.nas.step import LossConfig, terms_to_floats, train_step  # noqa: E402
from track1.nas.teacher import Teacher  # noqa: E402
from track1.nb201.fast import FastNB201Step  # noqa: E402
from track1.nb201.fast_scorer import FastNB201Scorer  # noqa: E402
from track1.nb201.space import PAPER_OPS  # noqa: E402
from track1.nb201.supernet import NB201Supernet  # noqa: E402

RDNAS = LossConfig(largest=False, smallest=False, num_random=2, distill=False,
                   ranking="margin", ranking_mode="reuse")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _sgd(net: torch.nn.Module) -> torch.optim.SGD:
    decay = [p for p in net.parameters() if p.ndim > 1]
    rest = [p for p in net.parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                            {"params": rest, "weight_decay": 0.0}], lr=0.025, momentum=0.9)


def time_training(args, device: torch.device, base: torch.nn.Module) -> dict:
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(args.batch, 3, 32, 32, generator=g).to(device),
                torch.randint(0, 10, (args.batch,), generator=g).to(device)) for _ in range(4)]
    cuda = device.type == "cuda"
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False))
                if cuda and args.amp else None)
    out = {}
    for engine in args.engines.split(","):
        net = copy.deepcopy(base).to(device)
        if args.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.train()
        opt = _sgd(net)
        sampler = MarginSampler(net.space.with_distance("group"), 6.7, seed=1)
        teacher = Teacher(net.space, "flops")
        fast = (FastNB201Step(net, opt, RDNAS, sampler, teacher, autocast=autocast,
                              cuda_graph=cuda and not args.no_graph) if engine == "fast" else None)

        def step(i: int) -> dict:
            x, y = batches[i % len(batches)]
            if fast is not None:
                return fast.step(x, y, 1.0)
            opt.zero_grad(set_to_none=True)
            terms = train_step(net, net, x, y, RDNAS, sampler, teacher, 1.0, autocast=autocast)
            opt.step()
            return terms
        t0 = time.perf_counter()
        for i in range(args.warmup):
            step(i)
        _sync(device)
        warm = time.perf_counter() - t0
        if args.start_at:  # concurrent copies: every one times the same wall-clock window
            time.sleep(max(0.0, args.start_at - time.time()))
        t0 = time.perf_counter()
        steps = 0
        while (steps < args.steps if not args.seconds else
               time.perf_counter() - t0 < args.seconds):
            terms = step(steps)
            steps += 1
            if args.seconds and steps % 10 == 0:
                _sync(device)
        terms_to_floats(terms)
        _sync(device)
        dt = time.perf_counter() - t0
        out[engine] = {"steps_per_s": steps / dt, "img_per_s": steps * args.batch / dt,
                       "warmup_s": warm, "steps": steps, "late_start_s": max(
                           0.0, time.time() - dt - args.start_at) if args.start_at else 0.0}
        print(f"train {engine:5s}: {steps / dt:8.2f} steps/s  "
              f"({steps * args.batch / dt:,.0f} img/s per path-pair; warm-up {warm:.1f} s)",
              flush=True)
    if "fast" in out and "plain" in out:
        out["speedup"] = out["fast"]["steps_per_s"] / out["plain"]["steps_per_s"]
        print(f"train fast / plain: {out['speedup']:.2f}x", flush=True)
    return out


def time_scoring(args, device: torch.device, base: torch.nn.Module) -> dict:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (args.eval_images, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.eval_images,), generator=g)
    calib = torch.randint(0, 256, (args.calib_images, 3, 32, 32), generator=g, dtype=torch.uint8)
    net = copy.deepcopy(base).to(device)
    space = net.space
    archs = [space.sample(random.Random(i)) for i in range(args.archs)]
    out, results = {}, {}
    for scorer_name in ("plain", "fast"):
        kw = dict(bn_mode="recalibrate", batch_size=args.score_batch,
                  device=device)
        if scorer_name == "plain":
            with SubnetScorer(net, images, labels, calib, **kw) as s:
                s.evaluate(archs[0])  # warm-up
                _sync(device)
                t0 = time.perf_counter()
                res = [s.evaluate(a) for a in archs]
                _sync(device)
                dt = time.perf_counter() - t0
        else:
            s = FastNB201Scorer(net, images, labels, calib, archs_per_pass=args.archs_per_pass,
                                **kw)
            s.evaluate_many(archs[:args.archs_per_pass])  # warm-up
            _sync(device)
            t0 = time.perf_counter()
            res = [(r.acc, r.loss) for r in s.evaluate_many(archs)]
            _sync(device)
            dt = time.perf_counter() - t0
        results[scorer_name] = res
        out[scorer_name] = {"archs_per_s": len(archs) / dt, "seconds": dt}
        print(f"score {scorer_name:5s}: {len(archs) / dt:8.2f} archs/s "
              f"({len(archs)} archs x {args.eval_images} + {args.calib_images} calib images)",
              flush=True)
    out["speedup"] = out["fast"]["archs_per_s"] / out["plain"]["archs_per_s"]
    out["max_acc_diff"] = max(abs(a[0] - b[0]) for a, b in zip(results["plain"], results["fast"]))
    out["max_loss_rel_diff"] = max(abs(a[1] - b[1]) / max(abs(a[1]), 1e-12)
                                   for a, b in zip(results["plain"], results["fast"]))
    print(f"score fast / plain: {out['speedup']:.2f}x; max |acc diff| {out['max_acc_diff']:.4f}, "
          f"max rel loss diff {out['max_loss_rel_diff']:.2e}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--N", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--archs", type=int, default=32)
    ap.add_argument("--archs-per-pass", type=int, default=16)
    ap.add_argument("--eval-images", type=int, default=500)
    ap.add_argument("--calib-images", type=int, default=256)
    ap.add_argument("--score-batch", type=int, default=256)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA (both paths)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--no-graph", action="store_true", help="fast step without CUDA graph")
    ap.add_argument("--skip", default="", help="train or score: skip that part")
    ap.add_argument("--engines", default="plain,fast", help="training steps timed")
    ap.add_argument("--seconds", type=float, default=None,
                    help="time each step for this long instead of --steps steps")
    ap.add_argument("--start-at", type=float, default=None,
                    help="wall-clock time (time.time()) at which timing starts, after the "
                         "warm-up: concurrent copies then time the same window")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    base = NB201Supernet(C=args.C, N=args.N, ops=PAPER_OPS, bn_affine=False, dropout=0.1)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU, {torch.get_num_threads()} threads")
    print(f"NB201 engines on {machine}: C={args.C} N={args.N}, batch {args.batch}", flush=True)
    result = {"machine": machine, "args": vars(args)}
    if "train" not in args.skip:
        result["train"] = time_training(args, device, base)
    if "score" not in args.skip:
        result["score"] = time_scoring(args, device, base)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

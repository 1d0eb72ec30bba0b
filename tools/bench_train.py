"""Training throughput: plain sandwich vs sandwich + ranking distillation, same run.

    .venv/bin/python tools/bench_train.py                 # demo scale: 32x32, batch 64, CPU
    .venv/bin/python tools/bench_train.py --image-size 224 --batch 64 --device cuda
    .venv/bin/python tools/bench_train.py --modes sandwich --layouts nchw,channels_last

Modes (each its own supernet + SGD, the same batches and seeds), timed round-robin one
step at a time so that load drift on a shared machine hits every mode alike:

- ``spos``: one random subnet, CE (uniform sampling);
- ``sandwich``: largest CE + smallest + 2 random with in-place distillation (baseline);
- ``rd_extra``: sandwich + 2 margin pairs (Hamming >= 33) with the FLOPs hinge loss,
  the reference: 4 extra forwards;
- ``rd_reuse``: sandwich whose 2 random subnets form the margin pair: no extra forward;
- ``dk_extra``: sandwich + a DiffKendall group of 4 (extra forwards).

With ``--layouts nchw,channels_last`` every mode also runs in each memory layout (its
own supernet again), timed in the same round-robin. With ``--teacher-kd R`` every mode
also runs as ``MODE+kd``: the same loss plus distillation from a frozen external teacher
at weight R (``loss.teacher_kd``; its forward once per step, in the timed step); the
teacher is ``--kd-teacher FILE`` (a track1 checkpoint or the organisers' .pdparams, as
the trainer's ``kd_teacher``), else the largest subnet of a freshly initialised supernet
of the bench's space (the cost is the same whatever its weights). ``--space nb201`` benches the
NAS-Bench-201 supernet instead of ResNet-48.

Prints a Markdown table (img/s, steps/s, forwards/step, ratio to the first sandwich run).
"""
from __future__ import annotations

import argparse
import dataclasses

import track1  # noqa: E402,F401 (first: it sets OpenMP's wait policy before torch loads)
import statistics
import sys
import time

import torch  # noqa: E402

from track1.data import TrainBatches, resolve_source  # noqa: E402
from track1.registry import build_supernet  # noqa: E402
from track1.nas.sampler import MarginSampler  # noqa: E402
from track1.nas.step import LossConfig, train_step  # noqa: E402
from track1.nas.teacher import Teacher  # noqa: E402
from track1.train.kd_teacher import freeze_teacher, load_kd_teacher  # noqa: E402

MODES = {
    "spos": LossConfig(largest=False, smallest=False, num_random=1, distill=False),
    "sandwich": LossConfig(),
    "rd_extra": LossConfig(ranking="hinge", ranking_mode="extra", num_pairs=2),
    "rd_reuse": LossConfig(ranking="hinge", ranking_mode="reuse"),
    "dk_extra": LossConfig(ranking="diffkendall", ranking_mode="extra", group_size=4),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per mode")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int)
    p.add_argument("--data", help="dataset (default: embedded CIFAR-10 subset)")
    p.add_argument("--layouts", default=None,
                   help="comma-separated of nchw, channels_last (default: channels_last, the "
                        "trainer's own choice on every device)")
    p.add_argument("--space", default="track1_resnet48", help="track1_resnet48 or nb201")
    p.add_argument("--teacher-kd", type=float, default=None, metavar="R",
                   help="also time every mode with a frozen external teacher at weight R")
    p.add_argument("--kd-teacher", default=None, metavar="FILE",
                   help="the --teacher-kd teacher (default: the largest subnet of a fresh "
                        "supernet of --space)")
    p.add_argument("--kd-teacher-bn", default="auto", help="auto, stored or batch")
    args = p.parse_args(argv)
    if args.kd_teacher and args.teacher_kd is None:
        p.error("--kd-teacher needs --teacher-kd")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    layouts = [x for x in (args.layouts or "channels_last").split(",") if x]
    formats = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
    if any(x not in formats for x in layouts):
        p.error(f"--layouts takes {', '.join(formats)}")
    source = resolve_source(args.data, "train")
    batches = TrainBatches(source, args.image_size, args.batch, device=device, seed=0,
                           augment="crop_flip" if args.image_size <= 64 else "rrc",
                           progress=False)
    data = iter(batches)

    def kd_teacher(layout: str) -> torch.nn.Module:
        cl = layout == "channels_last"
        if args.kd_teacher:
            return load_kd_teacher(args.kd_teacher, source.num_classes, bn=args.kd_teacher_bn,
                                   device=device, channels_last=cl, log=print)
        torch.manual_seed(1)
        sup = build_supernet(args.space, {"num_classes": source.num_classes})
        return freeze_teacher(sup.extract(sup.space.largest()), device=device, channels_last=cl,
                              batch_bn=args.kd_teacher_bn == "batch")

    variants = [("", None)] + ([("+kd", args.teacher_kd)] if args.teacher_kd is not None else [])
    runs = {}
    for mode in [m for m in args.modes.split(",") if m]:
        for (suffix, kd), layout in ((v, lay) for v in variants for lay in layouts):
            torch.manual_seed(0)
            net = build_supernet(args.space, {"num_classes": source.num_classes}).to(device)
            net = net.to(memory_format=formats[layout])
            name = mode + suffix if len(layouts) == 1 else f"{mode}{suffix} ({layout})"
            cfg = MODES[mode] if kd is None else dataclasses.replace(MODES[mode], teacher_kd=kd)
            runs[name] = {"mode": mode, "cfg": cfg, "format": formats[layout], "net": net,
                          "kd_teacher": None if kd is None else kd_teacher(layout),
                          "opt": torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9),
                          "sampler": MarginSampler(net.space, 33 if args.space == "track1_resnet48"
                                                   else 0, seed=0),
                          "teacher": Teacher(net.space, "flops"), "times": [], "forwards": 0.0}
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else None)
    for i in range(args.warmup + args.steps):
        try:
            x, y = next(data)
        except StopIteration:
            data = iter(batches)
            x, y = next(data)
        for name, r in runs.items():
            xi = x.contiguous(memory_format=r["format"])
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            r["opt"].zero_grad(set_to_none=True)
            terms = train_step(r["net"], r["net"], xi, y, r["cfg"], r["sampler"],
                               r["teacher"], lam=1.0, autocast=autocast,
                               external_teacher=r["kd_teacher"])
            r["opt"].step()
            if cuda:
                torch.cuda.synchronize()
            if i >= args.warmup:
                r["times"].append(time.perf_counter() - t0)
                r["forwards"] = terms["forwards"]
    first_sandwich = next((r for r in runs.values() if r["mode"] == "sandwich"), None)
    base = statistics.median(first_sandwich["times"]) if first_sandwich else None
    dev = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev}; {args.space}, image {args.image_size}, batch {args.batch}, {args.steps} timed steps "
          f"per mode (median), {args.warmup} warm-up")
    print("| mode | forwards/step | s/step (median) | steps/s | img/s | time vs sandwich |")
    print("|---|---|---|---|---|---|")
    for name in runs:
        med = statistics.median(runs[name]["times"])
        ratio = f"{med / base:.2f}x" if base else "-"
        print(f"| {name} | {runs[name]['forwards']:.0f} | {med:.3f} | {1 / med:.3f} | "
              f"{args.batch / med:.1f} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Which modules MeCo can count: a module's C x C channel correlation over n positions is
singular once C > n - 1, and MeCo adds exactly 0 for it (track1.proxies.meco). This counts,
for the first 10 subnets of the official Track 1 list (at 64 and 224 px) and 10 seeded
NAS-Bench-201 archs (32 px), the hooked modules with a spatial map and those MeCo counts,
and for Track 1 at 64 px the (channels, positions) of the counted ones.

    .venv/bin/python docs/results/proxies-track1-list-45000archs-64px-2core-cpu/meco_coverage.py
"""
import json
import random

import torch

from track1.nb201.space import NB201Space
from track1.resnet48.official import load_arch_list
from track1.resnet48.space import ResNet48Space


def coverage(net: torch.nn.Module, resolution: int) -> tuple[int, int, set]:
    seen, counted, shapes = [0], [0], set()

    def hook(module, inputs, output):
        t = output[0] if isinstance(output, (tuple, list)) else output
        if isinstance(t, torch.Tensor) and t.dim() == 4 and t.shape[2] * t.shape[3] >= 2:
            seen[0] += 1
            positions = t.shape[2] * t.shape[3]
            if t.shape[1] <= positions - 1:
                counted[0] += 1
                shapes.add((t.shape[1], positions))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net.train()(torch.randn(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return counted[0], seen[0], shapes


def main() -> None:
    torch.manual_seed(0)
    out = {}
    space = ResNet48Space()
    codes = list(load_arch_list(None).values())[:10]
    for res in (64, 224):
        c = s = 0
        shapes: set = set()
        for code in codes:
            a, b, sh = coverage(space.build(space.decode(code), num_classes=1000), res)
            c, s, shapes = c + a, s + b, shapes | sh
        out[f"track1_{res}px"] = {"counted": c, "modules": s, "share": round(c / s, 2)}
        if res == 64:
            out["track1_64px"]["counted_channels_positions"] = sorted(shapes)
    nb, rng = NB201Space(), random.Random(0)
    c = s = 0
    for _ in range(10):
        a, b, _ = coverage(nb.build(nb.sample(rng), num_classes=10), 32)
        c, s = c + a, s + b
    out["nb201_32px"] = {"counted": c, "modules": s, "share": round(c / s, 2)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""``python -m track1 proxy-cache`` (also ``zen-cache``): FLOPs, params and zero-cost
proxies of every arch of a Track 1 list, into one JSONL cache: the format the ranking
teacher's ``teacher.cache`` reads, one line per arch and run, keyed by the list's key.

``--proxies`` names what to score (default ``zen``, the original cache): any proxy of
``track1.proxies`` and ``az_nas`` (its components, ``az_*``). A rerun computes only what
an arch still lacks (a later run may add proxies to a cache); each value is stored with
the batch and resolution it was scored at. Non-Zen proxies score a freshly built subnet
(1,000 classes, weights seeded by the arch code) on a seeded batch of Gaussian images
with seeded labels at the given resolution; SWAP sees ``--swap-batch`` images (16), the
batch's and more drawn after it.
"""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least, shard_spec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "proxy-cache", aliases=["zen-cache"],
        help="zero-cost proxies (Zen-score by default), FLOPs and params of a list's archs "
             "into a JSONL cache",
        description="One line per arch and run ({key, arch, flops, params, <proxy>, "
                    "<proxy>_batch, <proxy>_resolution, ...}), appended and flushed as each "
                    "is scored: an interrupted run loses at most one arch and a rerun computes "
                    "only the proxies an arch still lacks. The file is what the training "
                    "config's teacher.cache (--teacher-cache) reads. Scores are seeded per arch.")
    p.add_argument("--archs", help="arch list JSON (default: the official 45,000)")
    p.add_argument("--out", default=None,
                   help="JSONL cache (default: runs/zen_cache.jsonl under the project home)")
    p.add_argument("--proxies", default="zen",
                   help="comma-separated proxies (default zen): any of track1.proxies, and az_nas")
    p.add_argument("--limit", type=int_at_least(1), help="only the first N archs")
    p.add_argument("--shard", type=shard_spec, default=(0, 1), metavar="K/N",
                   help="score every N-th arch of the list from the K-th (N processes or "
                        "machines at once, each with its own --out; join the files with "
                        "'awk 1 A B > C', which keeps a line torn by a kill on its own: the "
                        "cache reader drops it and joins an arch's lines)")
    p.add_argument("--batch", type=int_at_least(1), default=8)
    p.add_argument("--swap-batch", type=int_at_least(2), default=16,
                   help="images SWAP sees (default 16, the authors' count): the --batch images, "
                        "then more from the arch's seed (with 8, every subnet reaches SWAP's "
                        "ceiling of 2^8 patterns)")
    p.add_argument("--resolution", type=int_at_least(8), default=224)
    p.add_argument("--repeats", type=int_at_least(1), default=1, help="Zen-score repeats")
    p.add_argument("--no-residual", action="store_true", help="score Zen without shortcuts")
    p.add_argument("--zen-classes", type=int_at_least(1), default=10,
                   help="classes of the head Zen-score's network is built with (default 10; its "
                        "draws depend on it): the training config's model classes, for a cache "
                        "the teacher extends alike (lines of another count than 10 carry it)")
    p.add_argument("--seed", type=int, default=0,
                   help="draws each arch's weights and images (arch_seed(code, seed)); a cache "
                        "holds one seed's scores (lines of seed K != 0 carry \"seed\": K)")
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def proxy_names(text: str) -> list[str]:
    """The ``--proxies`` list, checked: one line naming the unknown one."""
    from track1.infra.errors import UserError
    from track1.proxies import PROXIES, SET_PROXIES
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--proxies: name at least one proxy")
    for n in names:
        if n not in PROXIES + SET_PROXIES:
            raise UserError(f"--proxies: unknown proxy {n!r}; choose from "
                            f"{list(PROXIES + SET_PROXIES)}")
    return list(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch
    from tqdm import tqdm

    from track1.infra import paths
    from track1.infra.resumable import AppendLog
    from track1.proxies import cache_keys, get_proxy, scored_how
    from track1.proxies.zen import arch_seed, zen_score
    from track1.resnet48.costs import count_costs_many
    from track1.resnet48.official import load_arch_list
    from track1.resnet48.space import ResNet48Space
    names = proxy_names(args.proxies)
    if args.threads:
        torch.set_num_threads(args.threads)
    archs = load_arch_list(args.archs)
    items = list(archs.items())[: args.limit] if args.limit else list(archs.items())
    k, n = args.shard
    items = items[k::n]
    out = Path(args.out) if args.out else paths.runs_dir("zen_cache.jsonl")

    def batch_of(name: str) -> int:
        return args.swap_batch if name == "swap" else args.batch

    device_type = torch.device(args.device).type
    # how this run scores Zen-score, in scored_how's terms (a file holds one seed: checked)
    zen_way = ("zen", args.batch, args.resolution, args.repeats, not args.no_residual,
               args.zen_classes, args.seed, device_type)

    def lacking(row: dict) -> list[str]:
        """The proxies an arch's merged lines lack, or hold as scored another way (a Zen
        line that does not say how, from the first caches, counts as this run's)."""
        return [n for n in names if any(k not in row for k in cache_keys(n)) or (n != "zen" and (
            row.get(f"{n}_batch") != batch_of(n)
            or row.get(f"{n}_resolution") != args.resolution)) or (
            n == "zen" and scored_how("zen", row) not in (None, zen_way))]

    # SWAP's images beyond the batch, drawn from the arch's seed
    more = max(args.swap_batch - args.batch, 0) if "swap" in names else 0
    with AppendLog(out, "key", fsync_every=1) as cache:
        # every line of a cache comes from one seed (a line without "seed" from seed 0):
        # scores of two seeds joined per arch would be neither
        other = sorted({int(r.get("seed", 0)) for r in cache.merged.values()} - {args.seed})
        if other:
            from track1.infra.errors import UserError
            raise UserError(f"--seed {args.seed}: {out} holds scores of seed {other[0]}; "
                            f"give each seed its own --out")
        todo = [(k, c) for k, c in items if lacking(cache.merged.get(k, {}))]
        costs = count_costs_many([c for _, c in todo]) if todo else {}
        space = ResNet48Space()
        t0 = time.perf_counter()
        seconds = {n: 0.0 for n in names}
        for i, (key, code) in enumerate(tqdm(todo, desc=",".join(names), unit="arch",
                                              disable=args.no_progress)):
            row = {"key": key, "arch": code, "flops": int(costs["flops"][i]),
                   "params": int(costs["params"][i]), **({"seed": args.seed} if args.seed else {})}
            arch = space.decode(code)
            s = arch_seed(code, args.seed)
            probe = None  # the arch-seeded subnet and batch, built once for its proxies
            # AZ-NAS re-initialises the probe subnet itself (no copy), so it runs after the
            # proxies that read the weights the subnet was built with
            for name in sorted(lacking(cache.merged.get(key, {})), key=lambda n: n == "az_nas"):
                t = time.perf_counter()
                if name == "zen":
                    row |= {"zen": zen_score(space, arch, batch=args.batch,
                                             resolution=args.resolution, repeats=args.repeats,
                                             residual=not args.no_residual, seed=args.seed,
                                             num_classes=args.zen_classes, device=args.device),
                            "zen_batch": args.batch, "zen_resolution": args.resolution,
                            "zen_repeats": args.repeats, "zen_residual": not args.no_residual,
                            **({"zen_classes": args.zen_classes} if args.zen_classes != 10 else {}),
                            **({"zen_device": device_type} if device_type != "cpu" else {})}
                else:
                    if probe is None:
                        g = torch.Generator().manual_seed(s)
                        x = torch.randn(args.batch, 3, args.resolution, args.resolution,
                                        generator=g)
                        y = torch.randint(0, 1000, (args.batch,), generator=g)
                        # drawn after the labels: the other proxies' batch is what it was
                        x = torch.cat([x, torch.randn(more, *x.shape[1:], generator=g)])
                        torch.manual_seed(s)
                        probe = (space.build(arch, num_classes=1000).to(args.device),
                                 x.to(args.device), y.to(args.device))
                    net, x, y = probe
                    if name == "az_nas":
                        from track1.proxies import az_nas
                        row |= {f"az_{k}": v for k, v in az_nas.components(
                            net, x, seed=s, batch=args.batch, in_place=True).items()}
                    elif name == "swap":
                        row[name] = float(get_proxy(name)(net, x[:args.swap_batch], seed=s))
                    else:
                        row[name] = float(get_proxy(name)(net, x[:args.batch], y, seed=s))
                    row |= {f"{name}_batch": batch_of(name), f"{name}_resolution": args.resolution}
                seconds[name] += time.perf_counter() - t
            cache.append(row)
    elapsed = time.perf_counter() - t0
    rate = len(todo) / elapsed if todo and elapsed > 0 else 0.0
    per = ", ".join(f"{n} {seconds[n] / max(len(todo), 1):.3f} s" for n in names)
    print(f"scored {len(todo)} archs ({len(items) - len(todo)} already cached) in {elapsed:.1f} s: "
          f"{rate:.3f} archs/s at batch {args.batch}, resolution {args.resolution} "
          f"(per arch: {per}); cache {out}", flush=True)
    return 0

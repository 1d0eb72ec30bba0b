"""``python -m track1 discover-proxy``: evolve a training-free proxy program on a split
of NAS-Bench-201 and report it on a disjoint one (``track1.bench.discover``)."""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least
from track1.proxies.discover.defaults import BLEND_TERMS, MIN_GAIN


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "discover-proxy", help="evolve a zero-cost proxy program on NAS-Bench-201",
        description="Per-layer statistics of every arch of a search split and a disjoint "
                    "held-out split (cached, resumable), then regularised evolution of proxy "
                    "programs with Kendall on the search split as the fitness; the best program "
                    "is reported on the held-out split and written as a formula.")
    p.add_argument("--out", default=None,
                   help="folder (default: runs/discover-proxy under the project home)")
    p.add_argument("--search-archs", type=int_at_least(2), default=1000)
    p.add_argument("--heldout-archs", type=int_at_least(2), default=4000)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--batch", type=int_at_least(2), default=16,
                   help="images for the statistics, per probe")
    p.add_argument("--probes", type=int_at_least(1), default=1,
                   help="statistics averaged over this many probes (probe k >= 1: the network "
                        "re-initialised from its seed + k, the next --batch images; cached per "
                        "probe; writes program_p<probes>*.json)")
    p.add_argument("--population", type=int_at_least(2), default=50)
    p.add_argument("--sample", type=int_at_least(2), default=10)
    p.add_argument("--cycles", type=int_at_least(1), default=2000)
    p.add_argument("--diversity", type=float, default=0.99,
                   help="a child ranking the search archs like a living program at Spearman >= "
                        "this is redrawn")
    p.add_argument("--blends", action="store_true",
                   help="then pair the evolution's fittest distinct programs into the best "
                        "blend first + w * second on the search split, extended up to "
                        "--blend-terms programs (writes program_blend.json)")
    p.add_argument("--blend-terms", type=int_at_least(2), default=BLEND_TERMS,
                   help=f"programs in a blend at most: beyond the pair, each added term must "
                        f"raise the search fitness by {MIN_GAIN} (default %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the statistics (probe batch, initial weights) and by default "
                        "the evolution")
    p.add_argument("--evolution-seed", type=int, default=None,
                   help="another evolution on the same cached statistics (writes "
                        "program_e<seed>.json)")
    p.add_argument("--data", default=None, help="CIFAR-10 folder or tar (default: the shared "
                                                "tar if present, else the embedded set)")
    p.add_argument("--threads", type=int_at_least(1), help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from track1.bench.discover import discover
    from track1.infra import paths
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else paths.runs_dir("discover-proxy")
    discover(out, search_archs=args.search_archs, heldout_archs=args.heldout_archs,
             split_seed=args.split_seed, batch=args.batch, probes=args.probes, seed=args.seed,
             evolution_seed=args.evolution_seed,
             population=args.population, sample=args.sample, cycles=args.cycles,
             diversity=args.diversity, blends=args.blends,
             blend_terms=args.blend_terms, data=args.data,
             progress=not args.no_progress)
    return 0

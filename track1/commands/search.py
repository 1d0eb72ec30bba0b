"""``python -m track1 search``: architecture search on a trained supernet (``bash run.sh
search``), regularised evolution or random search under FLOPs / params bounds."""
from __future__ import annotations

import argparse

from track1.commands.argtypes import int_at_least, positive_float
from track1.commands.scoring_args import add_scoring_arguments, scoring_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    from track1.search.options import FITNESS, METHODS, SearchOptions
    d = SearchOptions()
    p = sub.add_parser(
        "search", help="search a trained supernet for the best arch under FLOPs/params bounds",
        description="Aging evolution (Real et al.: tournament parent, one mutated child per "
                    "cycle, the oldest member leaves) or random "
                    "search over the checkpoint's space. An arch's fitness is minus the "
                    "supernet's mean cross-entropy (--fitness acc: its top-1) on a fixed "
                    "held-out image subset, BN re-calibrated per arch (as in evaluate), or "
                    "that fused with zero-cost proxies (--fuse). Every scored arch is cached "
                    "in OUT/scored.jsonl as it is scored: a rerun with the same options "
                    "resumes and never scores an arch twice. Writes OUT/top.json (best archs "
                    "with predicted accuracy, FLOPs, params), OUT/history.jsonl and "
                    "OUT/pareto.png. The default budget "
                    f"({d.population} x {d.generations + 1} archs) finishes on a CPU in minutes; "
                    "export the winner with `track1 export ARCH`, train it alone with "
                    "`track1 train-subnet ARCH`.")
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/search/<space>-<method>-s<seed>)")
    p.add_argument("--method", choices=METHODS, default=d.method,
                   help=f"search strategy (default {d.method}; random is the baseline at equal "
                        "cost)")
    p.add_argument("--fitness", choices=FITNESS, default=d.fitness,
                   help=f"what search maximises (default {d.fitness}): minus the supernet's "
                        "mean cross-entropy, which ranked better than top-1 on NAS-Bench-201 "
                        "and is far less noisy (docs/results/NOTES.md), or its top-1 (acc)")
    p.add_argument("--population", type=int_at_least(2), default=d.population,
                   help=f"archs per generation, and the population size (default "
                        f"{d.population})")
    p.add_argument("--generations", type=int_at_least(0), default=d.generations,
                   help=f"generations after the random first one (default {d.generations}); "
                        "random search scores the same number of archs")
    p.add_argument("--tournament", type=int_at_least(2), default=None,
                   help="tournament size for parent selection (default: population / 4, at "
                        "least 2)")
    p.add_argument("--mutate-prob", type=positive_float, default=d.mutate_prob,
                   help=f"per-gene mutation probability (default {d.mutate_prob}; at least "
                        "one gene always changes)")
    p.add_argument("--batch", type=int_at_least(1), default=d.batch,
                   help="evolution: children drawn from the population as it stands and scored "
                        "together, each then joining in order while the oldest leaves (default "
                        f"{d.batch}: the published one child per cycle; more scores faster with "
                        "prefix sharing)")
    p.add_argument("--crossover-prob", type=float, default=d.crossover_prob,
                   help=f"share of children made by uniform crossover (default "
                        f"{d.crossover_prob})")
    p.add_argument("--seed", type=int, default=d.seed, help="search seed")
    for bound in ("min-flops", "max-flops", "min-params", "max-params"):
        p.add_argument(f"--{bound}", type=float, default=None,
                       help=f"{bound.replace('-', ' ')} of a reported arch (inclusive; e.g. 1.5e9)")
    add_scoring_arguments(
        p, d, eval_help=f"held-out images per arch (default {d.eval_images}, fewer where val/ "
                        "has fewer)",
        batch_help="scoring batch (default 500 on GPU, 256 on CPU)",
        fresh_help="discard the run folder's cached scores",
        fuse_help="search maximises the supernet's fitness fused with proxies, each arch "
                  "ranked against --fuse-reference seeded archs within the bounds (scored "
                  "first, outside the budget).")
    p.add_argument("--fuse-reference", type=int_at_least(2), default=d.fuse_reference,
                   help=f"--fuse: archs every arch is ranked against (default "
                        f"{d.fuse_reference})")
    p.add_argument("--top-k", type=int_at_least(1), default=d.top_k,
                   help=f"archs in top.json (default {d.top_k})")
    p.add_argument("--no-plot", action="store_true", help="skip pareto.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from track1.search.evolution import Bounds, SearchError
    from track1.search.options import SearchOptions
    from track1.search.runner import search
    if not 0.0 <= args.crossover_prob <= 1.0:
        raise SearchError(f"--crossover-prob must be in [0, 1], got {args.crossover_prob}")
    if args.mutate_prob > 1.0:
        raise SearchError(f"--mutate-prob must be in (0, 1], got {args.mutate_prob}")
    opts = SearchOptions(
        **scoring_kwargs(args), out=args.out, method=args.method, fitness=args.fitness,
        population=args.population, generations=args.generations, tournament=args.tournament,
        mutate_prob=args.mutate_prob, crossover_prob=args.crossover_prob, seed=args.seed,
        batch=args.batch,
        bounds=Bounds(args.min_flops, args.max_flops, args.min_params, args.max_params),
        top_k=args.top_k, plot=not args.no_plot, fuse_reference=args.fuse_reference)
    search(opts)
    return 0

"""``track1 search``: architecture search on a trained supernet, for either space.

The fitness of an arch is minus the supernet's mean cross-entropy (``--fitness neg_loss``,
the default by measurement) or its top-1 (``acc``) on a fixed held-out image subset, from
the evaluation engine (BN re-calibrated per arch by default; prefix sharing where the
supernet exposes its segments). Every scored arch is appended to ``scored.jsonl`` in the
run folder as soon as it is scored (``track1.infra.resumable``): a rerun with the same options
replays the same search (its decisions depend only on the seed and the fitness values) and
never scores an arch twice. The folder's ``setup.json`` records what the scores depend on
(checkpoint, images, BN mode); a different setup is refused instead of mixed in.

Outputs, beside the cache: ``top.json`` (the best ``top_k`` archs with predicted accuracy,
FLOPs and params), ``history.jsonl`` (every scored arch in search order with its
generation) and ``pareto.png`` (predicted accuracy against FLOPs, the Pareto front drawn).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import torch

from track1.infra import distributed as D
from track1.infra import paths
from track1.scoring.bn import check_bn_mode
from track1.scoring.engine import SubnetScorer
from track1.scoring.fusion import SUPERNET, ReferenceFusion
from track1.evaluate.setup import ScoringSetup, claim_results
from track1.scoring.prefix import score_entries
from track1.infra.atomic import write_json_atomic
from track1.infra.folder_lock import FolderLock
from track1.infra.resumable import AppendLog, write_records
from track1.search.evolution import SearchError, pareto_front, random_search, regularized_evolution
from track1.search.options import FITNESS, METHODS, SearchOptions



class SupernetFitness:
    """Scores batches of archs with the evaluation engine, through the run's cache."""

    def __init__(self, supernet: torch.nn.Module, images: tuple, opts: SearchOptions,
                 cache: AppendLog, device: torch.device,
                 on_scored: Callable[[int], None] = lambda n: None) -> None:
        eval_u8, labels, calib_u8 = images
        batch = opts.batch_size or (500 if device.type == "cuda" else 256)
        self.scorer = SubnetScorer(supernet, eval_u8, labels, calib_u8, bn_mode=opts.bn_mode,
                                   batch_size=batch, calib_batch_size=opts.calib_batch_size,
                                   device=device)
        self.space, self.cache, self.on_scored = supernet.space, cache, on_scored
        self.fitness = opts.fitness
        self.scored_now = 0

    def close(self) -> None:
        self.scorer.close()

    def __call__(self, archs: Sequence[Hashable]) -> list[float]:
        codes = [self.space.encode(a) for a in archs]
        todo = {c: a for c, a in zip(codes, archs) if c not in self.cache.done}
        cached = len(set(codes)) - len(todo)
        if cached:
            self.on_scored(cached)

        def record(code: str, acc: float) -> None:
            cost = self.space.cost(todo[code])
            self.cache.append({"arch": code, "acc": acc, "acc5": self.scorer.last_top5,
                               "loss": self.scorer.last_loss, "flops": cost["flops"],
                               "params": cost["params"]})
            self.scored_now += 1
            self.on_scored(1)
        for code, _, acc in score_entries(self.scorer, list(todo.items())):
            record(code, acc)
        if self.fitness == "neg_loss":
            return [-float(self.cache.done[c]["loss"]) for c in codes]
        return [float(self.cache.done[c]["acc"]) for c in codes]


class FusedFitness:
    """The supernet's fitness fused with zero-cost proxies (``--fuse``): each arch's
    weighted mean of ranks among a fixed reference set of archs (``ReferenceFusion``), so
    archs scored at different times compare as one ranking would order them. The
    reference is scored when this is built (through the run's cache, like any arch)."""

    def __init__(self, base: SupernetFitness, teacher: Any, weights: dict[str, float],
                 reference: Sequence[Hashable]) -> None:
        self.base, self.teacher, self.weights = base, teacher, weights
        self.fusion = ReferenceFusion(weights, self.values(reference))

    def values(self, archs: Sequence[Hashable]) -> dict[str, list[float]]:
        """The supernet's fitness and each proxy's value of ``archs``."""
        return {SUPERNET: self.base(archs),
                **{n: [self.teacher.prior(n, a) for a in archs] for n in self.weights}}

    def __call__(self, archs: Sequence[Hashable]) -> list[float]:
        values = self.values(archs)
        return [self.fusion({n: v[i] for n, v in values.items()}) for i in range(len(archs))]


def fusion_reference(space: Any, bounds: Any, n: int, seed: int) -> list[Hashable]:
    """``n`` distinct seeded archs within ``bounds`` (fewer where the bounds admit fewer):
    what ``--fuse`` ranks every arch against. Its own RNG, so the search's draws are the
    same with and without fusion."""
    import random
    from track1.search.evolution import Candidates
    draws = Candidates(space, bounds, random.Random(f"fuse-reference-{seed}"))
    out: list[Hashable] = []
    seen: set = set()
    for _ in range(4 * n):
        arch = draws.sample(seen)
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
        if len(out) == n:
            break
    return out


class Search:
    """One search run: the constructor validates (options, checkpoint, images, the run
    folder's setup) before any work; ``run`` searches and writes the outputs."""

    def __init__(self, opts: SearchOptions, log: Callable[[str], None] = print) -> None:
        if opts.method not in METHODS:
            raise SearchError(f"--method must be one of {METHODS}, got {opts.method!r}")
        if opts.fitness not in FITNESS:
            raise SearchError(f"--fitness must be one of {FITNESS}, got {opts.fitness!r}")
        check_bn_mode(opts.bn_mode)
        opts.bounds.check()
        if opts.top_k < 1:
            raise SearchError(f"--top-k must be >= 1, got {opts.top_k}")
        self.opts, self.log = opts, log
        self.device = D.pick_device(opts.device)
        scoring = ScoringSetup(opts, self.device, command="search")
        self.ckpt_path, self.supernet, self.space = scoring.ckpt_path, scoring.supernet, scoring.space
        self.images, self.setup = scoring.images, scoring.identity()
        self.fuse, self.fuse_teacher = scoring.fusion(opts.fuse, opts.fuse_cache, SearchError)
        name = f"{self.space.name}-{opts.method}-s{opts.seed}"
        self.out = Path(opts.out) if opts.out else paths.runs_dir("search") / name
        if self.out.exists() and not self.out.is_dir():
            raise SearchError(f"--out {self.out} is a file; name a folder")

    def _open_cache(self) -> AppendLog:
        self.lock = FolderLock(self.out, "search", "pass another --out", SearchError)
        claim_results(self.out, self.setup, fresh=self.opts.fresh, discard=["scored.jsonl"],
                      error=SearchError, records="scores", elsewhere="another --out")
        return AppendLog(self.out / "scored.jsonl", "arch", ("acc", "loss"))

    def run(self) -> dict[str, Any]:
        """Search; returns the summary written to ``top.json``."""
        from tqdm import tqdm
        opts = self.opts
        cache = self._open_cache()
        if cache.skipped:
            self.log(f"{cache.skipped} damaged line(s) in {cache.path} dropped; those archs are "
                     "scored again")
        self.log(f"search: {opts.method} on the {self.space.name} supernet {self.ckpt_path}, "
                 f"{opts.budget} archs ({opts.population} x {opts.generations + 1}), "
                 f"{opts.bounds.describe()}, {self.images.n_eval} eval + {self.images.n_calib} "
                 f"calibration images at {self.images.image_size}px, BN {opts.bn_mode}, device "
                 f"{self.device}; {len(cache.done)} archs already scored in {self.out}")
        images = self.images.decode(opts.cache_dir, opts.progress)
        reference = fusion_reference(self.space, opts.bounds, opts.fuse_reference,
                                     opts.seed) if self.fuse else []
        if self.fuse:
            self.log(f"fusion: the supernet's {opts.fitness} fused with "
                     + ", ".join(f"{n} (weight {w:g})" for n, w in self.fuse.items())
                     + f", each arch ranked against {len(reference)} reference archs "
                       "(scored first)")
        bar = tqdm(total=opts.budget + len(reference), desc=f"search ({opts.method})",
                   unit="arch", disable=not opts.progress, dynamic_ncols=True)
        history: list[dict[str, Any]] = []

        def on_generation(generation: int, scored: list[tuple[Hashable, float]]) -> None:
            history.extend({"generation": generation, "arch": self.space.encode(a),
                            "fitness": value} for a, value in scored)
            best = max(h["fitness"] for h in history)
            bar.set_postfix_str(f"gen {generation} best " + (
                f"fused {best:.4f}" if self.fuse else f"{opts.fitness} {100 * best:.2f}%"
                if opts.fitness == "acc" else f"{opts.fitness} {best:.4f}"))

        own = SupernetFitness(self.supernet, images, opts, cache, self.device, bar.update)
        start = time.perf_counter()
        try:
            fitness = FusedFitness(own, self.fuse_teacher, self.fuse, reference) \
                if self.fuse else own
            if opts.method == "evolution":
                regularized_evolution(self.space, fitness, population=opts.population,
                                      generations=opts.generations, bounds=opts.bounds,
                                      seed=opts.seed, tournament=opts.tournament,
                                      mutate_prob=opts.mutate_prob,
                                      crossover_prob=opts.crossover_prob, batch=opts.batch,
                                      on_generation=on_generation)
            else:
                random_search(self.space, fitness, samples=opts.budget, batch=opts.population,
                              bounds=opts.bounds, seed=opts.seed, on_generation=on_generation)
        finally:
            bar.close()
            own.close()
            cache.close()
            self.lock.release()
        seconds = time.perf_counter() - start
        for h in history:  # what the supernet said and the costs, as the cache recorded them
            rec = cache.done[h["arch"]]
            h.update(acc=float(rec["acc"]), acc5=rec.get("acc5"), loss=float(rec["loss"]),
                     flops=rec["flops"], params=rec["params"])
        return self._write_outputs(history, own.scored_now, seconds, len(reference))

    def _write_outputs(self, history: list[dict[str, Any]], scored_now: int,
                       seconds: float, reference: int) -> dict[str, Any]:
        opts = self.opts
        write_records(self.out / "history.jsonl", history)
        unique = {h["arch"]: h for h in history}
        ranked = sorted(unique.values(), key=lambda h: (-h["fitness"], h["flops"], h["arch"]))
        top = [{"rank": i + 1, "arch": h["arch"], "fitness": h["fitness"], "acc": h["acc"],
                "acc5": h["acc5"], "loss": h["loss"], "flops": h["flops"],
                "params": h["params"], "generation": h["generation"]}
               for i, h in enumerate(ranked[:opts.top_k])]
        summary = {"method": opts.method, "fitness": opts.fitness, "space": self.space.name,
                   "checkpoint": str(self.ckpt_path), "seed": opts.seed,
                   "population": opts.population, "generations": opts.generations,
                   "bounds": asdict(opts.bounds), "archs_scored": len(unique),
                   "scored_this_run": scored_now, "seconds_this_run": round(seconds, 2),
                   "bn_mode": opts.bn_mode, "eval_images": self.images.n_eval,
                   "calib_images": self.images.n_calib,
                   "fuse": self.fuse or None, "fuse_reference": reference if self.fuse else None,
                   "top": top}
        write_json_atomic(summary, self.out / "top.json", indent=1)
        if opts.plot:
            plot_search(list(unique.values()), self.out / "pareto.png",
                        f"{opts.method} on {self.space.name}: {len(unique)} archs",
                        neg_loss=opts.fitness == "neg_loss")
        best = top[0]
        self.log(f"best: {best['arch']} predicted {100 * best['acc']:.2f}% (loss "
                 f"{best['loss']:.4f}) at "
                 f"{best['flops']:.4g} FLOPs, {best['params']:.4g} params; "
                 f"{scored_now} scored now, {len(unique) - scored_now} from the cache, "
                 f"{seconds:.1f} s")
        self.log(f"wrote {self.out / 'top.json'}, {self.out / 'history.jsonl'}"
                 + (f", {self.out / 'pareto.png'}" if opts.plot else ""))
        return summary


def plot_search(points: list[dict[str, Any]], path: Path, title: str,
                neg_loss: bool = False) -> None:
    """The fitness (predicted accuracy, or minus the loss) against FLOPs for every scored
    arch (colour: generation), the Pareto front (no arch both cheaper and better) as a
    line, the best arch marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 (bar.locator)
    flops = [p["flops"] for p in points]
    accs = [-p["loss"] if neg_loss else 100 * p["acc"] for p in points]
    front = pareto_front(list(zip(flops, accs)))
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    sc = ax.scatter(flops, accs, c=[p["generation"] for p in points], cmap="viridis", s=14,
                    alpha=0.8)
    bar = fig.colorbar(sc, ax=ax, label="generation")
    bar.locator = matplotlib.ticker.MaxNLocator(integer=True)
    bar.update_ticks()
    ax.plot([flops[i] for i in front], [accs[i] for i in front], "-o", color="crimson",
            ms=4, lw=1.2, label="Pareto front")
    best = max(range(len(points)), key=lambda i: accs[i])
    ax.scatter([flops[best]], [accs[best]], marker="*", s=160, color="crimson", zorder=3,
               label="best")
    ax.set_xlabel("FLOPs")
    ax.set_ylabel("minus predicted loss" if neg_loss else "predicted top-1 (%)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def search(opts: SearchOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one search (see ``Search``); returns the ``top.json`` summary."""
    return Search(opts, log).run()

"""Proxy discovery on NAS-Bench-201 (issue 18, item 2): the driver of
``track1.proxies.discover`` and of ``python -m track1 discover-proxy``.

The 15,625 archs are shuffled by ``split_seed``; the search split is taken from the
first 1,000 (at most 1,000 archs, the only ground truth the search sees: its fitness is
Kendall against their CIFAR-10 ``valid`` accuracy) and the held-out split from the rest
(disjoint from any search split of the same seed), on which the discovered program is reported
(Kendall against ``valid`` and ``test``), beside FLOPs on the same archs. Each arch's
statistics are computed once (full-size NB201 network, weights seeded by the arch code,
one fixed batch of CIFAR-10 training images with their labels) and cached as one
``.npy`` per arch under ``out/stats/``, written atomically: an interrupted run resumes
where it stopped. Writes ``program.json`` (genes, formula, fitness, held-out figures),
``history.csv`` (the evolution's fitness per cycle) and ``report.json``.
"""
from __future__ import annotations

import contextlib
import csv
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from track1.bench.errors import BenchError
from track1.proxies.discover.defaults import BLEND_TERMS, MIN_GAIN


def splits(search: int, heldout: int, seed: int) -> tuple[list[str], list[str]]:
    """Disjoint search and held-out splits of the NB201 arch strings."""
    from track1.nb201.ground_truth import load_ground_truth
    codes = list(load_ground_truth())
    if search < 2 or heldout < 2 or search + heldout > len(codes):
        raise BenchError(f"discover-proxy: search ({search}) and held-out ({heldout}) archs "
                         f"must each be >= 2 and together <= {len(codes)}")
    if search > 1000:
        raise BenchError(f"discover-proxy: the search split sees at most 1,000 archs' ground "
                         f"truth (got {search})")
    # one seeded permutation: its first 1,000 archs are the search region and the held-out
    # split starts after it, so a smaller run's splits are parts of a larger run's (its
    # cached statistics serve both) and no held-out arch is ever in a search split
    order = list(codes)
    random.Random(seed).shuffle(order)
    if heldout > len(order) - 1000:
        raise BenchError(f"discover-proxy: at most {len(order) - 1000} held-out archs (the first "
                         f"1,000 of the permutation are the search region); got {heldout}")
    return order[:search], order[1000:1000 + heldout]


def arch_stats(codes: list[str], folder: Path, x, y, seed: int,
               progress: bool = True, probe: int = 0) -> list[np.ndarray]:
    """Every arch's statistics under probe ``probe`` (``track1.proxies.discover.stats.
    probe_net``: the arch as built, or re-initialised; ``x``, ``y``: that probe's share of
    the images), computed once and cached as ``folder/<index>.npy``."""
    import torch
    from tqdm import tqdm

    from track1.nb201.ground_truth import load_ground_truth
    from track1.nb201.space import NB201Space
    from track1.proxies.discover.stats import STAT_NAMES, layer_stats, probe_net
    from track1.proxies.zen import arch_seed
    gt = load_ground_truth()
    space = NB201Space()
    folder.mkdir(parents=True, exist_ok=True)
    paths = {c: folder / f"{gt[c].index:05d}.npy" for c in codes}
    todo = [c for c in codes if not paths[c].exists()]
    for code in tqdm(todo, desc=f"statistics, probe {probe}", unit="arch", disable=not progress,
                     dynamic_ncols=True):
        torch.manual_seed(arch_seed(code, seed))
        net = probe_net(space.build(space.decode(code)), probe, arch_seed(code, seed))
        stats = layer_stats(net, x, y, seed=arch_seed(code, seed))
        tmp = paths[code].with_suffix(".tmp.npy")
        np.save(tmp, stats)
        os.replace(tmp, paths[code])
    out = [np.load(paths[c]) for c in codes]
    for c, s in zip(codes, out):
        if s.ndim != 2 or s.shape[1] != len(STAT_NAMES):
            raise BenchError(f"{paths[c]}: statistics of another version ({s.shape}); "
                             f"remove {folder} and rerun")
    return out


@contextlib.contextmanager
def evolution_bar(cycles: int, progress: bool) -> Iterator[Callable[[int, float], None]]:
    """A per-cycle callback for ``evolve`` that drives a progress bar (best so far
    shown), or does nothing without ``progress``; the bar closes on exit."""
    if not progress:
        yield lambda cycle, best: None
        return
    from tqdm import tqdm
    bar = tqdm(total=cycles, desc="evolution", unit="program", dynamic_ncols=True)

    def tick(cycle: int, best: float) -> None:
        bar.update(1)
        bar.set_postfix(best=f"{best:.4f}")
    try:
        yield tick
    finally:
        bar.close()


def write_outputs(out: Path, tag: str, report: dict[str, Any],
                  history: list[dict[str, Any]]) -> None:
    """``program<tag>.json`` (the report, with the ground-truth note) and
    ``history<tag>.csv`` (best fitness per cycle)."""
    from track1.infra.atomic import write_json_atomic
    write_json_atomic(report | {"note": "ground truth: search split only during the search"},
                      out / f"program{tag}.json", indent=1)
    with open(out / f"history{tag}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["cycle", "fitness", "best"])
        w.writeheader()
        w.writerows(history)


def heldout_figures(best: Any, heldout: list[str], search_set: tuple[np.ndarray, np.ndarray],
                    heldout_set: tuple[np.ndarray, np.ndarray],
                    fitness: Callable[[np.ndarray], float]) -> dict[str, Any]:
    """The report's ``heldout`` entry (the program's Kendall against valid and test, FLOPs'
    beside it) and, for a blend, ``by_terms``: the search and held-out Kendall of each
    stage of its growth (``prefixes``). ``*_set``: a split's padded statistics and mask."""
    from scipy.stats import kendalltau

    from track1.nb201.ground_truth import load_ground_truth
    from track1.nb201.space import NB201Space
    from track1.proxies.discover.program import Blend, evaluate_any, prefixes
    gt = load_ground_truth()
    space = NB201Space()

    def kendall(pred, target: str) -> float:
        truth = [getattr(gt[c], target) for c in heldout]
        return round(float(kendalltau(pred, truth).statistic), 4)

    def figures(program: Any) -> dict[str, float]:
        held = evaluate_any(program, *heldout_set)
        return {"kendall_valid": kendall(held, "valid"), "kendall_test": kendall(held, "test")}
    flops = [space.cost(space.decode(c))["flops"] for c in heldout]
    out: dict[str, Any] = {"heldout": {"archs": len(heldout), **figures(best),
                                       "flops_kendall_valid": kendall(flops, "valid"),
                                       "flops_kendall_test": kendall(flops, "test")}}
    if isinstance(best, Blend):
        out["by_terms"] = [{"terms": len(b.terms),
                            "search_kendall_valid": round(fitness(evaluate_any(b, *search_set)), 4),
                            **{f"heldout_{k}": v for k, v in figures(b).items()}}
                           for b in prefixes(best)]
    return out


#: the fittest distinct programs of the evolution that ``--blends`` pairs
BLEND_ARCHIVE = 500


def discover(out: Path, *, search_archs: int = 1000, heldout_archs: int = 4000,
             split_seed: int = 0, batch: int = 16, probes: int = 1, seed: int = 0,
             evolution_seed: int | None = None, population: int = 50,
             sample: int = 10, cycles: int = 2000, diversity: float = 0.99,
             blends: bool = False, blend_terms: int = BLEND_TERMS, data: str | None = None,
             progress: bool = True,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Compute (or reuse) the statistics, evolve on the search split, report on the
    held-out one. ``seed`` fixes the statistics (probe batch, initial weights), averaged
    over ``probes`` probes of ``batch`` images each (``stats.probe_stats``'s, each cached);
    ``evolution_seed`` (default ``seed``) the evolution alone, so several searches share one
    cache. ``blends``: then the best blend of two of the evolution's fittest programs,
    greedily extended up to ``blend_terms`` programs (``track1.proxies.discover.blend``),
    kept if fitter on the search split. Returns the report."""
    evolution_seed = seed if evolution_seed is None else evolution_seed
    from scipy.stats import kendalltau

    from track1.data import probe_batch
    from track1.nb201.ground_truth import load_ground_truth
    from track1.proxies.discover.blend import best_blend
    from track1.proxies.discover.evolve import evolve
    from track1.proxies.discover.program import pad
    from track1.proxies.discover.stats import STAT_NAMES, probe_share
    gt = load_ground_truth()
    search, heldout = splits(search_archs, heldout_archs, split_seed)
    x, y, _ = probe_batch(data, batch * probes, 32, seed)
    t0 = time.perf_counter()
    per_probe = [arch_stats(search + heldout, out / ("stats" if k == 0 else f"stats_probe{k}"),
                            probe_share(x, k, probes), probe_share(y, k, probes), seed,
                            progress, probe=k) for k in range(probes)]
    stats = [np.mean(s, axis=0) for s in zip(*per_probe)]   # probe_stats' mean, cached
    stats_s = time.perf_counter() - t0
    s_stats, s_mask = pad(stats[:len(search)])
    h_stats, h_mask = pad(stats[len(search):])
    target = np.array([gt[c].valid for c in search])

    def fitness(scores: np.ndarray) -> float:
        return float(kendalltau(scores, target).statistic)

    t1 = time.perf_counter()
    with evolution_bar(cycles, progress) as tick:
        result = evolve(s_stats, s_mask, fitness, population=population, sample=sample,
                        cycles=cycles, seed=evolution_seed, diversity=diversity,
                        archive=BLEND_ARCHIVE if blends else 0, progress=tick)
    best, best_fitness = result.best.program, result.best.fitness
    blend = best_blend(result.archive, fitness, terms=blend_terms) if blends else None
    if blend is not None and blend[1] > best_fitness:   # chosen on the search split alone
        best, best_fitness = blend
    report = {
        "program": best.to_dict(), "formula": best.formula,
        "search": {"archs": len(search), "split_seed": split_seed,
                   "kendall_valid": round(best_fitness, 4),
                   **({"best_single": {"formula": result.best.program.formula,
                                       "kendall_valid": round(result.best.fitness, 4)}}
                      if blends else {})},
        **heldout_figures(best, heldout, (s_stats, s_mask), (h_stats, h_mask), fitness),
        "evolution": {"population": population, "sample": sample, "cycles": cycles,
                      "seed": evolution_seed, "diversity": diversity,
                      "blends": {"archive": BLEND_ARCHIVE, "terms": blend_terms,
                                 "min_gain": MIN_GAIN} if blends else None,
                      "evaluated": result.evaluated,
                      "rejected_similar": result.rejected_similar,
                      "seconds": round(time.perf_counter() - t1, 1)},
        "statistics": {"names": list(STAT_NAMES), "batch": batch, "probes": probes, "seed": seed,
                       "network": "NB201 C=16 N=5",
                       "seconds_this_run": round(stats_s, 1)},
    }
    write_outputs(out, (f"_p{probes}" if probes > 1 else "")
                  + ("" if evolution_seed == seed else f"_e{evolution_seed}")
                  + ("_blend" if blends else ""), report, result.history)
    log(f"discovered: {best.formula}")
    log(f"Kendall (valid): search {best_fitness:.4f} on {len(search)} archs; held-out "
        f"{report['heldout']['kendall_valid']:.4f} on {len(heldout)} archs (FLOPs there "
        f"{report['heldout']['flops_kendall_valid']:.4f})")
    return report

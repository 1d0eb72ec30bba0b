"""``track1 search``: regularised evolution and random search under cost bounds, the
cache that makes a rerun resume without scoring any arch twice, and the outputs."""
from __future__ import annotations

import json
import random

from typing import Hashable

import pytest
import torch

from track1.infra.checkpoint import save_atomic
from track1.cli import main
from track1.nb201.space import NB201Space
from track1.nb201.supernet import NB201Supernet
from track1.resnet48.space import ResNet48Space
from track1.search.evolution import (Bounds, SearchError, pareto_front, random_search,
                                     regularized_evolution)


def _objective(space, seed: int = 0):
    """A synthetic fitness with structure (per-gene values, one interaction), so search
    has something to find; counts every arch it is asked about."""
    rng = random.Random(seed)
    table = [{o: rng.random() for o in options} for options in space.gene_choices()]
    calls: list = []

    def fitness(archs):
        calls.extend(archs)
        out = []
        for a in archs:
            g = space.genes(a)
            out.append(sum(t[x] for t, x in zip(table, g)) + 0.5 * (g[0] == g[-1]))
        return out
    return fitness, calls


@pytest.mark.parametrize("space", [NB201Space(), ResNet48Space()], ids=["nb201", "resnet48"])
def test_no_arch_outside_the_bounds_is_ever_scored(space):
    rng = random.Random(1)
    costs = sorted(space.cost(space.sample(rng))["flops"] for _ in range(200))
    params = sorted(space.cost(space.sample(rng))["params"] for _ in range(200))
    bounds = Bounds(min_flops=costs[40], max_flops=costs[160], max_params=params[150])
    for method in ("evolution", "random"):
        fitness, calls = _objective(space)
        if method == "evolution":
            history = regularized_evolution(space, fitness, population=8, generations=4,
                                            bounds=bounds, seed=3)
        else:
            history = random_search(space, fitness, samples=40, batch=8, bounds=bounds, seed=3)
        assert len(history) == 40 and len(calls) == 40
        for arch in calls:
            c = space.cost(arch)
            assert costs[40] <= c["flops"] <= costs[160] and c["params"] <= params[150]


def test_impossible_bounds_are_one_clear_error():
    fitness, _ = _objective(NB201Space())
    with pytest.raises(SearchError, match="too tight.*smallest arch"):
        regularized_evolution(NB201Space(), fitness, population=4, generations=1,
                              bounds=Bounds(max_flops=1.0))
    with pytest.raises(SearchError, match="above --max-flops"):
        Bounds(min_flops=2, max_flops=1).check()


def test_evolution_beats_random_search_at_equal_cost():
    """On a structured objective, the best arch evolution finds is better than random
    search's at the same number of scored archs (mean over seeds), and evolution's later
    generations are better than its random first one."""
    space = ResNet48Space()
    evo, rnd = [], []
    for seed in range(6):
        fitness, _ = _objective(space, seed)
        h = regularized_evolution(space, fitness, population=10, generations=8, seed=seed)
        evo.append(max(v for _, v in h))
        assert sum(v for _, v in h[-10:]) > sum(v for _, v in h[:10])
        fitness, _ = _objective(space, seed)
        rnd.append(max(v for _, v in random_search(space, fitness, samples=90, batch=10,
                                                   seed=seed)))
    assert sum(evo) / len(evo) > sum(rnd) / len(rnd)


def test_pareto_front():
    pts = [(3, 0.5), (1, 0.2), (2, 0.6), (2, 0.1), (4, 0.55), (5, 0.9)]
    assert pareto_front(pts) == [1, 2, 5]


# ------------------------------------------------------------------ the command
@pytest.fixture()
def nb201_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = NB201Supernet(num_classes=10, C=4, N=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "ckpt.pth"
    save_atomic({"model": net.state_dict(), "image_size": 32,
                 "config": {"space": "nb201", "model": {"num_classes": 10, "C": 4, "N": 1},
                            "image_size": 32}}, path)
    return path


def _search(ckpt, out, *extra):
    return main(["search", "--checkpoint", str(ckpt), "--out", str(out), "--population", "4",
                 "--eval-images", "40", "--calib-images", "16", "--no-progress", "--device",
                 "cpu", *extra])


def test_search_resumes_and_never_scores_an_arch_twice(nb201_checkpoint, tmp_path, monkeypatch):
    """A run killed in its second generation, rerun: the archs scored before the kill come
    from the cache; the finished run equals an uninterrupted one."""
    from track1.scoring.engine import SubnetScorer
    scored: list[str] = []
    real = SubnetScorer.score

    def counting(self, arch):
        scored.append(self.space.encode(arch) if not isinstance(arch, str) else arch)
        if kill_after[0] is not None and len(scored) == kill_after[0]:
            raise KeyboardInterrupt
        return real(self, arch)
    monkeypatch.setattr(SubnetScorer, "score", counting)
    kill_after = [None]
    assert _search(nb201_checkpoint, tmp_path / "whole", "--generations", "2") == 0
    whole = json.loads((tmp_path / "whole" / "top.json").read_text())
    assert len(scored) == len(set(scored)) == whole["archs_scored"] == 12
    scored.clear()
    kill_after[0] = 6
    assert _search(nb201_checkpoint, tmp_path / "split", "--generations", "2") == 130
    assert len((tmp_path / "split" / "scored.jsonl").read_text().splitlines()) == 5
    before_kill = scored[:5]  # the 6th was in flight when the run died
    kill_after[0] = None
    scored.clear()
    assert _search(nb201_checkpoint, tmp_path / "split", "--generations", "2") == 0
    split = json.loads((tmp_path / "split" / "top.json").read_text())
    assert len(scored) == len(set(scored)) == 7 and not set(scored) & set(before_kill)
    assert split["scored_this_run"] == 7
    assert split["top"] == whole["top"]
    lines = (tmp_path / "whole" / "history.jsonl").read_text()
    assert (tmp_path / "split" / "history.jsonl").read_text() == lines
    assert (tmp_path / "split" / "pareto.png").stat().st_size > 1000
    # a longer run on the same folder scores only the new generation
    scored.clear()
    assert _search(nb201_checkpoint, tmp_path / "whole", "--generations", "3") == 0
    assert len(scored) == 4


def test_search_bounds_and_bad_inputs(nb201_checkpoint, tmp_path, capsys):
    space = NB201Space(C=4, N=1)  # the checkpoint's supernet: its costs
    rng = random.Random(0)
    flops = sorted(space.cost(space.sample(rng))["flops"] for _ in range(100))
    lo, hi = flops[30], flops[70]
    assert _search(nb201_checkpoint, tmp_path / "b", "--generations", "1", "--method", "random",
                   "--min-flops", str(lo), "--max-flops", str(hi)) == 0
    top = json.loads((tmp_path / "b" / "top.json").read_text())["top"]
    history = [json.loads(line) for line in (tmp_path / "b" / "history.jsonl").open()]
    assert len(history) == 8 and all(lo <= h["flops"] <= hi for h in history + top)
    assert all(0 <= h["acc"] <= h["acc5"] <= 1 for h in history + top)
    capsys.readouterr()
    assert _search(nb201_checkpoint, tmp_path / "c", "--max-flops", "10") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too tight" in err[0]
    # another checkpoint's scores are not mixed into a folder
    other = tmp_path / "other.pth"
    other.write_bytes(nb201_checkpoint.read_bytes() + b"")
    assert _search(other, tmp_path / "b", "--generations", "1", "--method", "random",
                   "--min-flops", str(lo), "--max-flops", str(hi)) == 2
    assert "different setup" in capsys.readouterr().err


def test_evolution_scores_distinct_archs():
    """Equal cost means equal distinct archs: crossovers of near-identical parents fall back
    to mutation instead of re-asking for an arch already scored."""
    space = NB201Space(ops=["skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])
    for seed in range(3):
        fitness, calls = _objective(space, seed)
        regularized_evolution(space, fitness, population=10, generations=9, seed=seed,
                              crossover_prob=0.5)
        assert len(calls) == len(set(calls)) == 100


def test_search_by_minus_loss(nb201_checkpoint, tmp_path):
    """--fitness neg_loss: the search maximises minus the supernet's loss; top.json is
    ranked by it and keeps accuracy and loss beside it."""
    assert _search(nb201_checkpoint, tmp_path / "nl", "--generations", "1",
                   "--fitness", "neg_loss") == 0
    summary = json.loads((tmp_path / "nl" / "top.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "nl" / "history.jsonl").open()]
    assert summary["fitness"] == "neg_loss"
    assert all(h["fitness"] == -h["loss"] for h in history)
    assert summary["top"][0]["loss"] == min(h["loss"] for h in history)
    assert [t["loss"] for t in summary["top"]] == sorted(t["loss"] for t in summary["top"])
    # the default, by measurement (docs/results/NOTES.md): -loss; --fitness acc: top-1
    assert _search(nb201_checkpoint, tmp_path / "default", "--generations", "0") == 0
    assert json.loads((tmp_path / "default" / "top.json").read_text())["fitness"] == "neg_loss"
    assert _search(nb201_checkpoint, tmp_path / "acc", "--generations", "0", "--fitness", "acc") == 0
    acc = [json.loads(line) for line in (tmp_path / "acc" / "history.jsonl").open()]
    assert all(h["fitness"] == h["acc"] for h in acc)


def test_aging_evolution_as_published(monkeypatch):
    """Real et al.'s aging evolution: every parent is a member of the population of the
    last P archs when its child is made (the oldest leaves each cycle), members live P
    cycles (parents come from several cycles back, never older than P), and children do
    become parents. A generational GA (P children, then the P oldest out: no member
    survives a generation) and a frozen population (the newest removed) both fail this."""
    from track1.search.evolution import Candidates
    space = ResNet48Space()
    parents: list[tuple[int, Hashable]] = []
    made: list[Hashable] = []
    mutate = Candidates.mutate

    def spy(self, parent, avoid):
        child = mutate(self, parent, avoid)
        parents.append((len(made), parent))
        made.append(child)
        return child
    monkeypatch.setattr(Candidates, "mutate", spy)
    P = 8
    for batch in (1, 3):
        parents.clear(), made.clear()
        fitness, _ = _objective(space, 0)
        h = regularized_evolution(space, fitness, population=P, generations=5, seed=1,
                                  batch=batch)
        index = {a: i for i, (a, _) in enumerate(h)}
        assert len(h) == P * 6 and len(made) == P * 5
        ages = []
        for c, parent in parents:
            child_at = P + c                    # the child's place in the history
            made_from = child_at - (c % batch)  # its batch drew from the population then
            p = index[parent]
            assert made_from - P <= p < made_from, (c, p)   # a member of the last P
            ages.append(made_from - p)
        assert max(ages) > 1 and any(index[par] >= P for _, par in parents)


def test_search_fused_with_a_proxy(nb201_checkpoint, tmp_path, capsys):
    """--fuse flops:0.4: the reference archs are scored first (outside the budget) and
    every arch's fitness is 0.6 x its -loss rank + 0.4 x its FLOPs rank among them, by
    hand; top.json is ranked by it. A bad --fuse is one line before any work."""
    from track1.infra.ranks import rank_among
    out = tmp_path / "fused"
    assert _search(nb201_checkpoint, out, "--generations", "1", "--fuse", "flops:0.4",
                   "--fuse-reference", "6") == 0
    summary = json.loads((out / "top.json").read_text())
    history = [json.loads(line) for line in (out / "history.jsonl").open()]
    scored = [json.loads(line) for line in (out / "scored.jsonl").open()]
    assert summary["fuse"] == {"flops": 0.4} and summary["fuse_reference"] == 6
    searched = {h["arch"] for h in history}
    reference = [r for r in scored[:6]]          # scored before the search's first arch
    assert len(scored) == 6 + len(searched - {r["arch"] for r in reference})
    ref_loss = [-r["loss"] for r in reference]
    ref_flops = [r["flops"] for r in reference]
    for h in history:
        want = 0.6 * rank_among(-h["loss"], ref_loss) + 0.4 * rank_among(h["flops"], ref_flops)
        assert h["fitness"] == pytest.approx(want, abs=1e-12)
    assert [t["fitness"] for t in summary["top"]] == sorted(
        (t["fitness"] for t in summary["top"]), reverse=True)
    capsys.readouterr()
    assert _search(nb201_checkpoint, tmp_path / "bad", "--fuse", "flops:2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fuse item 'flops:2'" in err[0]
    assert not (tmp_path / "bad" / "scored.jsonl").exists()
    # search draws archs from the whole space: a cache it cannot extend alike is refused
    cache = tmp_path / "proxies.jsonl"
    cache.write_text(json.dumps({"key": "a", "arch": reference[0]["arch"], "meco": 1.0,
                                 "meco_batch": 8, "meco_resolution": 32}) + "\n")
    assert _search(nb201_checkpoint, tmp_path / "bad2", "--fuse", "meco:0.5",
                   "--fuse-cache", str(cache)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "draws archs from the whole space" in err[0]
    assert not (tmp_path / "bad2" / "scored.jsonl").exists()

"""The evaluation engine, BN modes, crash-safe results, metrics, and the evaluate CLI
(including kill -9 part-way and resume)."""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from track1.infra.checkpoint import save_atomic
from track1.data import decode_to_tensor, normalize, resolve_source
from track1.evaluate.results import ResultsLog, build_submission, collect, read_jsonl
from track1.scoring.bn import bn_layers
from track1.scoring.engine import SubnetScorer
from track1.scoring.metrics import (concordant_pair_ratio, kendall, pearson, spearman,
                                    top_k_precision)
from track1.resnet48.supernet import ResNet48Supernet
from track1.resnet48.official import load_arch_list

ROOT = Path(__file__).resolve().parent.parent
CONFIG = {"space": "track1_resnet48", "model": {"num_classes": 10, "activation": "relu"},
          "image_size": 32}


@pytest.fixture(scope="module")
def codes() -> list[str]:
    return list(load_arch_list(validate=False).values())[:4]


@pytest.fixture(scope="module")
def images():
    val, train = resolve_source(None, "val"), resolve_source(None, "train")
    ev, labels = decode_to_tensor(val, 32, indices=list(range(0, 1000, 20)), use_cache=False,
                                  progress=False)
    calib, _ = decode_to_tensor(train, 32, indices=list(range(0, 5000, 100)), use_cache=False,
                                progress=False)
    return ev, labels, calib


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(1)
    net = ResNet48Supernet(10).eval()
    # make the stored statistics distinctive so that restoring them is observable
    for bn in bn_layers(net):
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
    return net


def _bn_state(net):
    return [t.clone() for bn in bn_layers(net) for t in (bn.running_mean, bn.running_var)]


def _reference_accuracy(net, code, ev, labels, calib, mode, calib_chunk):
    """An independent path: static extraction, plain BN, float32; re-calibration as its
    definition, one train-mode forward of the whole calibration set."""
    static = net.extract(code)
    if mode == "recalibrate":
        for bn in bn_layers(static):
            bn.reset_running_stats()
            bn.momentum = None
        static.train()
        with torch.no_grad():
            static(normalize(calib))
        static.eval()
    elif mode == "batch":
        static.train()
    else:
        static.eval()
    with torch.no_grad():
        logits = static(normalize(ev))
    return (logits.argmax(1) == labels).float().mean().item(), logits


@pytest.mark.parametrize("mode", ["recalibrate", "batch", "stored"])
def test_scorer_matches_static_reference_and_restores_bn(supernet, codes, images, mode):
    ev, labels, calib = images
    before = _bn_state(supernet)
    with SubnetScorer(supernet, ev, labels, calib, bn_mode=mode, batch_size=len(ev),
                      calib_batch_size=25, device="cpu") as scorer:
        accs = [scorer.score(code) for code in codes[:2]]
    after = _bn_state(supernet)
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert not supernet.training
    for code, acc in zip(codes[:2], accs):
        ref, _ = _reference_accuracy(supernet, code, ev, labels, calib, mode, 25)
        assert acc == pytest.approx(ref, abs=1.5 / len(ev))  # at most one tie flip
    assert all(0.0 <= a <= 1.0 for a in accs)


def test_recalibration_changes_statistics_and_result_ignores_eval_batch(supernet, codes, images):
    ev, labels, calib = images
    results = []
    for bs in (50, 7):
        with SubnetScorer(supernet, ev, labels, calib, bn_mode="recalibrate", batch_size=bs,
                          calib_batch_size=25, device="cpu") as scorer:
            results.append(scorer.score(codes[0]))
            recal_mean = supernet.stem_bn.running_mean.clone()
    assert results[0] == results[1]
    assert not torch.equal(recal_mean, supernet.stem_bn.running_mean)  # restored afterwards


def test_out_of_memory_halves_the_batch(supernet, codes, images):
    ev, labels, calib = images

    class Fussy(torch.nn.Module):
        """Raises CUDA-style OOM on evaluation batches above 16 images."""

        def __init__(self, inner):
            super().__init__()
            self.inner, self.space = inner, inner.space

        def set_arch(self, arch):
            self.inner.set_arch(arch)

        def forward(self, x):
            if not self.training and len(x) > 16 and not self.inner.stem_bn.training:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.inner(x)

    with SubnetScorer(supernet, ev, labels, calib, bn_mode="stored", batch_size=50,
                      device="cpu") as plain:
        want = plain.score(codes[1])
    with SubnetScorer(Fussy(supernet), ev, labels, calib, bn_mode="stored", batch_size=50,
                      device="cpu") as scorer:
        got = scorer.score(codes[1])
        assert scorer.batch_size == 12
    assert got == want


def test_engine_is_generic_over_spaces(images):
    nb201 = pytest.importorskip("track1.nb201.supernet")
    ev, labels, calib = images
    torch.manual_seed(0)
    net = nb201.NB201Supernet(num_classes=10, C=8, N=1)
    rng = random.Random(0)
    archs = [net.space.encode(net.space.sample(rng)) for _ in range(3)]
    with SubnetScorer(net, ev, labels, calib, bn_mode="recalibrate", device="cpu") as scorer:
        accs = scorer.score_many([(f"a{i}", a) for i, a in enumerate(archs)])
    assert list(accs) == ["a0", "a1", "a2"] and all(0 <= v <= 1 for v in accs.values())


# ---------------------------------------------------------------------- results
def test_results_log_ignores_and_rewrites_torn_line(tmp_path):
    path = tmp_path / "rank000.jsonl"
    with ResultsLog(path) as log:
        log.append({"key": "arch1", "arch": "x", "acc": 0.5})
        log.append({"key": "arch2", "arch": "y", "acc": 0.25})
    with open(path, "a") as f:
        f.write('{"key": "arch3", "ar')  # killed mid-write
    with ResultsLog(path) as log:
        assert sorted(log.done) == ["arch1", "arch2"]
        log.append({"key": "arch3", "arch": "z", "acc": 1.0})
    records, damaged = read_jsonl(path)
    assert [r["key"] for r in records] == ["arch1", "arch2", "arch3"] and damaged == 0
    assert set(collect(tmp_path)) == {"arch1", "arch2", "arch3"}
    sub = build_submission([("arch2", "y"), ("arch1", "x")], collect(tmp_path))
    assert list(sub) == ["arch2", "arch1"] and sub["arch1"] == {"acc": 0.5, "arch": "x"}
    with pytest.raises(KeyError):
        build_submission([("arch9", "q")], collect(tmp_path))


def test_damaged_line_in_the_middle_drops_only_itself(tmp_path):
    """Issue 13, item 5: line 10 of 60 damaged used to drop every later record silently."""
    path = tmp_path / "rank000.jsonl"
    with ResultsLog(path) as log:
        for i in range(60):
            log.append({"key": f"arch{i}", "arch": "x", "acc": i / 100})
    lines = path.read_text().splitlines()
    lines[9] = lines[9][:15] + "#garbage"
    path.write_text("\n".join(lines) + "\n")
    records, damaged = read_jsonl(path)
    assert damaged == 1 and len(records) == 59 and "arch9" not in {r["key"] for r in records}
    with ResultsLog(path) as log:
        assert log.skipped == 1 and len(log.done) == 59 and "arch59" in log.done
    assert read_jsonl(path) == (records, 0)   # rewritten without the damaged line


# ---------------------------------------------------------------------- metrics
def test_metrics_match_scipy_and_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(scale=0.7, size=50)
    y[3] = y[4]  # a tie
    assert kendall(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    assert kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert top_k_precision([4, 3, 2, 1], [4, 3, 1, 2], 2) == 1.0
    assert top_k_precision([1, 2, 3, 4], [4, 3, 2, 1], 2) == 0.0
    assert concordant_pair_ratio([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        kendall([1, 2], [1, 2, 3])


# -------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory, codes):
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    net = ResNet48Supernet(10)
    save_atomic({"model": net.state_dict(), "config": CONFIG}, root / "demo.pth")
    full = load_arch_list(validate=False)
    tiny = {k: {"acc": 0.0, "arch": c} for k, c in list(full.items())[:14]}
    (root / "list.json").write_text(json.dumps(tiny))
    return root


def _cmd(setup: Path, out: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "track1", "evaluate", "--checkpoint", str(setup / "demo.pth"),
            "--archs", str(setup / "list.json"), "--limit", "0", "--eval-images", "96",
            "--calib-images", "64", "--calib-batch-size", "32", "--batch-size", "96",
            "--device", "cpu", "--threads", "1", "--no-progress",
            "--cache-dir", str(setup / "cache"), "--out", str(out), "--results-dir", str(results),
            *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_kill_and_resume_equals_uninterrupted_run(tiny_setup):
    root = tiny_setup
    ref = subprocess.run(_cmd(root, root / "ref.json", root / "ref_results"), cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = json.loads((root / "ref.json").read_text())
    assert list(reference) == [f"arch{i}" for i in range(1, 15)]

    out, results = root / "resumed.json", root / "resumed_results"
    proc = subprocess.Popen(_cmd(root, out, results), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = results / "rank000.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and log.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "evaluation finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_lines = read_jsonl(log)[0]
    assert 3 <= len(killed_lines) < 14 and not out.exists()
    with open(log, "ab") as f:  # as if killed in the middle of writing a line
        f.write(b'{"key":"arch99","acc":0.')
    done = subprocess.run(_cmd(root, out, results), cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(killed_lines)} already in" in done.stdout
    assert json.loads(out.read_text()) == reference
    keys = [r["key"] for r in read_jsonl(log)[0]]
    assert sorted(keys) == sorted(reference) and len(keys) == len(set(keys))


def test_cli_bad_inputs_one_line_and_no_output(tiny_setup, tmp_path, capsys):
    root = tiny_setup
    out = tmp_path / "out.json"
    bad_list = {"arch1": {"acc": 0, "arch": "1252233313000000223212122253130000000000006515000000"},
                "arch2": {"acc": 0, "arch": "12522333130000002232121222531300000000000065150000"}}
    (tmp_path / "bad.json").write_text(json.dumps(bad_list))
    wrong_classes = tmp_path / "c100.pth"
    save_atomic({"model": ResNet48Supernet(100).state_dict(),
                 "config": {**CONFIG, "model": {"num_classes": 100, "activation": "relu"}}},
                wrong_classes)
    cases = {
        "checkpoint not found": ["--checkpoint", str(tmp_path / "none.pth")],
        "'arch2'": ["--archs", str(tmp_path / "bad.json")],
        "100 classes": ["--checkpoint", str(wrong_classes)],
        "data path not found": ["--data", str(tmp_path / "nodata")],
    }
    from track1.cli import main
    for needle, extra in cases.items():
        capsys.readouterr()
        assert main(_cmd(root, out, tmp_path / "res")[3:] + extra) == 2, needle
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], (needle, err)
        assert not out.exists()


def test_torchrun_two_ranks_equal_single_process(tiny_setup):
    root = tiny_setup
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed next to this python")
    common = ["--limit", "5", "--eval-images", "32", "--calib-images", "32"]
    single = subprocess.run(_cmd(root, root / "one.json", root / "one_res") + common, cwd=ROOT,
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m"]
                           + _cmd(root, root / "two.json", root / "two_res")[2:] + common,
                           cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert multi.returncode == 0, multi.stderr[-2000:]
    assert json.loads((root / "two.json").read_text()) == json.loads((root / "one.json").read_text())
    keys = [[r["key"] for r in read_jsonl(root / "two_res" / f"rank{r:03d}.jsonl")[0]] for r in (0, 1)]
    # with prefix sharing (the default) each rank takes a contiguous half in prefix order
    from track1.scoring.prefix import shard_in_prefix_order
    from track1.resnet48.arch import decode
    from track1.resnet48.supernet import segment_keys
    first5 = [(k, decode(v["arch"])) for k, v in list(json.loads((root / "list.json").read_text()).items())[:5]]
    expected = [sorted(k for k, _ in shard_in_prefix_order(first5, r, 2, segment_keys)) for r in (0, 1)]
    assert [sorted(k) for k in keys] == expected and sorted(sum(keys, [])) == sorted(k for k, _ in first5)
    assert expected != [["arch1", "arch3", "arch5"], ["arch2", "arch4"]]  # not the strided r::2


def test_resume_reuses_only_same_key_and_arch(tiny_setup, tmp_path):
    from track1.evaluate.options import EvalOptions
    from track1.evaluate.runner import evaluate
    root = tiny_setup
    full = json.loads((root / "list.json").read_text())
    first = dict(list(full.items())[:3])
    (tmp_path / "a.json").write_text(json.dumps(first))
    opts = dict(checkpoint=str(root / "demo.pth"), limit=0, eval_images=32, calib_images=32,
                calib_batch_size=32, device="cpu", progress=False, cache_dir=str(root / "cache"),
                results_dir=str(tmp_path / "res"), out=str(tmp_path / "out.json"))
    report = evaluate(EvalOptions(archs=str(tmp_path / "a.json"), **opts), log=lambda *_: None)
    assert report.scored == 3 and report.skipped == 0
    again = evaluate(EvalOptions(archs=str(tmp_path / "a.json"), **opts), log=lambda *_: None)
    assert again.scored == 0 and again.skipped == 3
    swapped = dict(first)
    swapped["arch2"] = full["arch9"]  # same key, another subnet: must be scored anew
    (tmp_path / "b.json").write_text(json.dumps(swapped))
    third = evaluate(EvalOptions(archs=str(tmp_path / "b.json"), **opts), log=lambda *_: None)
    assert third.scored == 1 and list(third.accs) == ["arch2"]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["arch2"]["arch"] == full["arch9"]["arch"]


@pytest.mark.parametrize("mode", ["recalibrate", "batch", "stored"])
def test_prefix_sharing_equals_plain_scoring(supernet, images, mode):
    from track1.scoring.prefix import PrefixScorer
    from track1.resnet48.supernet import segment_keys
    from track1.resnet48.arch import decode
    ev, labels, calib = images
    base = "1252233313000000223212122253130000000000006515000000"
    # subnets sharing stems and leading blocks in several ways, given in scrambled order
    variants = [base,
                base[:8] + "43" + base[10:],                    # differs at stage-1 block 2
                "1352233313" + "23" + "0000" + base[16:],       # deeper stage 1
                base[:42] + "25" + base[44:],                   # differs only in the last stage
                "1252233313000000223212122253130000000000006515000000".replace("6515", "7515"),
                list(load_arch_list(validate=False).values())[7]]
    archs = [decode(c) for c in variants]
    assert len({a.code for a in archs}) == len(archs)
    kw = dict(bn_mode=mode, batch_size=20, calib_batch_size=25, device="cpu")
    with SubnetScorer(supernet, ev, labels, calib, **kw) as scorer:
        plain = {a.code: scorer.score(a) for a in archs}
    before = _bn_state(supernet)
    with SubnetScorer(supernet, ev, labels, calib, **kw) as scorer:
        prefix = PrefixScorer(scorer, cache_bytes=10 ** 9)
        got = list(prefix.score_many([(a.code, a.code) for a in archs[::-1]]))
    assert len(set(plain.values())) > 1  # the subnets really differ
    assert {k: acc for k, _, acc in got} == plain
    assert [k for k, _, _ in got] == sorted(plain, key=lambda c: segment_keys(decode(c)))
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_state(supernet)))
    with SubnetScorer(supernet, ev, labels, calib, **kw) as scorer:  # no cache: same numbers
        tiny = {k: acc for k, _, acc in PrefixScorer(scorer, cache_bytes=0).score_many(
            [(a.code, a) for a in archs])}
    assert tiny == plain


def test_prefix_order_shards_partition_the_list_and_keep_its_overlap():
    """torchrun shards with prefix sharing: contiguous ranges of the prefix order that
    partition the list and repeat more leading-block work inside a shard than strided
    shares of the same list do."""
    from track1.scoring.prefix import shard_in_prefix_order
    from track1.resnet48.supernet import segment_keys
    from track1.resnet48.arch import decode
    entries = [(k, decode(c)) for k, c in list(load_arch_list(validate=False).items())[:1200]]
    world = 4
    shards = [shard_in_prefix_order(entries, r, world, segment_keys) for r in range(world)]
    keys = [k for s in shards for k, _ in s]
    assert sorted(keys) == sorted(k for k, _ in entries) and len(set(keys)) == len(entries)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    flat = [segment_keys(a) for s in shards for _, a in s]
    assert flat == sorted(flat)  # rank order = prefix order: each shard a contiguous range

    def distinct_prefixes(shard_list):
        seen = set()
        for s in shard_list:
            for _, a in s:
                segs = segment_keys(a)
                seen.update((id(s),) + tuple(segs[:i + 1]) for i in range(len(segs)))
        return len(seen)

    strided = [entries[r::world] for r in range(world)]
    assert distinct_prefixes(shards) < distinct_prefixes(strided)


def test_partial_run_never_takes_the_official_name_nor_replaces_a_fuller_file(tiny_setup, tmp_path):
    """Issue 13, item 2: a --limit run writes <name>.partial.json and says 'incomplete';
    a run with fewer entries than the file it would overwrite refuses before any work."""
    from track1.evaluate.errors import EvaluateError
    from track1.evaluate.options import EvalOptions
    from track1.evaluate.runner import evaluate
    from track1.resnet48.official import SUBMISSION_NAME
    root = tiny_setup
    opts = dict(checkpoint=str(root / "demo.pth"), archs=str(root / "list.json"),
                eval_images=32, calib_images=32, calib_batch_size=32, device="cpu",
                progress=False, cache_dir=str(root / "cache"))
    official = tmp_path / SUBMISSION_NAME
    logs: list[str] = []
    report = evaluate(EvalOptions(limit=2, out=str(official), results_dir=str(tmp_path / "r1"),
                                  **opts), log=logs.append)
    assert not official.exists() and report.out == tmp_path / (official.stem + ".partial.json")
    assert len(json.loads(report.out.read_text())) == 2
    assert any("incomplete: 2 of 14 entries" in line for line in logs)
    full = evaluate(EvalOptions(limit=0, out=str(official), results_dir=str(tmp_path / "r2"),
                                **opts), log=lambda *_: None)
    assert full.out == official and len(json.loads(official.read_text())) == 14
    before = official.read_bytes()
    mine = tmp_path / "mine.json"
    mine.write_bytes(before)
    with pytest.raises(EvaluateError, match="already holds 14 entries"):
        evaluate(EvalOptions(limit=3, out=str(mine), results_dir=str(tmp_path / "r3"), **opts),
                 log=lambda *_: None)
    assert mine.read_bytes() == before and not (tmp_path / "r3").exists()
    # issue 19, M2: a short run that passed the start-up check while the file was still
    # short must not overwrite the fuller file written meanwhile (checked again at the write)
    from track1.evaluate.runner import Evaluation
    late = tmp_path / "late.json"
    short = Evaluation(EvalOptions(limit=3, out=str(late), results_dir=str(tmp_path / "r4"),
                                   **opts), log=lambda *_: None)
    late.write_bytes(before)                              # a fuller file lands meanwhile
    with pytest.raises(EvaluateError, match="already holds 14 entries"):
        short.run()
    assert late.read_bytes() == before


def test_a_second_evaluate_on_the_same_results_folder_stops_cleanly(tiny_setup, tmp_path):
    """Issue 13, item 6: `evaluate --fresh` beside a running evaluate deleted its log."""
    import fcntl
    from track1.evaluate.errors import EvaluateError
    from track1.evaluate.options import EvalOptions
    from track1.evaluate.runner import evaluate
    root = tiny_setup
    res = tmp_path / "res"
    res.mkdir()
    (res / "rank000.jsonl").write_text('{"key":"arch1","arch":"x","acc":0.5}\n')
    with open(res / ".lock", "a+") as held:   # another evaluate at work on this folder
        held.write("pid 12345")
        held.flush()
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(EvaluateError, match="in use by another evaluate"):
            evaluate(EvalOptions(checkpoint=str(root / "demo.pth"), archs=str(root / "list.json"),
                                 limit=2, eval_images=32, calib_images=32, calib_batch_size=32,
                                 device="cpu", progress=False, cache_dir=str(root / "cache"),
                                 results_dir=str(res), fresh=True, out=str(tmp_path / "o.json")),
                     log=lambda *_: None)
    assert (res / "rank000.jsonl").read_text().startswith('{"key":"arch1"')   # not deleted
    report = evaluate(EvalOptions(checkpoint=str(root / "demo.pth"), archs=str(root / "list.json"),
                                  limit=2, eval_images=32, calib_images=32, calib_batch_size=32,
                                  device="cpu", progress=False, cache_dir=str(root / "cache"),
                                  results_dir=str(res), fresh=True, out=str(tmp_path / "o.json")),
                      log=lambda *_: None)
    assert report.scored == 2     # once the other run is gone, the folder is usable again


def test_checkpoint_config_with_a_bad_image_size_is_one_line(tmp_path, capsys):
    """Issue 13, item 8: image_size 'abc' in a checkpoint's config was a traceback."""
    from track1.cli import main
    bad = tmp_path / "bad.pth"
    save_atomic({"model": {}, "config": {**CONFIG, "image_size": "abc"}}, bad)
    assert main(["evaluate", "--checkpoint", str(bad), "--device", "cpu", "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "image_size is 'abc', not a positive integer" in err[0]


def test_out_naming_a_directory_is_refused_before_scoring(tiny_setup, tmp_path, capsys):
    """Issue 13, item 8: --out DIR failed only after all the scoring."""
    from track1.cli import main
    root = tiny_setup
    rc = main(["evaluate", "--checkpoint", str(root / "demo.pth"), "--archs",
               str(root / "list.json"), "--limit", "0", "--device", "cpu", "--no-progress",
               "--out", str(tmp_path), "--results-dir", str(tmp_path / "res")])
    assert rc == 2 and "is a directory" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_top5_beside_top1(supernet, images):
    """Issue 14, item 6: top-5 comes with every score, equal to a direct count, the same
    through prefix sharing; the results log keeps it, the submission only top-1."""
    from track1.scoring.engine import Tally
    from track1.scoring.prefix import PrefixScorer

    def hits(logits, labels):
        t = Tally(len(labels), torch.device("cpu"))
        t.add(logits, labels, 0)
        return [round(v * len(labels)) for v in (t.scores()[0].acc, t.scores()[0].top5)]
    logits = torch.tensor([[0.9, 0.1, 0.0, 0.2, 0.3, 0.4, 0.5], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    assert hits(logits, torch.tensor([0, 1])) == [1, 1]
    assert hits(logits, torch.tensor([3, 0])) == [0, 1]  # 3: 5th best
    assert hits(logits, torch.tensor([1, 0])) == [0, 0]
    assert hits(logits[:, :3], torch.tensor([2, 0])) == [0, 2]  # k = classes
    ev, labels, calib = images
    arch = load_arch_list(validate=False)["arch3"]
    with SubnetScorer(supernet, ev, labels, calib, batch_size=16, calib_batch_size=25,
                      device="cpu") as scorer:
        top1 = scorer.score(arch)
        top5 = scorer.last_top5
        supernet.set_arch(arch)
        with torch.inference_mode():  # the recalibrated statistics are still in place
            out = torch.cat([supernet(scorer.eval_images._prep(ev[i:i + 16]))
                             for i in range(0, len(ev), 16)])
        direct = (out.topk(5, 1).indices == labels[:, None]).any(1).float().mean().item()
        assert top5 == pytest.approx(direct) and top5 >= top1 and top5 > 0
        loss = scorer.last_loss
        via_prefix = list(PrefixScorer(scorer, cache_bytes=0).score_many([("k", arch)]))
        assert via_prefix[0][2] == top1 and scorer.last_top5 == top5
        assert scorer.last_loss == pytest.approx(loss, rel=1e-6)  # the loss too, for search


def test_results_log_has_top5_and_submission_only_top1(tiny_setup, tmp_path):
    r = subprocess.run(_cmd(tiny_setup, tmp_path / "s.json", tmp_path / "res"), cwd=ROOT,
                       env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records, _ = read_jsonl(tmp_path / "res" / "rank000.jsonl")
    assert records and all(0 <= rec["acc"] <= rec["acc5"] <= 1 for rec in records)
    sub = json.loads((tmp_path / "s.json").read_text())
    assert all(set(v) == {"acc", "arch"} for v in sub.values())


def test_fused_ranking_written_beside_the_submission(tiny_setup, tmp_path, capsys):
    """Issue 18, item 4: --fuse flops:0.4 writes <out>.fused.json, the entries scored by the
    weighted mean of ranks of the supernet's top-1 and FLOPs; the submission is unchanged.
    A bad --fuse is one line before any work."""
    from track1.cli import main
    from track1.resnet48.costs import count_costs
    from track1.scoring.fusion import SUPERNET, fuse
    args = ["evaluate", "--checkpoint", str(tiny_setup / "demo.pth"), "--archs",
            str(tiny_setup / "list.json"), "--limit", "0", "--eval-images", "32",
            "--calib-images", "32", "--device", "cpu", "--no-progress", "--cache-dir",
            str(tiny_setup / "cache"), "--results-dir", str(tmp_path / "res")]
    out = tmp_path / "s.json"
    assert main([*args, "--out", str(out), "--fuse", "flops:0.4"]) == 0
    sub = json.loads(out.read_text())
    fused = json.loads((tmp_path / "s.fused.json").read_text())
    keys = list(sub)
    assert list(fused) == keys and all(fused[k]["arch"] == sub[k]["arch"] for k in keys)
    want = fuse({SUPERNET: [sub[k]["acc"] for k in keys],
                 "flops": [count_costs(sub[k]["arch"])["flops"] for k in keys]}, {"flops": 0.4})
    assert [fused[k]["acc"] for k in keys] == pytest.approx(want)
    assert all(0 <= v["acc"] <= 1 for v in fused.values())
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "t.json"), "--fuse", "flops:1.5"]) == 2
    assert "--fuse item 'flops:1.5'" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()
    # a proxy-cache whose values the fusion cannot extend alike must hold every arch to
    # fuse: one that lacks one is refused before any scoring
    codes = list(json.loads((tiny_setup / "list.json").read_text()).values())
    codes = [c["arch"] if isinstance(c, dict) else c for c in codes]
    cache = tmp_path / "proxies.jsonl"
    cache.write_text("".join(json.dumps({"key": f"a{i}", "arch": c, "meco": float(i),
                                         "meco_batch": 8, "meco_resolution": 64}) + "\n"
                             for i, c in enumerate(codes[1:])))
    assert main([*args, "--out", str(tmp_path / "u.json"), "--fuse", "meco:0.5",
                 "--fuse-cache", str(cache)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"lacks meco for 1 of the {len(codes)} archs to fuse" in err[0]
    assert not (tmp_path / "u.json").exists()

"""Smoke bench: a few training steps and a few archs through the whole pipeline,
checking files, columns and resumability (never the numbers)."""
import csv
import json

import pytest

import track1  # noqa: F401
from track1.cli import main
from track1.bench.methods import METHODS
from track1.bench.predictions import rank_metrics, read_predictions
from track1.nb201.ground_truth import fixed_subset, load_ground_truth

TINY = ["--data", "embedded", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
        "--archs", "4", "--eval-images", "16", "--calib-images", "16", "--score-batch", "16",
        "--no-progress"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_smoke_bench_writes_runs_and_resumes(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench-nb201", "--out", str(out), "--methods", "spos,rdnas_flops",
            "--compare-bn", "spos_s0", *TINY]
    assert main(argv) == 0
    codes = fixed_subset(4, seed=0)
    gt = load_ground_truth()
    for run in ("spos_s0", "rdnas_flops_s0"):
        rows = _rows(out / run / "predictions.csv")
        assert [r["arch"] for r in rows] == codes
        assert all(0 <= float(r["pred"]) <= 100 and float(r["loss"]) > 0 for r in rows)
        assert [float(r["gt"]) for r in rows] == pytest.approx([gt[c].valid for c in codes])
        summary = json.loads((out / run / "summary.json").read_text())
        assert summary["archs"] == 4 and summary["budget"]["steps"] == 2
        for key in ("kendall", "spearman", "pearson", "top10_precision"):
            assert -1 <= summary["accuracy"][key] <= 1
        assert summary["budget"]["batch_size"] == 8 and summary["wall_s"]["train"] > 0
    rd = json.loads((out / "rdnas_flops_s0" / "summary.json").read_text())
    assert rd["config"]["loss"]["ranking"] == "margin" and rd["config"]["sampler"]["threshold"] == 6.7
    bn = json.loads((out / "bn_compare" / "spos_s0" / "summary.json").read_text())
    assert set(bn["modes"]) == {"recalibrate", "batch", "stored"}
    # the comparison reuses the run's own scores for the run's BN mode
    assert _rows(out / "bn_compare" / "spos_s0" / "predictions_recalibrate.csv") == \
        _rows(out / "spos_s0" / "predictions.csv")
    capsys.readouterr()

    # a finished run is skipped; a torn predictions file is completed, not restarted
    pred = out / "spos_s0" / "predictions.csv"
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    (out / "spos_s0" / "summary.json").unlink()
    before = (out / "rdnas_flops_s0" / "summary.json").stat().st_mtime_ns
    assert main(["bench-nb201", "--out", str(out), "--methods", "spos,rdnas_flops", *TINY]) == 0
    log = capsys.readouterr().out
    assert "rdnas_flops_s0: finished earlier, skipped" in log
    assert "training nb201 supernet" not in log  # scored from the final checkpoint: no retraining
    assert (out / "rdnas_flops_s0" / "summary.json").stat().st_mtime_ns == before
    assert [r["arch"] for r in _rows(pred)] == codes
    assert len(read_predictions(pred)) == 4


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["bench-nb201", "--methods", "spos,magic", "--out", str(tmp_path)]) == 2
    assert "unknown bench method(s) ['magic']" in capsys.readouterr().err
    assert main(["bench-nb201", "--data", str(tmp_path / "nope.tar.gz"), "--out",
                 str(tmp_path)]) == 2
    assert "CIFAR-10 data not found" in capsys.readouterr().err
    assert main(["bench-nb201", "--archs", "0", "--out", str(tmp_path)]) == 2
    assert not any(tmp_path.iterdir())  # nothing written on bad input


def test_rank_metrics_and_method_table():
    m = rank_metrics([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert m["kendall"] == pytest.approx(1) and m["top10_precision"] == 1.0
    m = rank_metrics([3, 2, 1], [1, 2, 3])
    assert m["kendall"] == pytest.approx(-1)
    assert rank_metrics([1, 1, 1], [1, 2, 3])["kendall"] == 0.0  # constant predictions
    assert {"spos", "rdnas_flops", "rdnas_zen", "rdnas_synflow", "rdnas_naswot",
            "rdnas_params", "rdnas_flops_nosampler"} <= set(METHODS)


def test_scoring_is_deterministic_and_leaves_the_supernet_untouched(tmp_path):
    import torch
    from track1.bench.predictions import score_run
    from track1.nb201.supernet import NB201Supernet
    torch.manual_seed(0)
    net = NB201Supernet(C=8, N=1)
    net.train()
    for _ in range(2):  # give BN non-default stored statistics
        net(torch.randn(8, 3, 32, 32))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    def images(n: int) -> torch.Tensor:  # uint8, as load_eval_data returns them
        return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    data = (images(24), torch.randint(0, 10, (24,), generator=g), images(16))
    codes = fixed_subset(3, seed=0)
    results = {}
    for mode in ("recalibrate", "batch", "stored"):
        a = score_run(net, codes, tmp_path / f"a_{mode}.csv", data, mode, "valid", 8, progress=False)
        b = score_run(net, codes, tmp_path / f"b_{mode}.csv", data, mode, "valid", 8, progress=False)
        assert a == b
        results[mode] = [r["loss"] for r in a.values()]
    assert results["recalibrate"] != results["stored"]  # the modes really differ
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in state.items())


def test_parallel_jobs_equal_sequential_runs(tmp_path, capsys, monkeypatch):
    """``--jobs 2`` trains each (method, seed) in its own process with the same options:
    the predictions equal those of the one-process run, and each run keeps a log."""
    import torch
    # the same thread count in parent and children: float sums then agree to the bit
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _parallel_vs_sequential(tmp_path, capsys)
    finally:
        torch.set_num_threads(threads)


def _parallel_vs_sequential(tmp_path, capsys):
    seq, par = tmp_path / "seq", tmp_path / "par"
    runs = ["--methods", "spos,rdnas_flops", "--seeds", "0", "--set", "lambda.cap=1.5"]
    assert main(["bench-nb201", "--out", str(seq), *runs, *TINY]) == 0
    assert main(["bench-nb201", "--out", str(par), "--jobs", "2", *runs, *TINY]) == 0
    printed = capsys.readouterr().out
    assert "started spos_s0" in printed and "finished rdnas_flops_s0" in printed
    for run in ("spos_s0", "rdnas_flops_s0"):
        assert _rows(par / run / "predictions.csv") == _rows(seq / run / "predictions.csv")
        assert (par / run / "log.txt").read_text().strip()
        assert json.loads((par / run / "summary.json").read_text())["config"]["lambda"]["cap"] == 1.5
    assert main(["bench-nb201", "--out", str(tmp_path / "x"), "--jobs", "0", *TINY]) == 2


def test_paper_protocol_smoke_scores_none_free_set_at_budget_fractions(tmp_path, capsys):
    """The paper protocol in miniature: 4-op space, training on one half of the training
    set, scoring none-free archs on the other half at 50% and 100% of the budget."""
    from track1.nb201.ground_truth import has_none
    out = tmp_path / "paper"
    argv = ["bench-nb201", "--protocol", "paper", "--out", str(out), "--methods",
            "spos1,rdnas_flops", "--data", "embedded", "--epochs", "1", "--steps-per-epoch", "4",
            "--batch-size", "8", "--archs", "5", "--eval-images", "16", "--calib-images", "16",
            "--score-batch", "16", "--fractions", "0.5,1", "--no-progress"]
    assert main(argv) == 0
    codes = fixed_subset(5, seed=0, none_free=True)
    assert not any(has_none(c) for c in codes)
    for run in ("spos1_s0", "rdnas_flops_s0"):
        half = _rows(out / run / "predictions_at050.csv")
        full = _rows(out / run / "predictions.csv")
        assert [r["arch"] for r in half] == [r["arch"] for r in full] == codes
        assert [r["pred"] for r in half] != [r["pred"] for r in full] or \
            [r["loss"] for r in half] != [r["loss"] for r in full]   # trained on in between
        s = json.loads((out / run / "summary.json").read_text())
        assert s["protocol"]["name"] == "paper" and s["protocol"]["ops"] == [
            "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
        assert [c["fraction"] for c in s["curve"]] == [0.5, 1.0]
        assert [c["steps"] for c in s["curve"]] == [2, 4]
        assert s["config"]["model"]["bn_affine"] is False and s["config"]["model"]["dropout"] == 0.1
        assert s["config"]["lambda"]["schedule"] == "sine"
        assert "kendall" in s["neg_loss"]
    assert json.loads((out / "spos1_s0" / "summary.json").read_text())["budget"]["paths_per_step"] == 1
    capsys.readouterr()


def test_split_halves_are_disjoint_and_seeded():
    from track1.data.split import split_indices
    a, b = split_indices(50_000, 0.5, seed=0)
    assert len(a) == len(b) == 25_000 and not set(a) & set(b)
    assert sorted(a + b) == list(range(50_000))
    assert split_indices(50_000, 0.5, seed=0) == (a, b) and split_indices(50_000, 0.5, 1)[0] != a
    with pytest.raises(ValueError):
        split_indices(10, 1.0)


def test_noise_floor_in_predictions_and_summary(tmp_path):
    """Each arch's scores on the two halves of the evaluation images are kept, and the
    summary's split-half Kendall is the Kendall between them (the scorer's noise floor)."""
    from track1.scoring.metrics import kendall
    out = tmp_path / "bench"
    assert main(["bench-nb201", "--out", str(out), "--methods", "spos", *TINY]) == 0
    rows = _rows(out / "spos_s0" / "predictions.csv")
    for r in rows:  # 8 + 8 images: the whole set's top-1 is the halves' mean
        assert float(r["pred"]) == pytest.approx((float(r["pred_a"]) + float(r["pred_b"])) / 2)
        assert float(r["loss"]) == pytest.approx((float(r["loss_a"]) + float(r["loss_b"])) / 2,
                                                 rel=1e-5)
    s = json.loads((out / "spos_s0" / "summary.json").read_text())
    want = kendall([float(r["loss_b"]) for r in rows], [float(r["loss_a"]) for r in rows])
    assert s["split_half"]["neg_loss"] == pytest.approx(want)
    assert set(s["split_half"]) == {"accuracy", "neg_loss", "acc_tiebreak"}
    assert s["scorer"] == 2 and s["eval"]["images_per_half"] == 8
    assert "split_half" in s["curve"][-1] and "kendall_acc_tiebreak" in s["curve"][-1]


def test_scores_of_another_scorer_are_not_mixed_in(tmp_path, capsys):
    out = tmp_path / "bench"
    (out / "spos_s0").mkdir(parents=True)
    (out / "spos_s0" / "predictions.csv").write_text("arch,pred,gt,loss\n")  # scorer 1's
    assert main(["bench-nb201", "--out", str(out), "--methods", "spos", *TINY]) == 1
    assert "its predictions come from scorer 1, this is scorer 2" in capsys.readouterr().out


def test_train_only_then_score_equals_one_run(tmp_path, capsys):
    """--train-only keeps each fraction point's checkpoint; scoring later from them gives
    what one uninterrupted run scores at those points."""
    argv = ["--methods", "spos", "--fractions", "0.5,1", *TINY[:3], "2", *TINY[4:]]
    assert main(["bench-nb201", "--out", str(tmp_path / "a"), *argv]) == 0
    assert main(["bench-nb201", "--out", str(tmp_path / "b"), "--train-only", *argv]) == 0
    b = tmp_path / "b" / "spos_s0"
    assert (b / "ckpt" / "supernet" / "at050.pth").exists() and not list(b.glob("pred*"))
    capsys.readouterr()
    assert main(["bench-nb201", "--out", str(tmp_path / "b"), *argv]) == 0
    assert "training nb201 supernet" not in capsys.readouterr().out
    for name in ("predictions_at050.csv", "predictions.csv"):
        assert _rows(tmp_path / "a" / "spos_s0" / name) == _rows(b / name)
    curve = json.loads((b / "summary.json").read_text())["curve"]
    assert [(c["fraction"], c["steps"]) for c in curve] == [(0.5, 2), (1.0, 4)]


def test_score_only_scores_a_cut_off_run_as_far_as_it_got(tmp_path, capsys):
    """A run cut off after its 50% point: --score-only scores that point, trains nothing
    and writes a summary marked incomplete; a later plain call finishes the run."""
    import shutil
    argv = ["--methods", "spos", "--fractions", "0.5,1", *TINY[:3], "2", *TINY[4:]]
    out = tmp_path / "b"
    assert main(["bench-nb201", "--out", str(out), "--train-only", *argv]) == 0
    ckpt = out / "spos_s0" / "ckpt" / "supernet"
    shutil.copyfile(ckpt / "at050.pth", ckpt / "last.pth")      # as if killed there
    capsys.readouterr()
    assert main(["bench-nb201", "--out", str(out), "--score-only", *argv]) == 0
    log = capsys.readouterr().out
    assert "training nb201 supernet" not in log and "that point is skipped" in log
    s = json.loads((out / "spos_s0" / "summary.json").read_text())
    assert s["complete"] is False and [c["fraction"] for c in s["curve"]] == [0.5]
    assert s["budget"]["steps"] == 2 and not (out / "spos_s0" / "predictions.csv").exists()
    assert main(["bench-nb201", "--out", str(out), *argv]) == 0
    s = json.loads((out / "spos_s0" / "summary.json").read_text())
    assert s["complete"] is True and [c["steps"] for c in s["curve"]] == [2, 4]
    assert main(["bench-nb201", "--out", str(out), "--score-only", "--train-only", *argv]) == 2


def test_sigterm_to_a_parallel_bench_stops_its_children(tmp_path):
    """Issue 19, L3: SIGTERM to `bench-nb201 --jobs` left its child runs running."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from track1.infra.process_group import group_alive
    out = tmp_path / "bench"
    cmd = [sys.executable, "-m", "track1", "bench-nb201", "--out", str(out), "--methods",
           "spos,rdnas_flops", "--jobs", "2", "--data", "embedded", "--epochs", "50",
           "--steps-per-epoch", "50", "--batch-size", "8", "--archs", "4", "--eval-images",
           "16", "--calib-images", "16", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        started = 0
        deadline = time.time() + 120
        while started < 2 and time.time() < deadline:
            line = proc.stdout.readline()
            started += line.startswith("started ")
        assert started == 2
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        time.sleep(1)
        assert not group_alive(proc.pid), "a child run outlived its bench"
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)

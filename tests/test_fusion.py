"""Rank fusion of the supernet's score with proxies (issue 18, item 4)."""
from __future__ import annotations

import random

import pytest

from track1.infra.ranks import average_ranks, ranks
from track1.scoring.fusion import SUPERNET, fuse, parse_fuse, split_archs, tune_weight
from track1.scoring.metrics import kendall


def test_ranks_and_the_weighted_mean_of_ranks():
    assert ranks([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    assert ranks([1.0, 1.0, 5.0]) == [0.25, 0.25, 1.0]            # ties share their rank
    sup, prox = [1.0, 2.0, 3.0], [30.0, 20.0, 10.0]
    assert fuse({SUPERNET: sup, "p": prox}, {}) == ranks(sup)
    assert fuse({SUPERNET: sup, "p": prox}, {"p": 1.0}) == ranks(prox)
    assert fuse({SUPERNET: sup, "p": prox}, {"p": 0.25}) == pytest.approx([0.25, 0.5, 0.75])


def test_average_ranks_equal_scipy_with_ties():
    """The one rank primitive the teacher, AZ-NAS and fusion share: scipy's average ranks,
    0-based, exactly (ties of -inf and repeated values included)."""
    from scipy.stats import rankdata
    rng = random.Random(5)
    for _ in range(100):
        values = [rng.choice([-float("inf"), -1.0, 0.0, 0.5, 2.0, rng.random()])
                  for _ in range(rng.randint(1, 12))]
        assert average_ranks(values) == [float(r) - 1.0 for r in rankdata(values)]


def test_parse_fuse_is_one_line_on_bad_input():
    assert parse_fuse("flops:0.3, synflow:0.1") == {"flops": 0.3, "synflow": 0.1}
    for bad, needle in (("flops", "NAME:WEIGHT"), ("flops:2", r"in \[0, 1\]"),
                        ("flops:0.7,zen:0.6", "more than 1"), ("a:0.1,a:0.2", "twice")):
        with pytest.raises(ValueError, match=needle):
            parse_fuse(bad)


def test_the_weight_is_tuned_on_one_half_and_reported_on_the_other():
    """Two noisy views of one truth: the fusion beats both on the held-out half, and the
    report never touches the archs the weight was tuned on."""
    rng = random.Random(0)
    truth = [rng.random() for _ in range(400)]
    sup = [t + rng.gauss(0, 0.3) for t in truth]
    prox = [t + rng.gauss(0, 0.3) for t in truth]
    r = tune_weight(sup, prox, truth, kendall, seed=1)
    tune, test = split_archs(400, seed=1)
    assert not set(tune) & set(test) and len(tune) + len(test) == 400
    assert r["tuned_on"] == 200 and r["reported_on"] == 200
    assert r["fused"] > max(r["supernet"], r["proxy"]) and 0.2 <= r["weight"] <= 0.8
    sub = [i for i in test]
    want = kendall(fuse({SUPERNET: [sup[i] for i in sub], "proxy": [prox[i] for i in sub]},
                        {"proxy": r["weight"]}), [truth[i] for i in sub])
    assert r["fused"] == pytest.approx(want)


def test_rank_among_a_reference_is_the_rank_in_the_joint_list():
    """An arch's rank among a fixed reference equals its rank in ``ranks`` over the
    reference plus itself, ties included; the fused score by hand."""
    from track1.infra.ranks import rank_among, ranks
    from track1.scoring.fusion import ReferenceFusion
    rng = random.Random(3)
    for _ in range(50):
        ref = [rng.choice([0.1, 0.2, 0.3, 0.5]) for _ in range(rng.randint(1, 9))]
        value = rng.choice([0.0, 0.1, 0.2, 0.25, 0.5, 0.9])
        assert rank_among(value, ref) == pytest.approx(ranks([*ref, value])[-1])
    fusion = ReferenceFusion({"flops": 0.25}, {"supernet": [1, 2, 3, 4], "flops": [10, 20, 30, 40]})
    assert fusion({"supernet": 3.5, "flops": 5}) == pytest.approx(0.75 * 0.75 + 0.25 * 0.0)
    with pytest.raises(ValueError, match="no reference values"):
        ReferenceFusion({"zen": 0.5}, {"supernet": [1.0]})


def test_fusion_report_mixes_are_the_mean_of_their_parts_ranks(monkeypatch):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    try:
        import fusion_report
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(fusion_report, "MIXES", {"a+b": ("a", "b")})
    proxy = {"x": {"a": 1.0, "b": 30.0}, "y": {"a": 2.0, "b": 10.0}, "z": {"a": 3.0, "b": 20.0},
             "w": {"a": float("-inf"), "b": 40.0}}
    fusion_report.add_mixes(proxy)
    # a ranks w, x, y, z as 0, 1, 2, 3 (-inf lowest); b ranks y, z, x, w as 0, 1, 2, 3
    assert {k: v["a+b"] for k, v in proxy.items()} == {"w": 1.5, "x": 1.5, "y": 1.0, "z": 2.0}


def test_fusion_report_reads_each_runs_teacher_and_its_agreement(monkeypatch):
    """Beside the fusion, each run's ``agreement``: the supernet's Kendall with every
    proxy over all the run's archs (by accuracy and by -loss), and the teacher its ranking
    loss distilled (None without a ranking loss)."""
    import sys
    from pathlib import Path
    from scipy.stats import kendalltau
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    try:
        import fusion_report
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(fusion_report, "PROXIES", ("p",))
    rng = random.Random(0)
    vals = [[rng.random() for _ in range(4)] for _ in range(20)]
    rows = [{"arch": f"a{i}", "gt": str(gt), "pred": str(acc), "loss": str(loss)}
            for i, (gt, acc, loss, _) in enumerate(vals)]
    proxy = {f"a{i}": {"p": p} for i, (*_, p) in enumerate(vals)}
    out = fusion_report.run_report(rows, proxy, seed=0, teacher="p")
    cols = list(zip(*vals))
    assert out["teacher"] == "p"
    assert out["agreement"]["accuracy"]["p"] == pytest.approx(kendalltau(cols[1], cols[3]).statistic)
    assert out["agreement"]["neg_loss"]["p"] == pytest.approx(
        kendalltau([-v for v in cols[2]], cols[3]).statistic)
    assert fusion_report.teacher_of({"config": {"loss": {"ranking": "margin"},
                                                "teacher": {"priors": "meco+az_nas"}}}) == "meco+az_nas"
    assert fusion_report.teacher_of({"config": {"loss": {"ranking": "margin"},   # YAML list
                                                "teacher": {"priors": ["meco", "az_nas"]}}}) == "meco+az_nas"
    assert fusion_report.teacher_of({"config": {"loss": {"ranking": "none"},
                                                "teacher": {"priors": "flops"}}}) is None

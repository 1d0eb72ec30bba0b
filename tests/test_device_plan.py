"""The one-call device script's planner (``track1.bench.device_plan``) and the process
group its phases run in (``track1.infra.process_group``)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from track1.bench import device_plan as dp
from track1.infra.process_group import TIMED_OUT, group_alive, run_group


def _probe(fast: float, plain: float, score_fast: float, score_plain: float,
           concurrent: dict | None = None) -> dict:
    return {"train": {"fast": {"steps_per_s": fast}, "plain": {"steps_per_s": plain}},
            "score": {"fast": {"archs_per_s": score_fast}, "plain": {"archs_per_s": score_plain}},
            "args": {"eval_images": 5000}, "concurrent": {"plain": concurrent or {}}}


@pytest.mark.parametrize("rates", [(40, 16, 20, 4), (120, 16, 40, 4), (400, 16, 200, 4),
                                   (10, 16, 3, 4), (2, 1, 0.5, 0.2)])
def test_plan_fits_the_time_with_its_margin(rates):
    plan = dp.plan_budget(_probe(*rates), remaining_s=430, runs=6, jobs=6, batch=512)
    assert 1 <= plan["epochs"] <= dp.PAPER_EPOCHS
    if plan["epochs"] > 1:  # a feasible plan: training (with its margin) + scoring fit
        assert plan["train_s_limit"] + plan["score_s_est"] + plan["overhead_s_est"] <= 430 * 1.01
        assert plan["train_s_limit"] >= plan["train_s_est"] * 1.15 - 1  # rounded to seconds
    option = (plan["archs"], tuple(plan["fractions"]), plan["eval_images"])
    assert option in dp.SCORING_OPTIONS


def test_engines_are_compared_by_what_all_processes_do():
    """Static graph 20 steps/s and plain 16 in one process: six plain processes do ~48
    together against ~26 of the (at most three) static-graph ones, so plain wins (the old
    planner compared one process and picked the static graph, halving the budget)."""
    plan = dp.plan_budget(_probe(20, 16, 10, 4), 430, 6, 6, 512)
    assert plan["engine"] == "plain" and plan["jobs"] == 6
    assert plan["rates"]["train"]["plain"] == pytest.approx(16 * 3.3)
    assert plan["rates"]["train"]["fast"] == pytest.approx(20 * 1.3)
    much_faster = dp.plan_budget(_probe(100, 16, 10, 4), 430, 6, 6, 512)
    assert much_faster["engine"] == "fast" and much_faster["jobs"] == 3
    # a measured concurrent rate replaces the assumed scaling (MPS on, if it helped)
    measured = dp.plan_budget(_probe(20, 16, 10, 4, {"jobs": 6, "mps_off": 20.0,
                                                     "mps_on": 70.0}), 430, 6, 6, 512)
    assert measured["step_rate_all"] == 70.0 and measured["step_rate_source"] == "measured"
    slow = dp.plan_budget(_probe(20, 16, 10, 4, {"jobs": 6, "mps_off": 22.0}), 430, 6, 6, 512)
    assert slow["engine"] == "fast"          # six plain processes measured at only 22


def test_faster_machines_get_more_budget_and_richer_scoring():
    slow = dp.plan_budget(_probe(40, 16, 20, 4), 430, 6, 6, 512)
    fast = dp.plan_budget(_probe(400, 160, 2000, 4), 430, 6, 6, 512)
    assert fast["epochs"] > slow["epochs"]
    assert dp.SCORING_OPTIONS.index((fast["archs"], tuple(fast["fractions"]),
                                     fast["eval_images"])) == 0
    assert fast["eval_images"] == 25_000


def test_forced_parts_are_kept_and_the_rest_planned():
    force = {"engine": "fast", "scorer": "plain", "fractions": (0.5, 1.0), "eval_images": 2000}
    plan = dp.plan_budget(_probe(20, 16, 10, 4), 430, 6, 6, 512, force=force)
    assert (plan["engine"], plan["scorer"], plan["fractions"], plan["eval_images"]) == \
        ("fast", "plain", [0.5, 1.0], 2000)
    assert plan["forced"] == sorted(force)
    assert dp.plan_budget(_probe(20, 16, 10, 4), 430, 6, 6, 512,
                          force={"epochs": 30})["epochs"] == 30


def test_fallback_never_runs_six_static_graphs():
    assert dp.FALLBACK["engine"] == "plain"


def test_collection_stays_within_eight_files():
    for runs in (1, 6, 12):
        per = dp.supernets_per_tar(runs, 5 * 2 ** 20)
        assert dp.files_of(runs, per) <= dp.MAX_FILES and per * 5 <= 16
    with pytest.raises(ValueError, match="do not fit"):
        dp.supernets_per_tar(12, 15 * 2 ** 20)


def test_a_timed_out_group_leaves_no_process(tmp_path):
    """The command's children (as bench-nb201 --jobs starts them) stop with it."""
    script = ("import subprocess, sys, time\n"
              "for _ in range(2):\n"
              "    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
              "print('started', flush=True)\n"
              "time.sleep(60)\n")
    t0 = time.time()
    holder: dict = {}
    original = subprocess.Popen

    class Spy(original):  # remember the group's id
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            holder.setdefault("pgid", self.pid)
    subprocess.Popen = Spy
    try:
        rc = run_group([sys.executable, "-c", script], 3.0, tmp_path / "log.txt", grace_s=2.0)
    finally:
        subprocess.Popen = original
    assert rc == TIMED_OUT and time.time() - t0 < 20
    assert "started" in (tmp_path / "log.txt").read_text()
    time.sleep(0.5)
    assert not group_alive(holder["pgid"])
    assert run_group([sys.executable, "-c", "print(1)"], 30, tmp_path / "ok.txt") == 0

"""The one-call device script's budget planner (tools/device_nb201_paper.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _planner():
    spec = importlib.util.spec_from_file_location("device_nb201_paper",
                                                  ROOT / "tools" / "device_nb201_paper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _probe(fast: float, plain: float, score_fast: float, score_plain: float) -> dict:
    return {"train": {"fast": {"steps_per_s": fast}, "plain": {"steps_per_s": plain}},
            "score": {"fast": {"archs_per_s": score_fast}, "plain": {"archs_per_s": score_plain}},
            "args": {"eval_images": 5000}}


@pytest.mark.parametrize("rates", [(40, 16, 20, 4), (120, 16, 40, 4), (400, 16, 200, 4),
                                   (10, 16, 3, 4), (2, 1, 0.5, 0.2)])
def test_plan_fits_the_time_and_never_exceeds_the_paper_budget(rates):
    mod = _planner()
    plan = mod.plan_budget(_probe(*rates), remaining_s=430, runs=6, jobs=6, batch=512,
                           eval_images=5000)
    assert 1 <= plan["epochs"] <= mod.PAPER_EPOCHS
    assert plan["engine"] == ("fast" if rates[0] > rates[1] else "plain")
    assert plan["scorer"] == ("fast" if rates[2] > rates[3] else "plain")
    if plan["epochs"] > 1:  # a feasible plan: training + scoring + overhead within the time
        assert plan["train_s_est"] + plan["score_s_est"] + plan["overhead_s_est"] <= 430 * 1.01
    assert (plan["archs"], tuple(plan["fractions"])) in mod.SCORING_OPTIONS


def test_faster_machines_get_more_budget_and_richer_scoring():
    mod = _planner()
    slow = mod.plan_budget(_probe(40, 16, 20, 4), 430, 6, 6, 512, 5000)
    fast = mod.plan_budget(_probe(400, 16, 200, 4), 430, 6, 6, 512, 5000)
    assert fast["epochs"] > slow["epochs"]
    assert (fast["archs"], len(fast["fractions"])) >= (slow["archs"], len(slow["fractions"]))
    assert fast["archs"] == 1000 and fast["fractions"] == [0.1, 0.25, 0.5, 1.0]

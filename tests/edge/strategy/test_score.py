"""The stated score and the expert rules."""

import pytest

from edge.strategy.score import INFEASIBLE_COST, score_metrics

pytestmark = pytest.mark.unit

GOOD = dict(batch_time_s=1800.0, residual_pct=10.0, peak_temp_degc=40.0, relief_events=0, time_above_warning_s=0.0,
            modules=4, modules_finished=4, discharged_ah=12.0)


def test_faster_is_better_and_formula_holds():
    slow = score_metrics({**GOOD, "batch_time_s": 3600.0}, ref_time_s=3600.0)
    fast = score_metrics(GOOD, ref_time_s=3600.0)
    assert fast.cost < slow.cost and fast.feasible
    mean_c = 12.0 / 4 / 0.5 / 5.0
    assert abs(fast.cost - (0.5 + 0.005 * 10 - 0.05 * mean_c / 3)) < 1e-12


def test_expert_rules_make_outcomes_infeasible():
    hot = score_metrics({**GOOD, "peak_temp_degc": 46.0, "time_above_warning_s": 5.0}, ref_time_s=3600.0)
    assert not hot.feasible and len(hot.violations) == 2 and hot.cost > 2 * INFEASIBLE_COST
    unfinished = score_metrics({**GOOD, "modules_finished": 3}, ref_time_s=3600.0)
    assert "unfinished" in unfinished.violations[0]


def test_residual_above_target_costs_more():
    assert score_metrics({**GOOD, "residual_pct": 25.0}).cost - score_metrics({**GOOD, "residual_pct": 15.0}).cost > \
        score_metrics({**GOOD, "residual_pct": 15.0}).cost - score_metrics({**GOOD, "residual_pct": 5.0}).cost

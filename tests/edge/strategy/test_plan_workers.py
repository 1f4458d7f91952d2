"""plan_tiers with a process pool (workers > 1): every tier planned, from the history as it stood at
the start, records appended tier by tier; the planning time counted per tier."""

import pytest

from edge import REPO_ROOT
from edge.grading.features import read_cells_csv
from edge.strategy.history import History
from edge.strategy.planner import grade_cells_table, plan_tiers, plan_workers

pytestmark = pytest.mark.integration

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def batch():
    cells = read_cells_csv(CELLS, limit=10)
    return cells, grade_cells_table(cells, n_tiers=3)


def summary(plans):
    return {t: (p.strategy, p.metrics.batch_time_s, round(p.score.cost, 9), p.path, p.rollouts) for t, p in plans.items()}


def test_a_pool_plans_what_one_process_plans_from_the_same_history(batch, tmp_path):
    """Without the tree every tier starts from the expert default on an empty history either way,
    so the pool and the loop must agree to the last digit, records included."""
    cells, grades = batch
    with History(tmp_path / "one.sqlite") as h1, History(tmp_path / "two.sqlite") as h2:
        one = plan_tiers(cells, grades, h1, use_tree=False, workers=1)
        two = plan_tiers(cells, grades, h2, use_tree=False, workers=2)
        assert summary(one) == summary(two) and len(one) == 3
        # the loop's later tiers found the earlier tiers' records (the same default strategy); the pool's did not
        assert [p.initial_from_history for p in one.values()] == [False, True, True]
        assert [p.initial_from_history for p in two.values()] == [False, False, False]
        assert [(r.tier, r.strategy, r.cost) for r in h1.all()] == [(r.tier, r.strategy, r.cost) for r in h2.all()]


def test_with_the_tree_each_tier_of_a_pool_starts_from_the_history_at_the_start(batch, tmp_path):
    cells, grades = batch
    with History(tmp_path / "pool.sqlite") as h:
        plans = plan_tiers(cells, grades, h, max_simulations=3, workers=2)
        assert not any(p.initial_from_history for p in plans.values())  # an empty history for every tier
        assert h.count() == sum(p.rollouts for p in plans.values())
        assert all(p.rollouts_run >= p.rollouts and p.sil_runs >= 1 and p.planning_s > 0 for p in plans.values())
    with History(tmp_path / "loop.sqlite") as h:
        chained = plan_tiers(cells, grades, h, max_simulations=3, workers=1)
        assert [p.initial_from_history for p in chained.values()] == [False, True, True]


def test_plan_workers_counts():
    assert plan_workers(4, 1) == 1 and plan_workers(4, 2) == 2 and plan_workers(1, 2) == 1
    assert 1 <= plan_workers(4, 0) <= 4


def test_append_many_writes_a_tier_in_one_transaction_or_nothing(tmp_path):
    from edge.strategy.history import HistoryRecordError, TierFeatures
    from edge.strategy.model import Strategy

    metrics = dict(batch_time_s=1800.0, residual_pct=12.0, peak_temp_degc=41.0, time_above_warning_s=0.0,
                   relief_events=0)
    feats = TierFeatures(60.0, 0.85, 50.0, 9)
    with History(tmp_path / "h.sqlite") as h:
        ids = h.append_many("sil", 1, feats, [(Strategy(), metrics, 0.7), (Strategy(pressure_kpa=200.0), metrics, 0.6)])
        assert len(ids) == 2 and h.count() == 2
        with pytest.raises(HistoryRecordError):
            h.append_many("sil", 1, feats, [(Strategy(), metrics, 0.5), (Strategy(), {**metrics, "batch_time_s": -1.0}, 0.5)])
        assert h.count() == 2  # the good one of the refused batch was not written either
        assert h.best_for(feats).cost == 0.6
    with History(tmp_path / "h.sqlite") as h:
        assert h.count() == 2

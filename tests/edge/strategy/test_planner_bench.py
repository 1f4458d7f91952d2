"""Planning time per tier (pytest-benchmark, marker bench): the game tree over SIL rollouts of one tier.

Default run (`--benchmark-disable`): each body runs once with a small budget. `make bench` measures.
The full-budget figure (16 simulations, 4-module sub-batch) is the `slow` one.
"""

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import read_cells_csv
from edge.strategy.history import History
from edge.strategy.planner import grade_cells_table, plan_tiers

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def one_tier():
    cells = read_cells_csv(CELLS, limit=6)
    grades = grade_cells_table(cells, n_tiers=1)
    return cells, grades


def _plan(cells, grades, path, simulations, modules):
    path.unlink(missing_ok=True)
    with History(path) as h:
        return plan_tiers(cells, grades, h, max_simulations=simulations, rollout_modules=modules)


@pytest.mark.bench
def test_bench_planning_time_one_tier_small_budget(benchmark, one_tier, tmp_path):
    cells, grades = one_tier
    plans = benchmark.pedantic(_plan, args=(cells, grades, tmp_path / "h.sqlite", 4, 2), rounds=1, iterations=1)
    assert plans[1].simulations == 4 and np.isfinite(plans[1].score.cost)


@pytest.mark.bench
@pytest.mark.slow
def test_bench_planning_time_one_tier_full_budget(benchmark, one_tier, tmp_path):
    cells, grades = one_tier
    plans = benchmark.pedantic(_plan, args=(cells, grades, tmp_path / "h.sqlite", 16, 4), rounds=3, iterations=1)
    assert plans[1].simulations == 16

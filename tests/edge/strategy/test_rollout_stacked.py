"""The vectorised rollout (`Rollout.many`: one stacked SIL run of many strategies through
StackedLoopController) against the scalar one (`Rollout.__call__`: one SIL run per strategy
through LoopController and the in-memory tag bus): the same metrics, strategy by strategy."""

import dataclasses

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import read_cells_csv
from edge.strategy.model import Strategy, StrategyError, check_strategy
from edge.strategy.planner import default_strategy, grade_cells_table, tier_rollout
from edge.strategy.stacked_loop import StackedLoopController
from edge.strategy.tree import ACTIONS

pytestmark = pytest.mark.integration

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def grades():
    return grade_cells_table(read_cells_csv(CELLS, limit=12), n_tiers=2)


def candidates(root: Strategy) -> list[Strategy]:
    out = [root]
    for action in ACTIONS:
        try:
            out.append(check_strategy(action.apply(root)))
        except StrategyError:
            pass
    return out


def test_stacked_rollout_equals_the_scalar_rollout_for_every_child(grades):
    tier = int(grades.tier.max())
    _, _, rollout = tier_rollout(grades, tier, rollout_modules=3, dt_s=2.0)
    strategies = candidates(default_strategy(None))
    assert len(strategies) >= 10
    stacked = rollout.many(strategies)
    assert rollout.runs == 1 and rollout.calls == len({repr(s) for s in strategies})  # duplicates once
    times = set()
    for s, got in zip(strategies, stacked):
        want = rollout(s)
        assert dataclasses.asdict(got) == dataclasses.asdict(want), s
        times.add(want.batch_time_s)
    assert len(times) > 3  # the strategies really differ


def test_a_hot_strategy_with_relief_and_isolation_matches_too(grades):
    """Strategies that heat the modules (high rate, no coolant, late derating): relief events and the
    core's station limits act in the stacked run exactly as in the scalar one."""
    _, _, rollout = tier_rollout(grades, int(grades.tier.min()), rollout_modules=2, dt_s=2.0)
    hot = Strategy(segments=((0.0, 2.9),), coolant_base_lpm=0.0, derate_start_degc=50.0, derate_stop_degc=54.0,
                   pressure_kpa=100.0).with_calibrated_thresholds()
    mild = hot.replace(segments=((0.0, 1.0),))
    got = rollout.many([hot, mild])
    for s, g in zip((hot, mild), got):
        assert dataclasses.asdict(g) == dataclasses.asdict(rollout(s))
    assert got[0].peak_temp_degc > got[1].peak_temp_degc


def test_many_caches_by_strategy_and_stacks_by_line_setpoints(grades):
    _, _, rollout = tier_rollout(grades, int(grades.tier.min()), rollout_modules=2, dt_s=2.0)
    a = default_strategy(None)
    b = a.replace(pressure_kpa=200.0)
    first = rollout.many([a, b])
    assert (rollout.runs, rollout.calls) == (1, 2)
    again = rollout.many([b, a, b])
    assert (rollout.runs, rollout.calls) == (1, 2)  # all from the cache
    assert again[1] is first[0] and again[0] is first[1]
    other_gain = a.replace(correction_gain=a.correction_gain * 0.5)  # a line-wide kernel setpoint
    rollout.many([other_gain, a.replace(pressure_kpa=175.0)])
    assert rollout.runs == 3  # two stacks: the kernel cannot hold two line-wide gains
    assert dataclasses.asdict(rollout.cache[repr(other_gain)]) == dataclasses.asdict(rollout(other_gain))


def test_the_stacked_controller_refuses_strategies_that_disagree_on_line_setpoints():
    a = default_strategy(None)
    with pytest.raises(ValueError, match="whole line"):
        StackedLoopController([a, a.replace(correction_gain=a.correction_gain * 0.5)], np.array([50.0]),
                              np.array([0.9]), 4, 2, 2.0, 6)


def test_a_one_module_tier_matches_too(grades):
    """One module: the scalar loop runs a one-station map (scalar tags); the stack runs K stations."""
    _, _, rollout = tier_rollout(grades, int(grades.tier.min()), rollout_modules=1, dt_s=2.0)
    assert len(rollout.grades) == 1
    strategies = candidates(default_strategy(None))[:4]
    for s, got in zip(strategies, rollout.many(strategies)):
        assert_same_to_an_ulp(got, rollout(s))
    one = rollout.many([strategies[0].replace(pressure_kpa=210.0)])[0]  # a stack of one
    assert_same_to_an_ulp(one, rollout(strategies[0].replace(pressure_kpa=210.0)))


def assert_same_to_an_ulp(got, want):
    """Equal, but for the last bit of a float: NumPy sums a (1, 6) row (one module, the scalar plant)
    in another order than the rows of a (K, 6) array (the stack)."""
    a, b = dataclasses.asdict(got), dataclasses.asdict(want)
    assert a.keys() == b.keys()
    for key in a:
        if key == "per_module":
            for ma, mb in zip(a[key], b[key]):
                assert ma.keys() == mb.keys() and ma["outcome"] == mb["outcome"]
                for k in ma:
                    if k != "outcome":
                        assert ma[k] == pytest.approx(mb[k], rel=1e-12, abs=0), (key, k)
        else:
            assert a[key] == pytest.approx(b[key], rel=1e-12, abs=0), key
    assert a["batch_time_s"] == b["batch_time_s"] and a["modules_finished"] == b["modules_finished"]

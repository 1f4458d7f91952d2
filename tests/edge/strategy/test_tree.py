"""Game tree: PUCT selection, expansion, back-up, greedy path; budget; seeded."""

import numpy as np
import pytest

from edge.strategy.model import Strategy
from edge.strategy.tree import ACTION_NAMES, ACTIONS, plan_tree, uniform_prior


def synthetic_value(s: Strategy) -> float:
    """Best at a top C-rate of 2.6 and 175 kPa (a bowl the tree must climb into)."""
    return -((s.max_c_rate() - 2.6) ** 2) - ((s.pressure_kpa - 175.0) / 50.0) ** 2


def test_tree_improves_on_the_root_within_budget():
    root = Strategy(segments=((50, 1.5), (0, 1.5)))
    r = plan_tree(root, synthetic_value, max_simulations=60, seed=1)
    assert r.value > r.root_value
    assert r.strategy.max_c_rate() > 1.5 and r.simulations <= 60 and r.evaluations <= r.simulations
    assert all(name in ACTION_NAMES for name in r.path)
    # applying the path to the root gives the optimised strategy
    s = root
    for name in r.path:
        s = ACTIONS[ACTION_NAMES.index(name)].apply(s)
    assert s == r.strategy


def test_seeded_and_deterministic():
    a = plan_tree(Strategy(), synthetic_value, max_simulations=20, seed=3)
    b = plan_tree(Strategy(), synthetic_value, max_simulations=20, seed=3)
    assert a.path == b.path and a.value == b.value


def test_prior_steers_the_search():
    def only_pressure_up(s):
        p = np.full(len(ACTIONS), 1e-6)
        p[ACTION_NAMES.index("pressure_up")] = 1.0
        return p

    r = plan_tree(Strategy(), lambda s: 0.0, prior=only_pressure_up, max_simulations=5, seed=0)
    assert r.path == () or r.path[0] == "pressure_up" or r.value == r.root_value


def test_root_never_beaten_returns_root_and_bad_budget_refused():
    r = plan_tree(Strategy(), lambda s: 1.0 if s == Strategy() else 0.0, max_simulations=15)
    assert r.strategy == Strategy() and r.path == ()
    with pytest.raises(ValueError):
        plan_tree(Strategy(), synthetic_value, max_simulations=0)
    with pytest.raises(ValueError, match="prior"):
        plan_tree(Strategy(), synthetic_value, prior=lambda s: np.ones(3), max_simulations=3)


def test_uniform_prior_covers_every_action():
    assert uniform_prior(Strategy()).sum() == pytest.approx(1.0) and len(uniform_prior(Strategy())) == len(ACTIONS)

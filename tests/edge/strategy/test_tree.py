"""Game tree: PUCT selection, expansion, back-up, greedy path; budget; seeded."""

import numpy as np
import pytest

from edge.strategy.model import Strategy
from edge.strategy.tree import ACTION_NAMES, ACTIONS, plan_tree, uniform_prior

pytestmark = pytest.mark.unit


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


def _chain(name: str, steps: int) -> list[Strategy]:
    chain = [Strategy()]
    for _ in range(steps):
        chain.append(ACTIONS[ACTION_NAMES.index(name)].apply(chain[-1]))
    return chain


@pytest.mark.parametrize("favoured", ["pressure_up", "pressure_down"])
def test_prior_steers_the_search(favoured):
    """With a flat value nothing but the prior tells the children apart: the tree walks down the
    favoured action, one step a simulation, and evaluates nothing else."""
    def only_favoured(s):
        p = np.full(len(ACTIONS), 1e-6)
        p[ACTION_NAMES.index(favoured)] = 1.0
        return p

    evaluated = []

    def flat(s):
        evaluated.append(s)
        return 0.0

    r = plan_tree(Strategy(), flat, prior=only_favoured, max_simulations=5, seed=0)
    assert evaluated == _chain(favoured, 4)
    assert r.simulations == 5 and r.evaluations == 5


def test_a_uniform_prior_does_not_walk_one_action():
    evaluated = []
    plan_tree(Strategy(), lambda s: evaluated.append(s) or 0.0, max_simulations=5, seed=0)
    assert len(evaluated) == 5
    assert evaluated not in (_chain("pressure_up", 4), _chain("pressure_down", 4))


def test_root_never_beaten_returns_root_and_bad_budget_refused():
    r = plan_tree(Strategy(), lambda s: 1.0 if s == Strategy() else 0.0, max_simulations=15)
    assert r.strategy == Strategy() and r.path == ()
    with pytest.raises(ValueError):
        plan_tree(Strategy(), synthetic_value, max_simulations=0)
    with pytest.raises(ValueError, match="prior"):
        plan_tree(Strategy(), synthetic_value, prior=lambda s: np.ones(3), max_simulations=3)


def test_uniform_prior_covers_every_action():
    assert uniform_prior(Strategy()).sum() == pytest.approx(1.0) and len(uniform_prior(Strategy())) == len(ACTIONS)

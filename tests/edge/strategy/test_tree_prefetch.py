"""The game tree with batched evaluation (`prefetch`): the same tree, path and strategy as without,
every evaluation it asks for handed to `prefetch` first, with the siblings and children-to-be."""

import numpy as np
import pytest

from edge.strategy.model import Strategy
from edge.strategy.tree import ACTION_NAMES, plan_tree

pytestmark = pytest.mark.unit


def bowl(s: Strategy) -> float:
    return -((s.max_c_rate() - 2.6) ** 2) - ((s.pressure_kpa - 175.0) / 50.0) ** 2 - 0.1 * s.taper_v_per_cell


def steering(s: Strategy) -> np.ndarray:
    p = np.linspace(1.0, 2.0, len(ACTION_NAMES))
    return p / p.sum()


@pytest.mark.parametrize("sims, seed", [(4, 0), (16, 1), (40, 2)])
def test_prefetch_changes_nothing_of_the_search(sims, seed):
    asked, batches = [], []
    warmed: set[str] = set()

    def evaluate(s):
        asked.append(repr(s))
        return bowl(s)

    def prefetch(strategies):
        batches.append([repr(s) for s in strategies])
        warmed.update(repr(s) for s in strategies)

    plain = plan_tree(Strategy(), bowl, steering, max_simulations=sims, seed=seed)
    batched = plan_tree(Strategy(), evaluate, steering, max_simulations=sims, seed=seed, prefetch=prefetch)
    assert (batched.path, batched.value, batched.strategy, batched.simulations, batched.nodes) == \
        (plain.path, plain.value, plain.strategy, plain.simulations, plain.nodes)
    assert set(asked) <= warmed  # every evaluation was prefetched first
    assert len(batches) < len(asked) or sims == 4  # fewer batches than evaluations
    assert all(len(b) == len(set(b)) for b in batches)  # no strategy twice in a batch
    flat = [k for b in batches for k in b]
    assert len(flat) == len(set(flat))  # nor in two batches


def test_the_first_batch_holds_the_root_and_its_children():
    batches = []
    plan_tree(Strategy(), bowl, max_simulations=2, prefetch=lambda ss: batches.append(ss))
    assert len(batches) == 1 and batches[0][0] == Strategy() and len(batches[0]) > 8


def test_no_look_ahead_on_the_last_simulation():
    batches = []
    plan_tree(Strategy(), bowl, max_simulations=1, prefetch=lambda ss: batches.append(ss))
    assert batches == [[Strategy()]]

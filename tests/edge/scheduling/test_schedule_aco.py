"""The paper's ant colony (edge/scheduling/aco.py)."""

import numpy as np
import pytest

from edge.scheduling.aco import AcoParams, Heuristic, _update, required_wait_min, run_aco
from edge.scheduling.decode import Compiled
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit

SMALL = AcoParams(iterations=4, ants=8)


def test_paper_parameters_are_the_defaults():
    p = AcoParams()
    assert (p.iterations, p.ants, p.alpha, p.beta, p.rho, p.q) == (50, 50, 1.0, 5.0, 0.1, 1.0)
    assert p.heuristic is Heuristic.REST


@pytest.mark.parametrize("bad", [dict(ants=0), dict(rho=0.0), dict(rho=1.5), dict(q=0), dict(guard_factor=0)])
def test_bad_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        AcoParams(**bad)


def test_heuristic_wait_is_the_required_rest(paper):
    w = required_wait_min(Compiled(paper))
    by = paper.unit_by_id()
    assert w[by["M1.T1.U1"].index] == 60       # first unit: its min_rest_before_min
    assert w[by["M4.T2.U1"].index] == 120      # low-temperature item
    assert w[by["M4.T1.U3"].index] == 60


def test_seeded_and_reproducible():
    inst = instance_from_dict(generate_instance(6, "full", seed=2))
    a, b = run_aco(inst, SMALL, seed=7), run_aco(inst, SMALL, seed=7)
    assert a.plan.placements == b.plan.placements and a.best_per_iteration == b.best_per_iteration
    others = {run_aco(inst, SMALL, seed=s).colony_sequence == a.colony_sequence for s in range(1, 4)}
    assert False in others                    # another seed walks differently


@pytest.mark.parametrize("heuristic", list(Heuristic))
def test_colony_plans_are_valid_and_improve_monotonically(heuristic):
    inst = instance_from_dict(generate_instance(8, "fixed", seed=4))
    res = run_aco(inst, AcoParams(iterations=5, ants=10, heuristic=heuristic), seed=1)
    assert check_plan(inst, res.plan) == []
    assert res.best_per_iteration == sorted(res.best_per_iteration, reverse=True)
    assert res.plan.makespan_min == res.best_per_iteration[-1]


def test_paper_instance_small_colony_reaches_1080(paper):
    res = run_aco(paper, AcoParams(iterations=5, ants=10), seed=0)
    assert check_plan(paper, res.plan) == []
    assert res.plan.makespan_min == 1080
    assert res.colony_min == 1080            # the ants themselves, not only the greedy start


def test_evaporation_and_deposit():
    tau = np.full((3, 2), 1.0)        # 2 units + start node (row 2)
    _update(tau, [[0, 1], [1, 0]], [100, 200], AcoParams(), 2, None)
    # (1 - rho) * 1 + Q / L
    assert tau[2, 0] == pytest.approx(0.9 + 1 / 100) and tau[0, 1] == pytest.approx(0.9 + 1 / 100)
    assert tau[2, 1] == pytest.approx(0.9 + 1 / 200) and tau[1, 0] == pytest.approx(0.9 + 1 / 200)
    assert tau[0, 0] == pytest.approx(0.9)


def test_guard_slows_accumulation_on_the_best_path():
    plain, guarded = np.full((3, 2), 1.0), np.full((3, 2), 1.0)
    paths, spans = [[0, 1], [0, 1], [1, 0]], [100, 100, 200]
    _update(plain, paths, spans, AcoParams(guard_factor=0.5), 2, None)
    _update(guarded, paths, spans, AcoParams(guard_factor=0.5), 2, [0, 1])
    assert guarded[2, 0] == pytest.approx(0.9 + 0.5 * 2 / 100)   # half the deposit on the best path
    assert guarded[2, 1] == pytest.approx(plain[2, 1])           # other edges unchanged


def test_guard_fires_when_the_colony_stalls(paper):
    res = run_aco(paper, AcoParams(iterations=8, ants=10, stall_iterations=2, converged_share=0.0), seed=0)
    assert res.guard_activations > 0
    never = run_aco(paper, AcoParams(iterations=8, ants=10, stall_iterations=100), seed=0)
    assert never.guard_activations == 0


def test_time_limit_stops_early():
    inst = instance_from_dict(generate_instance(10, "fixed", seed=1))
    res = run_aco(inst, AcoParams(iterations=50, ants=5, time_limit_s=1e-6), seed=0)
    assert res.iterations_run == 0 and res.colony_min is None     # past the limit: the greedy start
    assert res.plan.makespan_min == res.start_min

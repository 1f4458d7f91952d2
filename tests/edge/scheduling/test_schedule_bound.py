"""Lower bounds (edge/scheduling/bound.py)."""

import pytest

from edge.scheduling.bound import jackson_preemptive, lower_bound
from edge.scheduling.decode import Frozen
from edge.scheduling.plan import module_chain_min

pytestmark = pytest.mark.unit


def test_jackson_preemptive_small_cases():
    assert jackson_preemptive([(0, 10, 0)]) == 10
    assert jackson_preemptive([(0, 60, 960), (0, 60, 960)]) == 1080
    # the long tail job preempts: job A 0-5, B (arrives 5, tail 100) 5-15, A rest 15-20
    assert jackson_preemptive([(0, 10, 0), (5, 10, 100)]) == 115
    assert jackson_preemptive([(50, 10, 0), (0, 5, 0)]) == 60


def test_paper_bound_is_1080_and_chains_are_the_published_ones(paper):
    assert module_chain_min(paper, 0) == 710 and module_chain_min(paper, 3) == 1020
    assert lower_bound(paper) == 1080


def test_bound_never_exceeds_a_known_plan(tiny):
    from edge.scheduling.plan import traditional_plan

    for inst in (tiny(), tiny(wiring="full"), tiny(task_order="first_fixed")):
        assert 0 < lower_bound(inst) <= traditional_plan(inst).makespan_min


def test_group_bound_for_a_switch_matrix(tiny):
    inst = tiny(wiring="full")
    # chains: M1 30+10+20+10+15+10+25 = 120, M2 40+10+10 = 60
    assert lower_bound(inst) == 120


def test_frozen_units_raise_the_bound(paper):
    u = paper.unit_by_id()["M4.T1.U1"].index
    late = Frozen({u: (1, 500)}, not_before_min=500)
    assert lower_bound(paper, late) >= 500 + 1020

"""The shared decoder and the methods on random small instances (decode.py, plan.py)."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge.scheduling.aco import AcoParams, Heuristic, run_aco
from edge.scheduling.best import solve
from edge.scheduling.bound import lower_bound
from edge.scheduling.decode import Builder, Compiled, Frozen, decode, greedy_sequence
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict
from edge.scheduling.plan import traditional_plan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


def test_listed_order_decodes_to_a_valid_plan(paper):
    c = Compiled(paper)
    starts, chans, span = decode(c, list(range(c.n)))
    plan = c.to_plan(starts, chans, "listed")
    assert check_plan(paper, plan) == []
    assert span == plan.makespan_min < traditional_plan(paper).makespan_min


def test_ineligible_unit_is_refused(paper):
    b = Builder(Compiled(paper))
    with pytest.raises(ValueError, match="M1.T1.U2.*not eligible"):
        b.place(paper.unit_by_id()["M1.T1.U2"].index)


def test_incomplete_sequence_is_refused(paper):
    with pytest.raises(ValueError, match="places 1 of 35"):
        decode(Compiled(paper), [0])


def test_gap_filling_uses_rest_time(tiny):
    inst = tiny()
    c = Compiled(inst)
    # M1 alone on CH1: a1 0-30, rest 10, a2 40-60, ...
    starts, _, _ = decode(c, greedy_sequence(c))
    by = {u.id: starts[u.index] for u in inst.units}
    assert by["M1.a1"] == 0 and by["M1.a2"] == 40 and by["M1.b1"] == 70


def test_first_fixed_decoder_may_reorder_tasks(tiny):
    inst = tiny(task_order="first_fixed")
    c = Compiled(inst)
    b = Builder(c)
    ids = {u.id: u.index for u in inst.units}
    for uid in ("M1.a1", "M1.a2"):
        b.place(ids[uid])
    assert {inst.units[e].id for e in b.eligible} == {"M1.b1", "M1.c1", "M2.a1"}
    for uid in ("M1.c1", "M1.b1", "M2.a1", "M2.b1"):
        b.place(ids[uid])
    plan = c.to_plan(b.starts, b.chan_of, "manual")
    assert check_plan(inst, plan) == []
    assert plan.by_unit()["M1.c1"].start_min < plan.by_unit()["M1.b1"].start_min


def test_frozen_units_stay_and_free_units_wait(paper):
    c0 = Compiled(paper)
    u = paper.unit_by_id()["M1.T1.U1"].index
    frozen = Frozen({u: (0, 0)}, not_before_min=30)
    c = Compiled(paper, frozen)
    starts, chans, _ = decode(c, greedy_sequence(c))
    assert (starts[u], chans[u]) == (0, 0)
    assert all(starts[v] >= 30 for v in range(c0.n) if v != u)


@st.composite
def small_instances(draw):
    n = draw(st.integers(1, 5))
    wiring = draw(st.sampled_from(["fixed", "full"]))
    order = draw(st.sampled_from(["fixed", "first_fixed"]))
    spc = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 10_000))
    return instance_from_dict(generate_instance(n, wiring, seed, spc, order))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_instances(), st.integers(0, 5))
def test_every_method_gives_a_valid_plan_above_the_bound(inst, seed):
    lb = lower_bound(inst)
    trad = traditional_plan(inst)
    assert check_plan(inst, trad) == []
    c = Compiled(inst)
    greedy = c.to_plan(*decode(c, greedy_sequence(c))[:2], "greedy")
    assert check_plan(inst, greedy) == []
    for h in Heuristic:
        colony = run_aco(inst, AcoParams(iterations=2, ants=3, heuristic=h), seed).plan
        assert check_plan(inst, colony) == []
        assert colony.makespan_min >= lb
    best = solve(inst, "best", time_limit_s=0.6, seed=seed)   # validated inside; bound from CP-SAT too
    assert lb <= best.lower_bound_min <= best.makespan_min <= trad.makespan_min

"""The validator catches each kind of violation (edge/scheduling/validate.py)."""

from dataclasses import replace

import pytest

from edge.scheduling.plan import Plan, traditional_plan
from edge.scheduling.validate import PlanError, ViolationKind as K, assert_valid, check_plan

pytestmark = pytest.mark.unit


def _edit(plan: Plan, unit_id: str, **changes) -> Plan:
    return Plan(tuple(replace(p, **changes) if p.unit_id == unit_id else p for p in plan.placements), "edited")


def _shift(plan: Plan, unit_id: str, delta: int) -> Plan:
    p = plan.by_unit()[unit_id]
    return _edit(plan, unit_id, start_min=p.start_min + delta, end_min=p.end_min + delta)


def kinds(inst, plan, **kw):
    return {v.kind for v in check_plan(inst, plan, **kw)}


def test_traditional_plan_is_valid_and_is_the_papers_2130(paper):
    plan = traditional_plan(paper)
    assert check_plan(paper, plan) == []
    assert plan.makespan_min == 2130


def test_missing_duplicate_unknown(paper):
    good = traditional_plan(paper)
    ps = list(good.placements)
    assert kinds(paper, Plan(tuple(ps[1:]), "x")) == {K.MISSING_UNIT}
    assert kinds(paper, Plan(tuple(ps + [ps[0]]), "x")) == {K.DUPLICATE_UNIT}
    assert K.UNKNOWN_UNIT in kinds(paper, Plan(tuple(ps + [replace(ps[0], unit_id="M9.T1.U1")]), "x"))
    assert kinds(paper, _edit(good, "M1.T1.U1", module_id="M2")) == {K.WRONG_MODULE}


def test_channel_not_wired(paper):
    # M3 (station S3) is only wired to CH1; its last unit (2070-2130) moved to CH2, idle then
    plan = traditional_plan(paper)
    assert kinds(paper, _edit(plan, "M3.T3.U2", channel_id="CH2")) == {K.CHANNEL_NOT_WIRED}


def test_interrupted_or_stretched_unit(paper):
    plan = traditional_plan(paper)
    p = plan.by_unit()["M1.T1.U1"]
    assert kinds(paper, _edit(plan, "M1.T1.U1", end_min=p.end_min - 10)) == {K.INTERRUPTED}


def test_channel_overlap(paper):
    plan = traditional_plan(paper)
    # M2 starts right after M1 (710 min) on CH1: pull M2's first unit into M1's idle rest but on
    # top of M1's first unit
    assert K.CHANNEL_OVERLAP in kinds(paper, _shift(plan, "M2.T1.U1", -710))


def test_station_overlap_across_channels(tiny):
    inst = tiny(wiring="full")
    plan = traditional_plan(inst)
    for uid in ("M2.a1", "M2.b1"):          # M2 out of the way (still valid)
        plan = _shift(plan, uid, 1000)
    assert check_plan(inst, plan) == []
    by = plan.by_unit()
    # M1.a2 on the other channel, overlapping M1.a1 on the station S1
    a1 = by["M1.a1"]
    other = "CH2" if a1.channel_id == "CH1" else "CH1"
    bad = _edit(plan, "M1.a2", channel_id=other, start_min=a1.start_min + 5, end_min=a1.start_min + 25)
    found = kinds(inst, bad)
    assert K.STATION_OVERLAP in found and K.CHANNEL_OVERLAP not in found


def test_order_and_rest(paper):
    plan = traditional_plan(paper)
    # U2 before U1: order
    u1, u2 = plan.by_unit()["M4.T1.U1"], plan.by_unit()["M4.T1.U2"]
    swapped = _edit(_edit(plan, "M4.T1.U1", start_min=u2.start_min, end_min=u2.end_min),
                    "M4.T1.U2", start_min=u1.start_min, end_min=u1.end_min)
    assert K.ORDER in kinds(paper, swapped)
    # rest 60 -> 50: rest only
    assert kinds(paper, _shift(plan, "M1.T1.U2", -10)) == {K.REST}


def test_non_negative_start_and_release(tiny, tiny_data):
    inst = tiny()
    plan = traditional_plan(inst)
    assert K.NEGATIVE_START in kinds(inst, _shift(plan, "M2.a1", -5))
    d = tiny_data()
    d["modules"][1]["release_min"] = 100
    from edge.scheduling.instance import instance_from_dict

    late = instance_from_dict(d)
    assert kinds(late, plan) == {K.RELEASE}
    assert check_plan(late, traditional_plan(late)) == []


def test_first_fixed_task_blocks(tiny):
    inst = tiny(task_order="first_fixed")
    plan = traditional_plan(inst)           # listed order: valid for first_fixed too
    assert check_plan(inst, plan) == []
    by = plan.by_unit()
    # swap tasks b and c of M1 (both single units of 15 and 25 min): allowed
    b1 = by["M1.b1"]
    swapped = _edit(_edit(plan, "M1.c1", start_min=b1.start_min, end_min=b1.start_min + 25),
                    "M1.b1", start_min=b1.start_min + 35, end_min=b1.start_min + 50)
    assert check_plan(inst, swapped) == []
    # but the same swap is an order violation under task_order fixed
    assert K.ORDER in kinds(tiny(), swapped)
    # the first task must run first
    a1 = by["M1.a1"]
    first_late = _edit(plan, "M1.b1", start_min=a1.start_min - 100, end_min=a1.start_min - 85)
    assert K.ORDER in kinds(inst, _shift(first_late, "M1.b1", 0))


def test_replan_constraints(paper):
    plan = traditional_plan(paper)
    frozen = {"M1.T1.U1": plan.by_unit()["M1.T1.U1"]}
    assert check_plan(paper, plan, frozen=frozen) == []
    assert K.FROZEN_MOVED in kinds(paper, _shift(plan, "M1.T1.U1", 1), frozen=frozen)
    assert kinds(paper, plan, frozen=frozen, not_before_min=1) == {K.RELEASE}


def test_assert_valid_raises_with_every_violation(paper):
    plan = _shift(traditional_plan(paper), "M1.T1.U2", -10)
    with pytest.raises(PlanError, match="rest 'M1.T1.U1' -> 'M1.T1.U2' is 50 min, at least 60"):
        assert_valid(paper, plan)


def test_first_fixed_overlap_inside_a_module(tiny):
    inst = tiny(task_order="first_fixed", wiring="full")
    plan = traditional_plan(inst)
    for uid in ("M2.a1", "M2.b1"):
        plan = _shift(plan, uid, 1000)
    a1 = plan.by_unit()["M1.a1"]
    other = "CH2" if a1.channel_id == "CH1" else "CH1"
    bad = _edit(plan, "M1.a2", channel_id=other, start_min=a1.start_min + 5, end_min=a1.start_min + 25)
    assert {K.ORDER, K.STATION_OVERLAP} <= kinds(inst, bad)

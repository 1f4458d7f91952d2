"""Dynamic re-planning: arrivals and overruns (edge/scheduling/replan.py)."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge.scheduling.aco import AcoParams
from edge.scheduling.best import solve
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import InstanceError, instance_from_dict
from edge.scheduling.replan import Disruption, replan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


def _new_module(paper_data, mid, station):
    m = copy.deepcopy(paper_data["modules"][0])
    m["id"], m["station"] = mid, station
    for t in m["tasks"]:
        for u in t["units"]:
            u["id"] = u["id"].replace("M1.", f"{mid}.")
    return m


def _running(paper):
    return solve(paper, "best", time_limit_s=1.5, seed=0).plan


def _assert_kept(old_plan, result, now):
    new_by = result.plan.by_unit()
    old_by = old_plan.by_unit()
    for uid in result.kept:
        o, n = old_by[uid], new_by[uid]
        assert (o.channel_id, o.start_min) == (n.channel_id, n.start_min)
    for p in result.plan.placements:
        if p.unit_id not in result.kept:
            assert p.start_min >= now


def test_new_module_arrives_mid_run(paper, paper_data):
    data = copy.deepcopy(paper_data)
    data["channels"][1]["stations"].append("S6")          # a free station under CH2
    from edge.scheduling.instance import instance_from_dict

    inst = instance_from_dict(data)
    plan = _running(inst)
    now = 400
    res = replan(inst, plan, Disruption(now, new_modules=(_new_module(data, "M6", "S6"),)), time_limit_s=1.5)
    assert check_plan(res.instance, res.plan) == []
    _assert_kept(plan, res, now)
    assert len(res.kept) == sum(1 for p in plan.placements if p.start_min < now)
    m6 = [p for p in res.plan.placements if p.module_id == "M6"]
    assert len(m6) == 7 and min(p.start_min for p in m6) >= now
    assert res.instance.modules[-1].release_min == now
    assert res.solution.lower_bound_min <= res.plan.makespan_min


def test_new_tasks_for_a_running_module(paper, paper_data):
    plan = _running(paper)
    extra = copy.deepcopy(paper_data["modules"][3]["tasks"][1])   # another low-temperature item
    for u in extra["units"]:
        del u["id"]
    res = replan(paper, plan, Disruption(300, new_tasks={"M1": [extra]}), time_limit_s=1.5)
    assert check_plan(res.instance, res.plan) == []
    _assert_kept(plan, res, 300)
    by = res.plan.by_unit()
    assert "M1.T4.U1" in by and by["M1.T4.U1"].start_min > by["M1.T3.U2"].end_min


def test_overrun_pushes_the_rest_and_keeps_what_ran(paper):
    plan = _running(paper)
    # the unit that runs on CH2 at 250 min overruns by 45 min
    running = next(p for p in plan.placements if p.channel_id == "CH2" and p.start_min <= 250 < p.end_min)
    unit = paper.unit_by_id()[running.unit_id]
    res = replan(paper, plan, Disruption(250, overruns={running.unit_id: unit.duration_min + 45}), time_limit_s=1.5)
    assert check_plan(res.instance, res.plan) == []
    _assert_kept(plan, res, 250)
    p = res.plan.by_unit()[running.unit_id]
    assert p.start_min == running.start_min and p.end_min == running.end_min + 45
    assert res.plan.makespan_min >= plan.makespan_min


def test_overrun_releases_units_that_could_not_have_started(paper):
    plan = _running(paper)
    ch2 = [p for p in plan.by_channel()["CH2"]]
    first, second = ch2[0], ch2[1]                      # back to back on CH2 (0-60, 60-120)
    assert first.end_min == second.start_min
    now = second.start_min + 10                          # the plan says `second` has started ...
    res = replan(paper, plan, Disruption(now, overruns={first.unit_id: 60 + 30}), time_limit_s=1.5)
    assert second.unit_id in res.released                # ... but `first` ran 30 min longer
    assert first.unit_id in res.kept
    assert check_plan(res.instance, res.plan) == []
    assert res.plan.by_unit()[second.unit_id].start_min >= first.start_min + 90


def test_bad_disruptions_are_named(paper):
    plan = _running(paper)
    with pytest.raises(InstanceError, match="overruns.M9.T1.U1: no such unit"):
        replan(paper, plan, Disruption(10, overruns={"M9.T1.U1": 90}))
    with pytest.raises(InstanceError, match="new_tasks.M9: no such module"):
        replan(paper, plan, Disruption(10, new_tasks={"M9": []}))
    with pytest.raises(InstanceError, match="S7"):
        bad = {"id": "M7", "station": "S7", "tasks": [{"item": "x", "rest_class_min": 0,
                                                      "units": [{"duration_min": 5}]}]}
        replan(paper, plan, Disruption(10, new_modules=(bad,)))
    with pytest.raises(ValueError):
        Disruption(-1)


def test_colony_replans_too(paper):
    plan = _running(paper)
    res = replan(paper, plan, Disruption(500, overruns={"M5.T1.U1": 61}), method="aco", time_limit_s=2)
    assert check_plan(res.instance, res.plan) == []
    _assert_kept(plan, res, 500)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 5), st.sampled_from(["fixed", "full"]), st.sampled_from(["fixed", "first_fixed"]),
       st.integers(0, 1000), st.floats(0.0, 1.0), st.integers(1, 120), st.booleans())
def test_random_disruptions_give_valid_plans(n, wiring, order, seed, when, extra_min, add_module):
    data = generate_instance(n, wiring, seed, 2, order)
    inst = instance_from_dict(data)
    plan = solve(inst, "aco", 0.2, seed, aco=AcoParams(iterations=2, ants=3)).plan
    now = int(when * plan.makespan_min)
    victim = max(plan.placements, key=lambda p: (p.start_min <= now, p.start_min))
    new_modules = ()
    if add_module:
        extra = generate_instance(1, "fixed", seed + 1)["modules"][0]
        extra["id"], extra["station"] = "MX", data["modules"][0]["station"] + "x"
        for t in extra["tasks"]:
            for u in t["units"]:
                u["id"] = "MX" + u["id"][2:]
        data["channels"][0]["stations"].append(extra["station"])
        inst = instance_from_dict(data)
        new_modules = (extra,)
    d = Disruption(now, new_modules=new_modules,
                   overruns={victim.unit_id: victim.end_min - victim.start_min + extra_min})
    res = replan(inst, plan, d, method="best", time_limit_s=0.3, seed=seed)
    assert check_plan(res.instance, res.plan) == []
    _assert_kept(plan, res, now)

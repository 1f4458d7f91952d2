"""The stronger method, CP-SAT and local search (best.py, cpsat.py, local.py)."""

import logging

import pytest

from edge.scheduling import best as best_mod
from edge.scheduling.best import solve
from edge.scheduling.cpsat import cpsat_available, solve_cpsat
from edge.scheduling.decode import Compiled, decode, greedy_sequence
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict
from edge.scheduling.local import local_search
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


def test_paper_best_is_1080_and_proven(paper):
    sol = solve(paper, "best", time_limit_s=5, seed=0)
    assert sol.makespan_min == 1080 and sol.lower_bound_min == 1080 and sol.optimal
    assert check_plan(paper, sol.plan) == []


@pytest.mark.skipif(not cpsat_available(), reason="ortools not installed")
def test_cpsat_proves_the_paper_optimum_from_the_traditional_hint(paper):
    from edge.scheduling.plan import traditional_plan

    c = Compiled(paper)
    trad = traditional_plan(paper)
    by = trad.by_unit()
    starts = [by[u.id].start_min for u in paper.units]
    chans = [0 if by[u.id].channel_id == "CH1" else 1 for u in paper.units]
    res = solve_cpsat(c, starts, chans, trad.makespan_min, time_limit_s=20, seed=0, workers=1)
    assert res.status == "OPTIMAL" and res.makespan == 1080 and res.bound == 1080
    assert check_plan(paper, c.to_plan(res.starts, res.chans, "cp-sat")) == []


@pytest.mark.skipif(not cpsat_available(), reason="ortools not installed")
def test_cpsat_first_fixed_and_switch_matrix(tiny):
    inst = tiny(task_order="first_fixed", wiring="full")
    c = Compiled(inst)
    s, ch, span = decode(c, greedy_sequence(c))
    res = solve_cpsat(c, s, ch, span, time_limit_s=10, workers=1)
    assert res.status == "OPTIMAL"
    assert check_plan(inst, c.to_plan(res.starts, res.chans, "cp-sat")) == []


def test_local_search_improves_or_keeps_and_is_seeded():
    inst = instance_from_dict(generate_instance(8, "full", seed=5))
    c = Compiled(inst)
    seq = [u for u in range(c.n)]          # the listed order: a poor start
    _, _, start_span = decode(c, seq)
    a = local_search(c, seq, time_limit_s=60, seed=3, max_evaluations=300)
    b = local_search(c, seq, time_limit_s=60, seed=3, max_evaluations=300)
    assert a.makespan <= start_span and a.sequence == b.sequence
    assert check_plan(inst, c.to_plan(a.starts, a.chans, "local")) == []


def test_best_without_ortools_says_so_and_still_plans(monkeypatch, caplog):
    monkeypatch.setattr(best_mod, "cpsat_available", lambda: False)
    monkeypatch.setattr(best_mod, "lower_bound", lambda *a: 0)   # never met: every stage runs
    inst = instance_from_dict(generate_instance(10, "fixed", seed=9))
    with caplog.at_level(logging.WARNING, logger="edge.scheduling.best"):
        sol = solve(inst, "best", time_limit_s=2.0, seed=0)
    assert check_plan(inst, sol.plan) == []
    assert "ortools is not installed" in caplog.text
    assert "cp-sat" not in " ".join(sol.plan.info["stages"])


def test_best_is_no_worse_than_any_stage():
    inst = instance_from_dict(generate_instance(12, "full", seed=11))
    best = solve(inst, "best", time_limit_s=2.0, seed=0)
    stages = best.plan.info["stages"]
    assert stages[0].startswith("greedy ")
    found = [int(s.split()[1]) for s in stages if s.split()[1] != "None"]
    assert best.lower_bound_min <= best.makespan_min == min(found)


@pytest.mark.skipif(not cpsat_available(), reason="ortools not installed")
def test_cpsat_partial_switch_matrix_and_pools(tiny_data):
    from edge.scheduling.cpsat import interchangeable_pools

    full = instance_from_dict(tiny_data(wiring="full"))
    assert interchangeable_pools(Compiled(full)) == [frozenset({0, 1})]
    d = tiny_data()
    d["channels"][0]["stations"] = ["S1", "S2"]        # S2 on both channels, S1 only on CH1
    partial = instance_from_dict(d)
    c = Compiled(partial)
    assert interchangeable_pools(c) == []
    s, ch, span = decode(c, greedy_sequence(c))
    res = solve_cpsat(c, s, ch, span, time_limit_s=10, workers=1)
    assert res.status == "OPTIMAL"
    assert check_plan(partial, c.to_plan(res.starts, res.chans, "cp-sat")) == []

"""Scheduling benchmarks (marker bench; the 200-module ones also slow).

Each records the makespan, the traditional makespan and the lower bound in extra_info, so the
saved benchmark JSON holds the colony, `best` and the bound side by side with the runtimes
(tools/bench_schedule.py prints the same as a table). With --benchmark-disable (the default
test run) every body runs once.
"""

import pytest

from edge.scheduling.aco import AcoParams, run_aco
from edge.scheduling.best import solve
from edge.scheduling.bound import lower_bound
from edge.scheduling.decode import Compiled, decode, greedy_sequence
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict
from edge.scheduling.plan import traditional_plan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.bench

CASES = [(20, "fixed"), (20, "full"), (50, "fixed"), (50, "full"),
         pytest.param(200, "fixed", marks=pytest.mark.slow), pytest.param(200, "full", marks=pytest.mark.slow)]
BEST_LIMIT_S = {20: 2.0, 50: 4.0, 200: 20.0}
COLONY = {20: AcoParams(iterations=5, ants=10), 50: AcoParams(iterations=3, ants=5),
          200: AcoParams(iterations=2, ants=5)}


def _instance(n, wiring):
    return instance_from_dict(generate_instance(n, wiring, seed=1))


def _record(benchmark, inst, plan, lb):
    benchmark.extra_info.update(makespan_min=plan.makespan_min, lower_bound_min=lb,
                                traditional_min=traditional_plan(inst).makespan_min, units=len(inst.units))
    assert check_plan(inst, plan) == []
    assert lb <= plan.makespan_min


@pytest.mark.parametrize("n,wiring", CASES)
def test_bench_decode_greedy(benchmark, n, wiring):
    inst = _instance(n, wiring)
    c = Compiled(inst)
    seq = greedy_sequence(c)
    starts, chans, _ = benchmark(decode, c, seq)
    _record(benchmark, inst, c.to_plan(starts, chans, "greedy"), lower_bound(inst))


@pytest.mark.parametrize("n,wiring", CASES)
def test_bench_colony(benchmark, n, wiring):
    inst = _instance(n, wiring)
    res = benchmark.pedantic(run_aco, args=(inst, COLONY[n], 1), rounds=1, iterations=1)
    benchmark.extra_info.update(iterations=COLONY[n].iterations, ants=COLONY[n].ants)
    _record(benchmark, inst, res.plan, lower_bound(inst))


@pytest.mark.parametrize("n,wiring", CASES)
def test_bench_best(benchmark, n, wiring):
    inst = _instance(n, wiring)
    sol = benchmark.pedantic(solve, args=(inst, "best", BEST_LIMIT_S[n], 1), rounds=1, iterations=1)
    benchmark.extra_info.update(time_limit_s=BEST_LIMIT_S[n], stages=sol.plan.info["stages"])
    _record(benchmark, inst, sol.plan, sol.lower_bound_min)


def test_bench_paper_colony_with_the_papers_parameters(benchmark, paper):
    res = benchmark.pedantic(run_aco, args=(paper, AcoParams(), 0), rounds=1, iterations=1)
    benchmark.extra_info.update(found_at_iteration=res.found_at_iteration)
    _record(benchmark, paper, res.plan, lower_bound(paper))
    assert res.plan.makespan_min == 1080 and res.colony_min == 1080


@pytest.mark.slow
@pytest.mark.parametrize("heuristic", ["rest", "wait"])
def test_paper_colony_over_20_seeds(paper, heuristic):
    spans = []
    for seed in range(20):
        res = run_aco(paper, AcoParams(heuristic=heuristic), seed)
        assert check_plan(paper, res.plan) == []
        spans.append(res.colony_min)          # the ants, not the greedy start (also 1080)
    assert max(spans) <= 1080 and min(spans) == lower_bound(paper) == 1080

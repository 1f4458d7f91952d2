"""Time budgets of `schedule` and every method (edge/scheduling/budget.py, best.py, aco.py,
local.py, cpsat.py, cli.py): limits refused by value, stages that stop at the deadline.

The deadline logic is tested on an injected clock; two tests run a real 0.5 s budget on
instances that took minutes before, with a generous bound (no timed assertion near the
limit). The 2 000-module check is in test_schedule_budget_slow.py (marker slow).
"""

import json
import time

import pytest

from edge.cli import main
from edge.scheduling.aco import AcoParams, Heuristic, run_aco
from edge.scheduling.best import finish_reserve_s, solve
from edge.scheduling.budget import MAX_TIME_LIMIT_S, MIN_TIME_LIMIT_S, Deadline, TimeLimitError, check_time_limit_s
from edge.scheduling.decode import Compiled, decode, greedy_sequence
from edge.scheduling.generate import generate_instance
from edge.scheduling.instance import instance_from_dict
from edge.scheduling.local import local_search
from edge.scheduling.plan import traditional_plan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


class FakeClock:
    """Seconds that move only when told to, or by `step_s` on every reading."""

    def __init__(self, step_s: float = 0.0):
        self.now, self.step_s, self.readings = 0.0, step_s, 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.step_s
        return self.now


class ExpiresAfter:
    """A clock that reads 0 when the deadline is made and at `n` polls after, then far past it."""

    def __init__(self, n: int):
        self.n, self.readings = n, 0

    def __call__(self) -> float:
        self.readings += 1
        return 0.0 if self.readings <= self.n + 1 else 1e9


def _inst(n, wiring, seed=1):
    return instance_from_dict(generate_instance(n, wiring, seed=seed))


# -- the limit itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "0", "-1", "1e-9", "0.049", "86401", "ten"])
def test_time_limit_refused(text, paper_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["schedule", str(paper_path), f"--time-limit={text}"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--time-limit" in err and repr(text) in err
    if text != "ten":
        assert "finite" in err or f"between {MIN_TIME_LIMIT_S} s and {MAX_TIME_LIMIT_S:.0f} s" in err


@pytest.mark.parametrize("value", [MIN_TIME_LIMIT_S, 10, MAX_TIME_LIMIT_S])
def test_time_limit_accepted_at_the_bounds(value):
    assert check_time_limit_s(value) == float(value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0, 1e-9, None])
def test_solve_refuses_a_bad_time_limit(paper, value):
    if value is None:
        assert solve(paper, "best", None).makespan_min == 1080    # None: the default budget
        return
    with pytest.raises(TimeLimitError):
        solve(paper, "best", value)


# -- the deadline -------------------------------------------------------------------------------

def test_deadline_share_and_until_on_an_injected_clock():
    clock = FakeClock()
    d = Deadline(10.0, clock)
    clock.now = 4.0
    assert d.left_s() == pytest.approx(6.0) and not d.expired()
    half = d.share(0.5)
    assert half.end == pytest.approx(7.0)
    assert d.until(12.0).end == d.end and d.until(5.0).end == 5.0
    clock.now = 10.0
    assert d.expired() and d.share(0.5).end == pytest.approx(10.0)


def test_reserve_is_at_most_20_percent_and_grows_with_size():
    assert finish_reserve_s(10.0, 14_000) == pytest.approx(0.4 + 100e-6 * 14_000)
    assert finish_reserve_s(0.5, 14_000) == pytest.approx(0.1)
    assert finish_reserve_s(10.0, 10) < finish_reserve_s(10.0, 1000)


@pytest.mark.parametrize("method", ["best", "aco"])
def test_an_expired_deadline_still_gives_a_valid_plan(method):
    inst = _inst(30, "full")
    clock = ExpiresAfter(0)
    sol = solve(inst, method, 10, seed=1, deadline=Deadline(10, clock))
    assert check_plan(inst, sol.plan) == []
    assert sol.makespan_min <= traditional_plan(inst).makespan_min


def test_best_when_the_greedy_plan_does_not_fit_finishes_it_in_one_pass():
    inst = _inst(40, "full")
    sol = solve(inst, "best", 10, deadline=Deadline(10, ExpiresAfter(0)))
    stages = sol.plan.info["stages"]
    assert stages[0].startswith("greedy ") and stages[0].endswith("(cut at the time limit)")
    assert len(stages) <= 2 and all(s.startswith(("greedy", "traditional")) for s in stages)
    assert sol.makespan_min <= traditional_plan(inst).makespan_min
    assert check_plan(inst, sol.plan) == []


def test_greedy_cut_by_the_deadline_is_still_complete():
    inst = _inst(30, "fixed")
    c = Compiled(inst)
    full = greedy_sequence(c)
    cut = greedy_sequence(c, Deadline(1.0, ExpiresAfter(0)))
    assert sorted(cut) == sorted(full) == list(range(c.n)) and cut[:64] == full[:64] and cut != full


@pytest.mark.parametrize("method", ["best", "aco"])
def test_every_stage_stops_reading_the_clock_soon_after_the_deadline(method):
    # each reading moves the clock 1 ms: a stage that kept polling after the deadline would
    # push `now` far past it
    inst = _inst(30, "full")
    clock = FakeClock(step_s=0.001)
    sol = solve(inst, method, 2.0, seed=2, deadline=Deadline(2.0, clock))
    assert check_plan(inst, sol.plan) == []
    assert clock.now <= 2.0 + 0.2


def test_local_search_stops_at_the_deadline_and_keeps_its_best():
    inst = _inst(20, "full")
    c = Compiled(inst)
    seq = list(range(c.n))
    start = decode(c, seq)[2]
    clock = ExpiresAfter(50)
    res = local_search(c, seq, None, seed=1, deadline=Deadline(1.0, clock))
    assert 1 <= res.evaluations <= 50 and res.makespan <= start
    assert check_plan(inst, c.to_plan(res.starts, res.chans, "local")) == []


def test_local_search_needs_a_limit():
    c = Compiled(_inst(3, "fixed"))
    with pytest.raises(ValueError, match="time limit"):
        local_search(c, list(range(c.n)), None)


# -- aco: the greedy start is the incumbent ------------------------------------------------------

@pytest.mark.parametrize("heuristic", list(Heuristic))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aco_never_returns_worse_than_its_greedy_start(heuristic, seed):
    inst = _inst(12, "full", seed=seed)
    c = Compiled(inst)
    greedy = decode(c, greedy_sequence(c))[2]
    res = run_aco(inst, AcoParams(iterations=3, ants=4, heuristic=heuristic), seed=seed)
    assert res.start_min == greedy and res.plan.makespan_min <= greedy
    assert res.colony_min is not None and check_plan(inst, res.plan) == []
    if res.plan.makespan_min < greedy:
        assert res.found_at_iteration >= 1 and res.plan.makespan_min == res.colony_min


def test_aco_cut_off_mid_ant_returns_the_greedy_plan():
    inst = _inst(60, "full")
    c = Compiled(inst)
    g = greedy_sequence(c)
    clock = ExpiresAfter(2)     # the first ant is cut off at its third poll
    res = run_aco(inst, AcoParams(heuristic=Heuristic.WAIT), seed=0, deadline=Deadline(1.0, clock), start=g)
    assert res.iterations_run == 0 and res.colony_min is None
    assert res.sequence == g and res.plan.makespan_min == decode(c, g)[2]


def test_aco_sparse_pheromone_gives_the_dense_walks(monkeypatch):
    # the sparse store (above DENSE_TAU_MAX_UNITS) holds the same values as the matrix
    from edge.scheduling import aco as aco_mod

    inst = _inst(10, "full", seed=3)
    params = AcoParams(iterations=4, ants=6, stall_iterations=1, converged_share=0.0)
    dense = run_aco(inst, params, seed=5)
    monkeypatch.setattr(aco_mod, "DENSE_TAU_MAX_UNITS", 0)
    sparse = run_aco(inst, params, seed=5)
    assert dense.guard_activations > 0
    assert sparse.colony_sequence == dense.colony_sequence and sparse.best_per_iteration == dense.best_per_iteration


# -- real budgets, generous bounds ---------------------------------------------------------------

def test_best_on_a_half_second_budget_returns_a_valid_plan(capsys, tmp_path):
    # 300 modules with full wiring: `best` ran for minutes before the deadline was polled
    path = tmp_path / "line300.json"
    path.write_text(json.dumps(generate_instance(300, "full", seed=1)))
    t0 = time.perf_counter()
    assert main(["schedule", str(path), "--json", "--time-limit", "0.5"]) == 0
    wall_s = time.perf_counter() - t0
    out = json.loads(capsys.readouterr().out)
    assert out["lower_bound_min"] <= out["makespan_min"] <= out["traditional_makespan_min"]
    assert out["gap_to_bound_pct"] == round(100 * (out["makespan_min"] / out["lower_bound_min"] - 1), 2)
    assert wall_s < 5.0      # generous: the point is minutes -> about 0.5 s


def test_aco_on_a_half_second_budget_returns_at_least_the_greedy_plan():
    # 200 modules with full wiring: the colony took 261 s before and came out worse than greedy
    inst = _inst(200, "full")
    c = Compiled(inst)
    greedy = decode(c, greedy_sequence(c))[2]
    t0 = time.perf_counter()
    sol = solve(inst, "aco", 0.5, seed=0)
    wall_s = time.perf_counter() - t0
    assert sol.makespan_min <= greedy and check_plan(inst, sol.plan) == []
    assert wall_s < 5.0


def test_best_skips_a_colony_that_could_not_finish_five_ants(monkeypatch):
    from edge.scheduling import best as best_mod

    inst = _inst(20, "full")
    monkeypatch.setattr(best_mod, "ANT_S_PER_UNIT_MODULE", 1.0)     # an ant "takes" 2800 s
    sol = solve(inst, "best", 1.0, seed=1, use_cpsat=False)
    assert any(s.startswith("aco skipped (an ant would take about 2800.0 s)") for s in sol.plan.info["stages"])
    assert check_plan(inst, sol.plan) == []


def test_gantt_of_400_channels_is_bounded(tmp_path):
    import struct

    from edge.scheduling.gantt import MAX_HEIGHT_IN, write_gantt

    inst = instance_from_dict(generate_instance(400, "full", seed=1, stations_per_channel=1))
    c = Compiled(inst)
    s, ch, _ = decode(c, greedy_sequence(c))
    png = write_gantt(inst, c.to_plan(s, ch, "greedy"), tmp_path / "g.png")
    width_px, height_px = struct.unpack(">II", png.read_bytes()[16:24])
    assert len(inst.channels) == 400 and height_px <= MAX_HEIGHT_IN * 110 + 1 and width_px == 12 * 110


def test_gantt_is_drawn_inside_the_budget():
    from edge.scheduling.cli import gantt_reserve_s

    assert gantt_reserve_s(10.0, 14_000) == pytest.approx(0.5 + 80e-6 * 14_000)
    assert gantt_reserve_s(1.0, 14_000) == pytest.approx(0.3)


def test_cpsat_gives_up_when_its_model_build_used_the_time():
    from edge.scheduling.cpsat import cpsat_available, solve_cpsat

    if not cpsat_available():
        pytest.skip("ortools not installed")
    inst = _inst(10, "full")
    c = Compiled(inst)
    s, ch, span = decode(c, greedy_sequence(c))
    res = solve_cpsat(c, s, ch, span, None, deadline=Deadline(5.0, ExpiresAfter(0)))
    assert res.status == "NO_TIME" and res.makespan is None and res.bound == 0
    ok = solve_cpsat(c, s, ch, span, 5.0, workers=1)
    assert ok.makespan is not None and ok.makespan <= span

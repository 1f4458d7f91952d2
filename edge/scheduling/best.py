"""The stronger method (`--method best`) and the one entry point every caller uses: `solve`.

`best` = the greedy dispatching plan (`decode.greedy_sequence`: always the unit that can start
first), then, unless that meets the lower bound, a short colony run started from it (the
paper's parameters with the dynamic heuristic `wait`, a third of the time left, ended early at
the bound; skipped when fewer than MIN_ANTS ants would fit, e.g. 2 000 modules in 10 s) and the traditional plan; local search from the best of these (half of what is
left); then CP-SAT hinted with the best plan so far for the rest of the time when ortools is
installed and the rest is enough to build its model (otherwise local search for the rest, said
in a log line). It returns the best plan found and the best bound: max(`bound.lower_bound`,
CP-SAT's proven bound); it stops early when the plan meets the bound (proven optimal).

Every stage polls one `budget.Deadline`: the call returns its best plan at the time limit
(the part kept for validation and output, `finish_reserve_s`, included). When even the greedy
plan does not fit, its rest is placed in first-eligible order and the traditional plan is
taken if that is shorter.

Every plan leaves `solve` validated (`validate.assert_valid`). Tests:
tests/edge/scheduling/test_schedule_best.py, test_schedule_budget.py, test_schedule_budget_slow.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from enum import Enum

from edge.scheduling.aco import AcoParams, Heuristic, run_aco
from edge.scheduling.bound import lower_bound
from edge.scheduling.cpsat import cpsat_available, solve_cpsat
from edge.scheduling.budget import Deadline, check_time_limit_s
from edge.scheduling.decode import Compiled, Frozen, decode, greedy_sequence
from edge.scheduling.instance import Instance
from edge.scheduling.local import local_search
from edge.scheduling.plan import Placement, Plan, traditional_plan
from edge.scheduling.validate import assert_valid

log = logging.getLogger(__name__)


class Method(str, Enum):
    ACO = "aco"
    BEST = "best"


@dataclass(frozen=True)
class Solution:
    plan: Plan
    lower_bound_min: int
    runtime_s: float
    optimal: bool

    @property
    def makespan_min(self) -> int:
        return self.plan.makespan_min

    @property
    def gap_pct(self) -> float:
        lb = self.lower_bound_min
        return 0.0 if lb <= 0 else round(100.0 * (self.makespan_min - lb) / lb, 2)


DEFAULT_TIME_LIMIT_S = 10.0
DEFAULT_BEST_LIMIT_S = DEFAULT_TIME_LIMIT_S   # the name callers used before aco had a default budget
FINISH_S_PER_UNIT = 100e-6    # what is left after the search (validation, the plan's JSON, the
                              # traditional plan): measured 0.4 s on 14 000 units on an idle
                              # machine, 1.1 s on a loaded one
STARTUP_S = 0.4
ANT_S_PER_UNIT_MODULE = 1.2e-6    # one ant with the `wait` heuristic: measured 0.33 s at 200 modules,
MIN_ANTS = 5                      # 1.8 s at 500; the colony stage is skipped below MIN_ANTS ants
CPSAT_BUILD_S_PER_UNIT = 100e-6   # CP-SAT is skipped when less than this per unit is left


def finish_reserve_s(time_limit_s: float, n_units: int) -> float:
    """The part of the budget kept for the work after the search and for the process start
    before the command's clock starts (0.2 to 1 s here; edge/cli.py imports every command
    first): at most 20 % of the budget."""
    return min(0.2 * time_limit_s, STARTUP_S + FINISH_S_PER_UNIT * n_units)


def solve(instance: Instance, method: Method | str = Method.BEST, time_limit_s: float | None = None, seed: int = 0,
          aco: AcoParams = AcoParams(), frozen: Frozen | None = None, workers: int = 2,
          use_cpsat: bool = True, deadline: Deadline | None = None) -> Solution:
    """Plan `instance` with `method`; `frozen` keeps started units (re-planning).

    `time_limit_s` (checked by `budget.check_time_limit_s`; None: DEFAULT_TIME_LIMIT_S) is the
    budget of the whole call, counted from `deadline`'s start when the caller already spent
    some of it (the CLI: loading): every stage polls the deadline, and the best plan so far is
    returned, validated, at the end of it. `aco` also ends at its t_max; both end early on a
    plan that meets the lower bound (proven optimal)."""
    method = Method(method)
    limit = DEFAULT_TIME_LIMIT_S if time_limit_s is None else check_time_limit_s(time_limit_s)
    if deadline is None:
        deadline = Deadline(limit)
    t0 = time.perf_counter()
    search = deadline.until(deadline.end - finish_reserve_s(limit, len(instance.units)))
    c = Compiled(instance, frozen)
    lb = lower_bound(instance, frozen, c)
    if method is Method.ACO:
        plan = run_aco(instance, aco, seed, frozen, stop_at_min=lb, deadline=search, compiled=c).plan
        bound = lb
    else:
        plan, bound = _best(c, search, seed, aco, frozen, lb, workers, use_cpsat)
    _check(instance, plan, frozen)
    return Solution(plan, bound, time.perf_counter() - t0, plan.makespan_min <= bound)


def _check(instance: Instance, plan: Plan, frozen: Frozen | None) -> None:
    if frozen is None:
        assert_valid(instance, plan)
        return
    units = instance.units
    fixed = {units[u].id: Placement(units[u].id, instance.modules[units[u].module].id,
                                    instance.channels[ch].id, st, st + units[u].duration_min)
             for u, (ch, st) in frozen.placed.items()}
    assert_valid(instance, plan, fixed, frozen.not_before_min)


def _best(c: Compiled, deadline: Deadline, seed: int, aco: AcoParams, frozen: Frozen | None,
          lb: int, workers: int, use_cpsat: bool) -> tuple[Plan, int]:
    instance = c.instance
    cp_ok = use_cpsat and cpsat_available()
    if use_cpsat and not cp_ok:
        log.warning("ortools is not installed: `best` runs local search only "
                    "(pip install 'discharge-edge[sched]' for CP-SAT)")
    # a deterministic dispatching plan first: often already optimal, and a good seed; the
    # traditional plan (or, re-planning, the first eligible order) is the floor when even the
    # greedy plan does not fit in the budget
    g_seq = greedy_sequence(c, deadline)
    starts, chans, span = decode(c, g_seq)
    seed_seq, stages = g_seq, [f"greedy {span}" + (" (cut at the time limit)" if deadline.expired() else "")]
    colony_deadline = deadline.share(1 / 3)
    ant_s = ANT_S_PER_UNIT_MODULE * c.n * len(instance.modules)
    if span > lb and not colony_deadline.expired() and MIN_ANTS * ant_s > colony_deadline.left_s():
        stages.append(f"aco skipped (an ant would take about {ant_s:.1f} s)")
    elif span > lb and not colony_deadline.expired():
        colony = run_aco(instance, replace(aco, time_limit_s=None, heuristic=Heuristic.WAIT),
                         seed, frozen, stop_at_min=lb, deadline=colony_deadline, start=g_seq, compiled=c)
        stages.append(f"aco {colony.plan.makespan_min} ({colony.iterations_run} iterations)")
        if colony.plan.makespan_min < span:
            (starts, chans, span), seed_seq = _starts_of(c, colony.plan), colony.sequence
    if frozen is None and span > lb:
        trad = traditional_plan(instance)
        if trad.makespan_min < span:
            (starts, chans, span), seed_seq = _starts_of(c, trad), None
            stages.append(f"traditional {span}")
    if span > lb and not deadline.expired():
        ls = local_search(c, seed_seq or _sequence_of(c, starts), None, seed, target=lb,
                          deadline=deadline.share(0.5))
        if ls.makespan < span:
            starts, chans, span = ls.starts, ls.chans, ls.makespan
        stages.append(f"local {ls.makespan} ({ls.evaluations} moves)")
    bound = lb
    left = deadline.left_s()
    if span > lb and left > 0.05:
        if cp_ok and left > CPSAT_BUILD_S_PER_UNIT * c.n:
            cp = solve_cpsat(c, starts, chans, span, None, seed, workers, deadline=deadline)
            bound = max(bound, cp.bound)
            if cp.makespan is not None and cp.makespan < span:
                starts, chans, span = cp.starts, cp.chans, cp.makespan
            stages.append(f"cp-sat {cp.makespan} bound {cp.bound} ({cp.status})")
        else:
            ls = local_search(c, _sequence_of(c, starts), None, seed + 1, target=lb, deadline=deadline)
            if ls.makespan < span:
                starts, chans, span = ls.starts, ls.chans, ls.makespan
            stages.append(f"local {ls.makespan} ({ls.evaluations} moves)")
    log.info("best: %s; bound %d", " -> ".join(stages), bound)
    return c.to_plan(starts, chans, "best", {"seed": seed, "stages": stages}), bound


def _starts_of(c: Compiled, plan: Plan) -> tuple[list[int], list[int], int]:
    by_unit = plan.by_unit()
    ch_index = {ch.id: ch.index for ch in c.instance.channels}
    starts = [by_unit[u.id].start_min for u in c.instance.units]
    chans = [ch_index[by_unit[u.id].channel_id] for u in c.instance.units]
    return starts, chans, plan.makespan_min


def _sequence_of(c: Compiled, starts: list[int]) -> list[int]:
    """A decoder sequence from a schedule: free units by start time (module order kept)."""
    return sorted(c.free, key=lambda u: (starts[u], u))

"""The stronger method (`--method best`) and the one entry point every caller uses: `solve`.

`best` = the greedy dispatching plan (`decode.greedy_sequence`: always the unit that can start
first), then, unless that meets the lower bound, a short colony run (the paper's parameters with
the dynamic heuristic `wait`, at most a quarter of the time limit, ended early at the bound) and
the traditional plan; local search from the best of these (another quarter); then CP-SAT
hinted with the best plan so far for the rest of the time when ortools is installed (otherwise local search for the rest, said in a
log line). It returns the best plan found and the best bound: max(`bound.lower_bound`, CP-SAT's
proven bound); it stops early when the plan meets the bound (proven optimal).

Every plan leaves `solve` validated (`validate.assert_valid`). Tests:
tests/edge/scheduling/test_schedule_best.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from enum import Enum

from edge.scheduling.aco import AcoParams, Heuristic, run_aco
from edge.scheduling.bound import lower_bound
from edge.scheduling.cpsat import cpsat_available, solve_cpsat
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


DEFAULT_BEST_LIMIT_S = 10.0


def solve(instance: Instance, method: Method | str = Method.BEST, time_limit_s: float | None = None, seed: int = 0,
          aco: AcoParams = AcoParams(), frozen: Frozen | None = None, workers: int = 2,
          use_cpsat: bool = True) -> Solution:
    """Plan `instance` with `method`; `frozen` keeps started units (re-planning).

    `time_limit_s`: for `aco` a cap on top of the iteration count (None: the full t_max);
    for `best` the total budget (None: DEFAULT_BEST_LIMIT_S)."""
    method = Method(method)
    t0 = time.perf_counter()
    lb = lower_bound(instance, frozen)
    if method is Method.ACO:
        params = aco if time_limit_s is None else replace(aco, time_limit_s=time_limit_s)
        plan = run_aco(instance, params, seed, frozen).plan
        bound = lb
    else:
        limit = DEFAULT_BEST_LIMIT_S if time_limit_s is None else time_limit_s
        plan, bound = _best(instance, limit, seed, aco, frozen, lb, workers, use_cpsat)
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


def _best(instance: Instance, time_limit_s: float, seed: int, aco: AcoParams, frozen: Frozen | None,
          lb: int, workers: int, use_cpsat: bool) -> tuple[Plan, int]:
    t0 = time.perf_counter()
    cp_ok = use_cpsat and cpsat_available()
    if use_cpsat and not cp_ok:
        log.warning("ortools is not installed: `best` runs local search only "
                    "(pip install 'discharge-edge[sched]' for CP-SAT)")
    c = Compiled(instance, frozen)
    # a deterministic dispatching plan first: often already optimal, and a good seed
    g_seq = greedy_sequence(c)
    starts, chans, span = decode(c, g_seq)
    seed_seq, stages = g_seq, [f"greedy {span}"]
    if span > lb:
        colony = run_aco(instance, replace(aco, time_limit_s=0.25 * time_limit_s, heuristic=Heuristic.WAIT),
                         seed, frozen, stop_at_min=lb)
        stages.append(f"aco {colony.plan.makespan_min}")
        if colony.plan.makespan_min < span:
            (starts, chans, span), seed_seq = _starts_of(c, colony.plan), colony.sequence
    if frozen is None and span > lb:
        trad = traditional_plan(instance)
        if trad.makespan_min < span:
            (starts, chans, span), seed_seq = _starts_of(c, trad), None
            stages.append(f"traditional {span}")
    if span > lb:
        ls = local_search(c, seed_seq or _sequence_of(c, starts), 0.25 * time_limit_s, seed, target=lb)
        if ls.makespan < span:
            starts, chans, span = ls.starts, ls.chans, ls.makespan
        stages.append(f"local {ls.makespan} ({ls.evaluations} moves)")
    bound = lb
    left = time_limit_s - (time.perf_counter() - t0)
    if span > lb and left > 0.05:
        if cp_ok:
            cp = solve_cpsat(c, starts, chans, span, left, seed, workers)
            bound = max(bound, cp.bound)
            if cp.makespan is not None and cp.makespan < span:
                starts, chans, span = cp.starts, cp.chans, cp.makespan
            stages.append(f"cp-sat {cp.makespan} bound {cp.bound} ({cp.status})")
        else:
            ls = local_search(c, _sequence_of(c, starts), left, seed + 1, target=lb)
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

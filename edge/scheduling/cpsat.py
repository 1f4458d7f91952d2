"""The exact model with OR-Tools CP-SAT (optional dependency, extra `sched`).

Variables: a start per free unit; for a station wired to several channels, one presence literal
per wired channel (exactly one true) and an optional interval on each. Constraints: NoOverlap
per channel (placed units of re-planning are fixed intervals there); each module's chain
(start_next >= end_prev + max(prev.rest_after, next.rest_before)); with task_order first_fixed,
the first task first and a pairwise order literal between any two other tasks (the rest between
non-consecutive tasks is implied by the ones in between); release and re-planning time.
Objective: the makespan, hinted with a heuristic plan and capped by its makespan.

`cpsat_available()` tells whether ortools imports. Tests: tests/edge/scheduling/test_schedule_best.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from edge.scheduling.budget import Deadline
from edge.scheduling.decode import Compiled

log = logging.getLogger(__name__)


def cpsat_available() -> bool:
    try:
        from ortools.sat.python import cp_model  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class CpResult:
    starts: list[int] | None
    chans: list[int] | None
    makespan: int | None
    bound: int
    status: str
    wall_s: float


def solve_cpsat(c: Compiled, hint_starts: list[int], hint_chans: list[int], hint_makespan: int,
                time_limit_s: float | None, seed: int = 0, workers: int = 2,
                deadline: Deadline | None = None) -> CpResult:
    """The model solved until `time_limit_s` or `deadline` (the earlier; the model build counts)."""
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    if time_limit_s is not None:
        own = Deadline(time_limit_s)
        deadline = own if deadline is None else deadline.until(own.end)
    if deadline is None:
        raise ValueError("solve_cpsat needs a time limit or a deadline")
    model = cp_model.CpModel()
    horizon = hint_makespan
    frozen = c.frozen.placed
    start, end = {}, {}
    presence: dict[int, dict[int, object]] = {}
    per_channel: dict[int, list] = {ch: [] for ch in range(c.n_channels)}
    pools = interchangeable_pools(c)
    pool_of = {ch: pool for pool in pools for ch in pool}
    per_pool: dict[frozenset, list] = {pool: [] for pool in pools}
    for u, (ch, st) in frozen.items():
        start[u], end[u] = st, st + c.dur[u]
        iv = model.NewFixedSizeIntervalVar(st, c.dur[u], f"fixed{u}")
        (per_pool[pool_of[ch]] if ch in pool_of else per_channel[ch]).append(iv)
    earliest = max(c.frozen.not_before_min, 0)
    for u in c.free:
        lo = max(earliest, c.release[c.module[u]])
        s = model.NewIntVar(lo, max(lo, horizon - c.dur[u]), f"s{u}")
        start[u], end[u] = s, s + c.dur[u]
        if len(c.chans[u]) == 1:
            per_channel[c.chans[u][0]].append(model.NewFixedSizeIntervalVar(s, c.dur[u], f"i{u}"))
        elif c.chans[u][0] in pool_of:
            per_pool[pool_of[c.chans[u][0]]].append(model.NewFixedSizeIntervalVar(s, c.dur[u], f"p{u}"))
        else:
            lits = {}
            for ch in c.chans[u]:
                lit = model.NewBoolVar(f"x{u}_{ch}")
                lits[ch] = lit
                per_channel[ch].append(model.NewOptionalFixedSizeIntervalVar(s, c.dur[u], lit, f"o{u}_{ch}"))
            model.AddExactlyOne(lits.values())
            presence[u] = lits
    for ivs in per_channel.values():
        if len(ivs) > 1:
            model.AddNoOverlap(ivs)
    for pool, ivs in per_pool.items():
        model.AddCumulative(ivs, [1] * len(ivs), len(pool))
    for m, tasks in enumerate(c.tasks):
        _module_constraints(model, c, m, tasks, start, end)
    makespan = model.NewIntVar(0, horizon, "makespan")
    model.AddMaxEquality(makespan, [end[u] for u in range(c.n)])
    model.Minimize(makespan)
    for u in c.free:
        model.AddHint(start[u], hint_starts[u])
        for ch, lit in presence.get(u, {}).items():
            model.AddHint(lit, ch == hint_chans[u])

    left_s = deadline.left_s()
    if left_s < 0.05:
        log.info("cp-sat: the model build used the time (%.2f s)", time.perf_counter() - t0)
        return CpResult(None, None, None, 0, "NO_TIME", time.perf_counter() - t0)
    solver = cp_model.CpSolver()
    # the model build counts against the limit
    solver.parameters.max_time_in_seconds = left_s
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.Solve(model)
    name = solver.StatusName(status)
    bound = int(round(solver.BestObjectiveBound())) if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else 0
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        log.info("cp-sat: no solution within %.1f s (%s)", left_s, name)
        return CpResult(None, None, None, bound, name, solver.WallTime())
    starts = [0] * c.n
    chans = [0] * c.n
    for u in range(c.n):
        if u in frozen:
            chans[u], starts[u] = frozen[u]
            continue
        starts[u] = solver.Value(start[u])
        if u in presence:
            chans[u] = next(ch for ch, lit in presence[u].items() if solver.BooleanValue(lit))
        else:
            chans[u] = c.chans[u][0]
    for pool in pools:
        _colour_pool(c, pool, starts, chans)
    return CpResult(starts, chans, int(solver.Value(makespan)), bound, name, solver.WallTime())


def interchangeable_pools(c: Compiled) -> list[frozenset]:
    """Channel sets that every unit able to use one of them can use all of (a full switch
    matrix). On such a pool "one unit per channel" is exactly "at most k units at once" (an
    interval graph with clique size <= k is k-colourable), so CP-SAT gets one cumulative
    constraint instead of k optional intervals per unit; channels are assigned afterwards."""
    sets = {frozenset(chs) for chs in c.chans}
    pools = []
    for s in sets:
        if len(s) > 1 and all(other == s or not (other & s) for other in sets):
            pools.append(s)
    return pools


def _colour_pool(c: Compiled, pool: frozenset, starts: list[int], chans: list[int]) -> None:
    """Give each unit of the pool a channel: by start time, to a channel free since (the
    units kept by re-planning keep theirs; they all start before any free unit)."""
    free_at = {ch: 0 for ch in pool}
    frozen = c.frozen.placed
    members = [u for u in range(c.n) if (frozen[u][0] if u in frozen else c.chans[u][0]) in pool]
    for u in sorted(members, key=lambda u: (starts[u], u not in frozen, u)):
        if u in frozen:
            ch = frozen[u][0]
        else:
            ch = min((ch for ch in sorted(pool) if free_at[ch] <= starts[u]), key=lambda ch: -free_at[ch])
        chans[u] = ch
        free_at[ch] = max(free_at[ch], starts[u] + c.dur[u])


def _module_constraints(model, c: Compiled, m: int, tasks: list[list[int]], start: dict, end: dict) -> None:
    frozen = c.frozen.placed
    done = sorted((u for t in tasks for u in t if u in frozen), key=lambda u: frozen[u][1])
    last = done[-1] if done else None
    # within each task: the chain
    for t in tasks:
        for a, b in zip(t, t[1:]):
            if b not in frozen:
                model.Add(start[b] >= end[a] + c.rest(a, b))
    if not c.first_fixed:
        for t_prev, t_next in zip(tasks, tasks[1:]):
            a, b = t_prev[-1], t_next[0]
            if b not in frozen:
                model.Add(start[b] >= end[a] + c.rest(a, b))
        return
    # first_fixed: blocks. Tasks already begun stay before the ones not begun.
    begun = [k for k, t in enumerate(tasks) if any(u in frozen for u in t)]
    open_tasks = [k for k, t in enumerate(tasks) if k not in begun]
    in_progress = [k for k in begun if not all(u in frozen for u in tasks[k])]
    anchors = [tasks[k][-1] for k in in_progress] or ([last] if last is not None else [])
    for k in open_tasks:
        b = tasks[k][0]
        for a in anchors:
            model.Add(start[b] >= end[a] + c.rest(a, b))
    if 0 in open_tasks:
        for k in open_tasks:
            if k != 0:
                a, b = tasks[0][-1], tasks[k][0]
                model.Add(start[b] >= end[a] + c.rest(a, b))
    others = [k for k in open_tasks if k != 0]
    for i, ka in enumerate(others):
        for kb in others[i + 1:]:
            lit = model.NewBoolVar(f"ord{m}_{ka}_{kb}")
            a_last, a_first, b_last, b_first = tasks[ka][-1], tasks[ka][0], tasks[kb][-1], tasks[kb][0]
            model.Add(start[b_first] >= end[a_last] + c.rest(a_last, b_first)).OnlyEnforceIf(lit)
            model.Add(start[a_first] >= end[b_last] + c.rest(b_last, a_first)).OnlyEnforceIf(lit.Not())

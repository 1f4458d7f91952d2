"""The paper's ant colony (Cai & Liu 2022, sec. 2.2), seeded and reproducible.

An ant walks over the task units: from the unit P_x it last took, it moves to an allowed unit
P_y (the next unit of some module; `decode.Builder.eligible`) with probability

    p_xy = tau_xy^alpha * eta_y^beta / sum_{allowed} tau_xs^alpha * eta_s^beta,
    eta_y = 1 / w_y,

where w_y is the wait unit P_y requires before it (the rest W from the module's previous unit,
max(prev.min_rest_after_min, y.min_rest_before_min); for a module's first unit its
min_rest_before_min, as the instance notes fix it; a zero wait counts as 1 min to avoid 1/0).
The walk is the paper's path R; the shared decoder turns it into start times (F_l).

After each iteration the pheromone evaporates and every ant z deposits on the edges of its path
(ant-cycle Ant System): tau <- (1 - rho) tau + sum_z Q / L_z. The initial pheromone is
tau0 = ants * Q / L_trad (Dorigo's m / C_nn, the traditional plan as the reference tour).

Guard against early convergence (the paper: when the colony falls into a local optimum early,
slow down the pheromone accumulation on that best path): when the best makespan has not
improved for `stall_iterations` iterations while at least `converged_share` of the iteration's
ants reproduce it, deposits on the edges of the best path are multiplied by `guard_factor`
for that iteration.

Not the paper's: the greedy dispatching plan is the incumbent (the colony never returns a worse
plan); the run ends at a deadline, checked inside every ant; above DENSE_TAU_MAX_UNITS units the
pheromone is stored sparse (same values, memory by walked edges).

Defaults are the paper's: t_max=50, 50 ants, alpha=1, beta=5, rho=0.1, Q=1.
Tests: tests/edge/scheduling/test_schedule_aco.py, test_schedule_budget.py (deadline, incumbent).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edge.scheduling.budget import Deadline
from edge.scheduling.decode import Builder, Compiled, Frozen, decode, greedy_sequence
from edge.scheduling.instance import Instance
from edge.scheduling.plan import Plan, module_chain_min, traditional_plan

log = logging.getLogger(__name__)


class Heuristic(str, Enum):
    REST = "rest"   # w_y = the rest required before y (static; the instance notes' reading)
    WAIT = "wait"   # w_y = 1 + how long y would still wait in the ant's partial plan (dynamic)


@dataclass(frozen=True)
class AcoParams:
    iterations: int = 50        # t_max
    ants: int = 50              # Z
    alpha: float = 1.0
    beta: float = 5.0
    rho: float = 0.1
    q: float = 1.0
    stall_iterations: int = 5
    converged_share: float = 0.5
    guard_factor: float = 0.5
    heuristic: Heuristic = Heuristic.REST
    time_limit_s: float | None = None   # wall clock; checked inside every ant (the iteration
                                        # in progress is updated with the ants it finished)

    def __post_init__(self):
        if self.iterations < 1 or self.ants < 1:
            raise ValueError(f"iterations and ants must be >= 1, got {self.iterations}, {self.ants}")
        if not 0.0 < self.rho <= 1.0:
            raise ValueError(f"rho must be in (0, 1], got {self.rho}")
        if self.q <= 0 or self.alpha < 0 or self.beta < 0:
            raise ValueError("q must be > 0, alpha and beta >= 0")
        if not 0.0 < self.guard_factor <= 1.0:
            raise ValueError(f"guard_factor must be in (0, 1], got {self.guard_factor}")


@dataclass
class AcoResult:
    plan: Plan
    sequence: list[int]
    best_per_iteration: list[int] = field(default_factory=list)
    found_at_iteration: int = 0
    guard_activations: int = 0
    iterations_run: int = 0
    runtime_s: float = 0.0
    start_min: int = 0          # the greedy incumbent's makespan
    colony_min: int | None = None          # the best ant's makespan (None: no ant finished)
    colony_sequence: list[int] = field(default_factory=list)   # and its walk


def required_wait_min(c: Compiled) -> np.ndarray:
    """w_y per unit: the rest required before it in its module's listed order (>= 1)."""
    w = np.ones(c.n)
    for m_tasks in c.tasks:
        flat = [u for t in m_tasks for u in t]
        for i, u in enumerate(flat):
            w[u] = max(1, c.rest(flat[i - 1], u) if i else c.before[u])
    return w


DENSE_TAU_MAX_UNITS = 2000   # above: the pheromone is kept sparse ((n+1) x n doubles would be
                             # 1.6 GB at 14 000 units)
_POLL_STEPS = 128            # an ant checks the deadline every this many placements


def run_aco(instance: Instance, params: AcoParams = AcoParams(), seed: int = 0,
            frozen: Frozen | None = None, stop_at_min: int | None = None,
            deadline: Deadline | None = None, start: list[int] | None = None,
            compiled: Compiled | None = None) -> AcoResult:
    """The colony on `instance`; the same seed gives the same plan (with a deadline, how many
    ants run depends on the machine). `stop_at_min` (not the paper's; `best` passes its lower
    bound) ends the run after an iteration that reaches it.

    The incumbent is the greedy dispatching plan (`decode.greedy_sequence`, or `start` when the
    caller has it), so the colony never returns anything worse. The run ends at t_max, at the
    deadline (`deadline` or params.time_limit_s, the earlier), checked inside every ant: an ant
    cut off by it is dropped."""
    t_begin = time.perf_counter()
    if params.time_limit_s is not None:
        own = Deadline(params.time_limit_s)
        deadline = own if deadline is None else deadline.until(own.end)
    c = compiled if compiled is not None else Compiled(instance, frozen)
    rng = random.Random(seed)
    n = c.n
    best_seq = start if start is not None else greedy_sequence(c, deadline)
    best_starts, best_chans, best_span = decode(c, best_seq)
    res = AcoResult(plan=None, sequence=[], start_min=best_span)  # type: ignore[arg-type]
    done = (stop_at_min is not None and best_span <= stop_at_min) or (deadline is not None and deadline.expired())
    if done:
        return _result(c, res, best_seq, best_starts, best_chans, seed, params, t_begin)
    eta_beta = required_wait_min(c) ** (-params.beta)
    eta_list = eta_beta.tolist()
    tau0 = params.ants * params.q / _reference_makespan(instance, c)
    tau = _DenseTau(n, tau0) if n <= DENSE_TAU_MAX_UNITS else _SparseTau(n, tau0)
    start_node = n

    stall = 0
    for it in range(params.iterations):
        paths, spans = [], []
        tau.begin_iteration()
        for _ in range(params.ants):
            built = _construct(c, tau, eta_beta, eta_list, params, start_node, rng, deadline)
            if built is None:
                break
            b, seq = built
            paths.append(seq)
            spans.append(b.makespan)
            if res.colony_min is None or b.makespan < res.colony_min:
                res.colony_min, res.colony_sequence = b.makespan, seq
            if b.makespan < best_span:
                best_span, best_seq, best_starts, best_chans = b.makespan, seq, b.starts, b.chan_of
                res.found_at_iteration = it + 1
                stall = -1
            if deadline is not None and deadline.expired():
                break
        if paths:
            stall += 1
            share = sum(1 for s in spans if s == best_span) / len(spans)
            guard = stall >= params.stall_iterations and share >= params.converged_share
            res.guard_activations += int(guard)
            tau.update(paths, spans, params, start_node, best_seq if guard else None)
            res.best_per_iteration.append(best_span)
            res.iterations_run = it + 1
        if stop_at_min is not None and best_span <= stop_at_min:
            break
        if deadline is not None and deadline.expired():
            log.info("aco: deadline reached after %d iterations", it + 1)
            break
    return _result(c, res, best_seq, best_starts, best_chans, seed, params, t_begin)


def _result(c: Compiled, res: AcoResult, seq: list[int], starts: list[int], chans: list[int], seed: int,
            params: AcoParams, t_begin: float) -> AcoResult:
    res.runtime_s = time.perf_counter() - t_begin
    res.sequence = seq
    res.plan = c.to_plan(starts, chans, "aco",
                         {"seed": seed, "iterations": res.iterations_run, "ants": params.ants,
                          "start_min": res.start_min, "found_at_iteration": res.found_at_iteration,
                          "guard_activations": res.guard_activations})
    return res


def _reference_makespan(instance: Instance, c: Compiled) -> float:
    if not c.frozen.placed and all(m.release_min == 0 for m in instance.modules):
        return float(traditional_plan(instance).makespan_min)
    # re-planning: a rough serial length is enough to scale tau0
    return float(sum(module_chain_min(instance, m.index) for m in instance.modules) + c.frozen.not_before_min)


def _construct(c: Compiled, tau, eta_beta: np.ndarray, eta_list: list[float], p: AcoParams, start_node: int,
               rng: random.Random, deadline: Deadline | None = None) -> tuple[Builder, list[int]] | None:
    """One ant's walk, or None when the deadline passes during it."""
    b = Builder(c)
    prev = start_node
    seq: list[int] = []
    alpha, dynamic = p.alpha, p.heuristic is Heuristic.WAIT
    step = 0
    while True:
        allowed = b.eligible
        if not allowed:
            break
        step += 1
        if deadline is not None and step % _POLL_STEPS == 0 and deadline.expired():
            return None
        if len(allowed) == 1:
            y = allowed[0]
        elif dynamic or len(allowed) <= 32:   # small sets: plain Python beats numpy's overhead
            row = tau.row(prev)
            if dynamic:
                est = [b.best_slot(e)[0] for e in allowed]
                now = min(est)
                etas = [(1.0 + t - now) ** -p.beta for t in est]
                if deadline is not None and len(allowed) > _POLL_STEPS and deadline.expired():
                    return None
            else:
                etas = [eta_list[e] for e in allowed]
            weights = [(row[e] if alpha == 1.0 else row[e] ** alpha) * h for e, h in zip(allowed, etas)]
            r = rng.random() * sum(weights)
            y = allowed[-1]
            for e, w in zip(allowed, weights):
                r -= w
                if r < 0.0:
                    y = e
                    break
        else:
            idx = np.fromiter(allowed, dtype=np.intp, count=len(allowed))
            tr = tau.take(prev, idx)
            weights = (tr if alpha == 1.0 else tr ** alpha) * eta_beta[idx]
            cum = np.cumsum(weights)
            k = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
            y = allowed[min(k, len(allowed) - 1)]
        b.place(y)
        seq.append(y)
        prev = y
    return b, seq


class _DenseTau:
    """tau as an (n+1) x n matrix (row n: the start node)."""

    def __init__(self, n: int, tau0: float):
        self.m = np.full((n + 1, n), tau0)
        self._rows = None

    def begin_iteration(self) -> None:
        self._rows = self.m.tolist() if self.m.shape[1] <= 400 else self.m   # numpy rows index fine for big n

    def row(self, prev: int):
        return self._rows[prev]

    def take(self, prev: int, idx: np.ndarray) -> np.ndarray:
        return self.m[prev, idx]

    def update(self, paths, spans, p: AcoParams, start_node: int, guarded_path) -> None:
        _update(self.m, paths, spans, p, start_node, guarded_path)


class _SparseTau:
    """tau = scale * stored; an edge no ant walked holds stored = tau0. Evaporation scales
    `scale`, a deposit d adds d / scale to the edge: the same values as the dense matrix in
    memory that grows with the edges walked, not with n^2."""

    class _Row:
        def __init__(self, d: dict[int, float] | None, tau0: float, scale: float):
            self.d, self.tau0, self.scale = d or {}, tau0, scale

        def __getitem__(self, e: int) -> float:
            return self.scale * self.d.get(e, self.tau0)

    def __init__(self, n: int, tau0: float):
        self.tau0, self.scale = tau0, 1.0
        self.rows: dict[int, dict[int, float]] = {}
        self._scratch = np.full(n, tau0)

    def begin_iteration(self) -> None:
        pass

    def row(self, prev: int):
        return self._Row(self.rows.get(prev), self.tau0, self.scale)

    def take(self, prev: int, idx: np.ndarray) -> np.ndarray:
        d = self.rows.get(prev)
        if not d:
            return np.full(len(idx), self.scale * self.tau0)
        keys = np.fromiter(d.keys(), dtype=np.intp, count=len(d))
        self._scratch[keys] = np.fromiter(d.values(), dtype=float, count=len(d))
        out = self.scale * self._scratch[idx]
        self._scratch[keys] = self.tau0
        return out

    def _add(self, a: int, b: int, amount: float) -> None:
        row = self.rows.setdefault(a, {})
        row[b] = row.get(b, self.tau0) + amount / self.scale

    def update(self, paths, spans, p: AcoParams, start_node: int, guarded_path) -> None:
        self.scale *= 1.0 - p.rho
        if self.scale < 1e-150:    # renormalise before the scale underflows
            for row in self.rows.values():
                for k in row:
                    row[k] *= self.scale
            self.tau0 *= self.scale
            self._scratch[:] = self.tau0
            self.scale = 1.0
        for seq, span in zip(paths, spans):
            prev = start_node
            for y in seq:
                self._add(prev, y, p.q / span)
                prev = y
        if guarded_path:
            edges = set(zip([start_node] + guarded_path[:-1], guarded_path))
            deposit: dict[tuple[int, int], float] = {}
            for seq, span in zip(paths, spans):
                for e in zip([start_node] + seq[:-1], seq):
                    if e in edges:
                        deposit[e] = deposit.get(e, 0.0) + p.q / span
            for (a, b), dep in deposit.items():
                self._add(a, b, -(1.0 - p.guard_factor) * dep)


def _update(tau: np.ndarray, paths: list[list[int]], spans: list[int], p: AcoParams, start_node: int,
            guarded_path: list[int] | None) -> None:
    tau *= 1.0 - p.rho
    for seq, span in zip(paths, spans):
        frm = np.fromiter([start_node] + seq[:-1], dtype=np.intp, count=len(seq))
        to = np.fromiter(seq, dtype=np.intp, count=len(seq))
        np.add.at(tau, (frm, to), p.q / span)
    if guarded_path:
        # slow the accumulation on the best path: take back (1 - factor) of this iteration's
        # deposit on its edges
        frm = np.fromiter([start_node] + guarded_path[:-1], dtype=np.intp, count=len(guarded_path))
        to = np.fromiter(guarded_path, dtype=np.intp, count=len(guarded_path))
        deposit = np.zeros(len(to))
        edge_set = {(a, b): i for i, (a, b) in enumerate(zip(frm.tolist(), to.tolist()))}
        for seq, span in zip(paths, spans):
            prev = start_node
            for y in seq:
                i = edge_set.get((prev, y))
                if i is not None:
                    deposit[i] += p.q / span
                prev = y
        tau[frm, to] -= (1.0 - p.guard_factor) * deposit

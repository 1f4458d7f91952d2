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

Defaults are the paper's: t_max=50, 50 ants, alpha=1, beta=5, rho=0.1, Q=1.
Tests: tests/edge/scheduling/test_schedule_aco.py.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edge.scheduling.decode import Builder, Compiled, Frozen
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
    time_limit_s: float | None = None   # wall clock; checked after every ant (the iteration
                                        # in progress is updated with the ants it has)

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


def required_wait_min(c: Compiled) -> np.ndarray:
    """w_y per unit: the rest required before it in its module's listed order (>= 1)."""
    w = np.ones(c.n)
    for m_tasks in c.tasks:
        flat = [u for t in m_tasks for u in t]
        for i, u in enumerate(flat):
            w[u] = max(1, c.rest(flat[i - 1], u) if i else c.before[u])
    return w


def run_aco(instance: Instance, params: AcoParams = AcoParams(), seed: int = 0,
            frozen: Frozen | None = None, stop_at_min: int | None = None) -> AcoResult:
    """The colony on `instance`; the same seed gives the same plan. `stop_at_min` (not the
    paper's; `best` passes its lower bound) ends the run after an iteration that reaches it."""
    t_begin = time.perf_counter()
    c = Compiled(instance, frozen)
    rng = random.Random(seed)
    n = c.n
    eta_beta = required_wait_min(c) ** (-params.beta)
    eta_list = eta_beta.tolist()
    ref = _reference_makespan(instance, c)
    tau = np.full((n + 1, n), params.ants * params.q / ref)
    start_node = n

    best_span, best_seq, best_build = None, None, None
    res = AcoResult(plan=None, sequence=[])  # type: ignore[arg-type]
    stall = 0
    for it in range(params.iterations):
        paths, spans = [], []
        tau_rows = tau.tolist() if n <= 400 else tau   # numpy rows index fine for big n
        for _ in range(params.ants):
            b, seq = _construct(c, tau, tau_rows, eta_beta, eta_list, params, start_node, rng)
            paths.append(seq)
            spans.append(b.makespan)
            if best_span is None or b.makespan < best_span:
                best_span, best_seq, best_build = b.makespan, seq, b
                res.found_at_iteration = it + 1
                stall = -1
            if params.time_limit_s is not None and time.perf_counter() - t_begin > params.time_limit_s:
                break
        stall += 1
        share = sum(1 for s in spans if s == best_span) / len(spans)
        guard = stall >= params.stall_iterations and share >= params.converged_share
        res.guard_activations += int(guard)
        _update(tau, paths, spans, params, start_node, best_seq if guard else None)
        res.best_per_iteration.append(best_span)
        res.iterations_run = it + 1
        if stop_at_min is not None and best_span <= stop_at_min:
            break
        if params.time_limit_s is not None and time.perf_counter() - t_begin > params.time_limit_s:
            log.info("aco: time limit %.1f s reached after %d iterations", params.time_limit_s, it + 1)
            break
    res.runtime_s = time.perf_counter() - t_begin
    res.sequence = best_seq
    res.plan = c.to_plan(best_build.starts, best_build.chan_of, "aco",
                         {"seed": seed, "iterations": res.iterations_run, "ants": params.ants,
                          "found_at_iteration": res.found_at_iteration,
                          "guard_activations": res.guard_activations})
    return res


def _reference_makespan(instance: Instance, c: Compiled) -> float:
    if not c.frozen.placed and all(m.release_min == 0 for m in instance.modules):
        return float(traditional_plan(instance).makespan_min)
    # re-planning: a rough serial length is enough to scale tau0
    return float(sum(module_chain_min(instance, m.index) for m in instance.modules) + c.frozen.not_before_min)


def _construct(c: Compiled, tau: np.ndarray, tau_rows, eta_beta: np.ndarray, eta_list: list[float],
               p: AcoParams, start_node: int, rng: random.Random) -> tuple[Builder, list[int]]:
    b = Builder(c)
    prev = start_node
    seq: list[int] = []
    alpha, dynamic = p.alpha, p.heuristic is Heuristic.WAIT
    while b.eligible:
        allowed = b.eligible
        if len(allowed) == 1:
            y = allowed[0]
        elif dynamic or len(allowed) <= 32:   # small sets: plain Python beats numpy's overhead
            row = tau_rows[prev]
            if dynamic:
                est = [b.best_slot(e)[0] for e in allowed]
                now = min(est)
                etas = [(1.0 + t - now) ** -p.beta for t in est]
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
            tr = tau[prev, idx]
            weights = (tr if alpha == 1.0 else tr ** alpha) * eta_beta[idx]
            cum = np.cumsum(weights)
            k = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
            y = allowed[min(k, len(allowed) - 1)]
        b.place(y)
        seq.append(y)
        prev = y
    return b, seq


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

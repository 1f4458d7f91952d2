"""Lower bounds on the makespan: how far a plan can be from the optimum.

`lower_bound(instance)` is the largest of three relaxations (each drops constraints, so each is
a valid bound), all in integer minutes:

1. Module chains: a module's remaining units one after another with their required rests,
   from its release (or, re-planning, its last started unit). With task_order first_fixed the
   rests between tasks count as the smallest possible one.
2. One channel (Jackson's preemptive schedule, Carlier's bound): the units that only one
   channel can serve, each with a head (the shortest chain before it in its module) and a tail
   (the shortest chain after it); preemption allowed, the largest tail first;
   bound = max_j (C_j + tail_j). On the paper's example this gives 1080 for CH2: two 1020-min
   chains that both start with a unit on the same channel.
3. Channel groups (stations wired to several channels): for each connected group of k
   channels, min head + ceil(total unit time / k) + min tail.

All in exact integer arithmetic (a float division rounds a 1e30-minute load up past any
schedule). Units already placed (re-planning) count with their fixed start as head and tail 0, and the
bound is at least the end of the last of them. `best` reports max(this, CP-SAT's proven
bound). Tests: tests/edge/scheduling/test_schedule_bound.py, test_schedule_input_errors.py (1e30).
"""

from __future__ import annotations

import heapq
import math

from edge.scheduling.decode import Builder, Compiled, Frozen
from edge.scheduling.instance import Instance


def lower_bound(instance: Instance, frozen: Frozen | None = None, compiled: Compiled | None = None) -> int:
    """The bound; `compiled` (of the same instance and frozen units) saves building it again."""
    c = compiled if compiled is not None else Compiled(instance, frozen)
    head, tail, chains = heads_tails(c)
    fixed_end = max((st + c.dur[u] for u, (_, st) in c.frozen.placed.items()), default=0)
    return max([fixed_end, max(chains, default=0), channel_bound(c, head, tail), group_bound(c, head, tail)])


def heads_tails(c: Compiled) -> tuple[list[int], list[int], list[int]]:
    """Per unit the shortest time before it can start / after it ends; per module the chain bound."""
    b = Builder(c)
    head, tail = [0] * c.n, [0] * c.n
    chains = []
    for m, tasks in enumerate(c.tasks):
        free_tasks = [[u for u in t if u not in c.frozen.placed] for t in tasks]
        free_tasks = [t for t in free_tasks if t]
        if not free_tasks:
            continue
        eligible = b.eligible_of_module(m)
        start = min(b.ready(e) for e in eligible)
        if not c.first_fixed:
            seq = [u for t in free_tasks for u in t]
            _chain(c, seq, start, head, tail)
            chains.append(head[seq[-1]] + c.dur[seq[-1]])
            continue
        # first_fixed: the order across tasks is free; only each task's own chain is certain
        total = 0
        for t in free_tasks:
            _chain(c, t, start, head, tail)
            total += head[t[-1]] + c.dur[t[-1]] - start
        boundary = [c.rest(a[-1], t2[0]) for a in free_tasks for t2 in free_tasks if a is not t2]
        chains.append(start + total + (len(free_tasks) - 1) * min(boundary, default=0))
    for u, (_, st) in c.frozen.placed.items():
        head[u], tail[u] = st, 0
    return head, tail, chains


def _chain(c: Compiled, seq: list[int], start: int, head: list[int], tail: list[int]) -> None:
    t = start
    for i, u in enumerate(seq):
        if i:
            t += c.rest(seq[i - 1], u)
        head[u] = t
        t += c.dur[u]
    end = t
    for i, u in enumerate(seq):
        tail[u] = end - head[u] - c.dur[u]


def jackson_preemptive(jobs: list[tuple[int, int, int]]) -> int:
    """max_j (C_j + q_j) of Jackson's preemptive schedule for jobs (head r, duration p, tail q)."""
    jobs = sorted(jobs)
    heap: list[tuple[int, int]] = []   # (-tail, remaining)
    t, i, lb, n = 0, 0, 0, len(jobs)
    while i < n or heap:
        if not heap:
            t = max(t, jobs[i][0])
        while i < n and jobs[i][0] <= t:
            r, p, q = jobs[i]
            heapq.heappush(heap, (-q, p))
            i += 1
        negq, rem = heapq.heappop(heap)
        next_r = jobs[i][0] if i < n else math.inf
        run = min(rem, next_r - t)
        t += run
        rem -= run
        if rem > 0:
            heapq.heappush(heap, (negq, rem))
        else:
            lb = max(lb, t - negq)
    return int(lb)


def channel_bound(c: Compiled, head: list[int], tail: list[int]) -> int:
    per: dict[int, list[tuple[int, int, int]]] = {}
    for u in range(c.n):
        if u in c.frozen.placed:
            per.setdefault(c.frozen.placed[u][0], []).append((head[u], c.dur[u], 0))
        elif len(c.chans[u]) == 1:
            per.setdefault(c.chans[u][0], []).append((head[u], c.dur[u], tail[u]))
    return max((jackson_preemptive(jobs) for jobs in per.values()), default=0)


def group_bound(c: Compiled, head: list[int], tail: list[int]) -> int:
    parent = list(range(c.n_channels))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for chs in c.channel_sets:
        for ch in chs[1:]:
            parent[find(ch)] = find(chs[0])
    groups: dict[int, list[int]] = {}
    for u in c.free:
        groups.setdefault(find(c.chans[u][0]), []).append(u)
    size: dict[int, int] = {}
    for ch in range(c.n_channels):
        size[find(ch)] = size.get(find(ch), 0) + 1
    best = 0
    for root, units in groups.items():
        k = size[root]
        load = sum(c.dur[u] for u in units)
        best = max(best, min(head[u] for u in units) + -(-load // k) + min(tail[u] for u in units))
    return best

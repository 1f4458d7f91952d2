"""From a sequence of units to a feasible schedule: the decoder every method shares.

`Compiled` flattens an instance into lists indexed by global unit index (durations, rests,
wired channels, module chains) once. `Builder` places units one by one, in the order a method
chooses among the units that are *eligible* (the next unit of each module; with task_order
first_fixed, at a task boundary, the first unit of any remaining task): a unit starts at the
earliest time that respects its module (previous unit's end + required rest, the module's
release, the re-planning time) and fits in a gap of one of its wired channels (gap filling,
so a later unit may run before an earlier-placed one on a channel); among channels the one
where it ends first (ties: the first listed) wins. This yields the paper's completion times
F_l of a path R and a feasible plan for any eligible order. `decode(seq)` runs a whole
sequence; `Frozen` placements (re-planning) pre-occupy channels and module chains.

Sizes: placing a unit is O(1) in the number of modules (eligible units kept per module); a unit
wired to more than WIDE_SET_CHANNELS channels (a switch matrix) goes after the last unit of the
channel that is free first, found in a heap (gap filling there would scan every channel); the
greedy order uses a lazy heap. 14 000 units decode in about 0.1 s.

Tests: tests/edge/scheduling/test_schedule_decode.py.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from dataclasses import dataclass, field

from edge.scheduling.budget import Deadline
from edge.scheduling.instance import Instance, TaskOrder
from edge.scheduling.plan import Plan, plan_from_starts


@dataclass(frozen=True)
class Frozen:
    """Placements that re-planning keeps: unit index -> (channel index, start minute)."""

    placed: dict[int, tuple[int, int]] = field(default_factory=dict)
    not_before_min: int = 0


WIDE_SET_CHANNELS = 16   # above this many wired channels a unit goes after the channel's last unit


class Compiled:
    """Flat, index-based view of an instance for the solvers (built once per instance)."""

    def __init__(self, instance: Instance, frozen: Frozen | None = None):
        self.instance = instance
        self.frozen = frozen or Frozen()
        units = instance.units
        self.n = len(units)
        self.dur = [u.duration_min for u in units]
        self.before = [u.rest_before_min for u in units]
        self.after = [u.rest_after_min for u in units]
        self.module = [u.module for u in units]
        self.task = [u.task for u in units]
        self.chans = instance.channels_of_unit()
        self.n_channels = len(instance.channels)
        self.first_fixed = instance.task_order is TaskOrder.FIRST_FIXED
        # per module, per task, the unit indices in order
        self.tasks = [[[u.index for u in t.units] for t in m.tasks] for m in instance.modules]
        self.release = [max(m.release_min, 0) for m in instance.modules]
        self.free = [u for u in range(self.n) if u not in self.frozen.placed]
        # channel sets wider than WIDE_SET_CHANNELS (switch matrices) get a heap in the Builder;
        # equal sets share one id
        # (Instance interns equal channel tuples, so the object id is the set; a tuple's hash is
        # not cached and would cost k per unit)
        ids: dict[int, int] = {}
        self.channel_sets: list[tuple[int, ...]] = []
        self.set_of_unit = []
        for chs in self.chans:
            k = ids.get(id(chs))
            if k is None:
                k = ids[id(chs)] = len(self.channel_sets)
                self.channel_sets.append(chs)
            self.set_of_unit.append(k)
        self.wide_sets_of_channel: list[list[int]] = [[] for _ in range(self.n_channels)]
        for k, chs in enumerate(self.channel_sets):
            if len(chs) > WIDE_SET_CHANNELS:
                for ch in chs:
                    self.wide_sets_of_channel[ch].append(k)

    def rest(self, a: int, b: int) -> int:
        return max(self.after[a], self.before[b])

    def to_plan(self, starts: list[int], chans: list[int], method: str, info: dict | None = None) -> Plan:
        return plan_from_starts(self.instance, starts, chans, method, info)


class Builder:
    """Incremental schedule construction (one per decoded sequence / per ant)."""

    def __init__(self, c: Compiled):
        self.c = c
        self.starts = [-1] * c.n
        self.chan_of = [-1] * c.n
        self.busy_s: list[list[int]] = [[] for _ in range(c.n_channels)]
        self.busy_e: list[list[int]] = [[] for _ in range(c.n_channels)]
        n_mod = len(c.tasks)
        self.last = [-1] * n_mod                 # last placed unit of each module
        self.last_end = [0] * n_mod
        self.cur_task = [-1] * n_mod             # task in progress (-1: at a boundary)
        self.pos = [0] * n_mod                   # next position inside cur_task
        self.done_tasks: list[set[int]] = [set() for _ in range(n_mod)]
        self.makespan = 0
        self.placed_count = 0
        self.tail_end = [0] * c.n_channels       # end of each channel's last busy interval
        self._wide: dict[int, list[tuple[int, int]]] = {}   # wide set id -> heap (tail_end, ch)
        self._apply_frozen()
        # module -> its eligible units; the dict keeps the order in which modules became
        # eligible, which is the order `eligible` lists them in (seeded walks depend on it)
        self._elig: dict[int, list[int]] = {}
        for m in range(n_mod):
            nxt = self._next_of_module(m)
            if nxt:
                self._elig[m] = nxt
        self._elig_list: list[int] | None = None

    @property
    def eligible(self) -> list[int]:
        """The units that may be placed next (the next unit of each module), in a stable order."""
        if self._elig_list is None:
            self._elig_list = [u for us in self._elig.values() for u in us]
        return self._elig_list

    def is_eligible(self, u: int) -> bool:
        return u in self._elig.get(self.c.module[u], ())

    def eligible_of_module(self, m: int) -> list[int]:
        return self._elig.get(m, [])

    # -- state ---------------------------------------------------------------------------
    def _apply_frozen(self) -> None:
        c = self.c
        by_module: dict[int, list[int]] = {}
        for u, (ch, st) in c.frozen.placed.items():
            by_module.setdefault(c.module[u], []).append(u)
            self._occupy(u, ch, st)
        for m, us in by_module.items():
            for u in sorted(us, key=lambda u: (self.starts[u], u)):
                self._advance_module(m, u)

    def _occupy(self, u: int, ch: int, start: int) -> None:
        self.starts[u], self.chan_of[u] = start, ch
        i = bisect_right(self.busy_s[ch], start)
        self.busy_s[ch].insert(i, start)
        self.busy_e[ch].insert(i, start + self.c.dur[u])
        end = start + self.c.dur[u]
        self.makespan = max(self.makespan, end)
        self.placed_count += 1
        if end > self.tail_end[ch]:
            self.tail_end[ch] = end
            for k in self.c.wide_sets_of_channel[ch]:
                heap = self._wide.get(k)
                if heap is not None:
                    heapq.heappush(heap, (end, ch))

    def _advance_module(self, m: int, u: int) -> None:
        c = self.c
        t = c.task[u]
        self.last[m], self.last_end[m] = u, self.starts[u] + c.dur[u]
        self.cur_task[m], self.pos[m] = t, self.pos[m] + 1 if self.cur_task[m] == t else 1
        if self.pos[m] >= len(c.tasks[m][t]):
            self.done_tasks[m].add(t)
            self.cur_task[m], self.pos[m] = -1, 0

    def _next_of_module(self, m: int) -> list[int]:
        c = self.c
        tasks = c.tasks[m]
        if self.cur_task[m] >= 0:
            return [tasks[self.cur_task[m]][self.pos[m]]]
        remaining = [t for t in range(len(tasks)) if t not in self.done_tasks[m]]
        if not remaining:
            return []
        if not c.first_fixed or 0 in remaining:
            return [tasks[remaining[0]][0]]
        return [tasks[t][0] for t in remaining]

    # -- placement -----------------------------------------------------------------------
    def ready(self, u: int) -> int:
        """Earliest start allowed by the module chain, release and re-planning time."""
        c = self.c
        m = c.module[u]
        prev = self.last[m]
        t = self.last_end[m] + c.rest(prev, u) if prev >= 0 else c.release[m]
        return max(t, c.frozen.not_before_min, c.release[m])

    def _fit(self, ch: int, ready: int, d: int) -> int:
        ss, es = self.busy_s[ch], self.busy_e[ch]
        if not es or ready >= es[-1]:
            return ready
        t = ready
        for i in range(bisect_right(es, ready), len(ss)):
            if t + d <= ss[i]:
                return t
            if es[i] > t:
                t = es[i]
        return t

    def best_slot(self, u: int) -> tuple[int, int]:
        """(start, channel) where `u` would end first. On a set of more than WIDE_SET_CHANNELS
        channels (a switch matrix) only after each channel's last unit, the earliest one
        (ties: the lowest index): a heap makes that O(log k) instead of a scan of k channels."""
        ready, d = self.ready(u), self.c.dur[u]
        k = self.c.set_of_unit[u]
        if len(self.c.chans[u]) > WIDE_SET_CHANNELS:
            heap = self._wide.get(k)
            if heap is None:
                heap = self._wide[k] = [(self.tail_end[ch], ch) for ch in self.c.channel_sets[k]]
                heapq.heapify(heap)
            while heap[0][0] != self.tail_end[heap[0][1]]:
                heapq.heappop(heap)
            end, ch = heap[0]
            return max(ready, end), ch
        best_t, best_ch = None, -1
        for ch in self.c.chans[u]:
            t = self._fit(ch, ready, d)
            if best_t is None or t < best_t:
                best_t, best_ch = t, ch
                if t == ready:
                    break
        return best_t, best_ch

    def place(self, u: int) -> int:
        """Place an eligible unit; returns its end minute."""
        if not self.is_eligible(u):
            raise ValueError(f"unit {self.c.instance.units[u].id!r} is not eligible now "
                             "(its module's previous unit is not placed yet)")
        start, ch = self.best_slot(u)
        self._occupy(u, ch, start)
        m = self.c.module[u]
        del self._elig[m]
        self._advance_module(m, u)
        nxt = self._next_of_module(m)
        if nxt:
            self._elig[m] = nxt
        self._elig_list = None
        return start + self.c.dur[u]

    @property
    def complete(self) -> bool:
        return self.placed_count == self.c.n


def decode(c: Compiled, seq: list[int]) -> tuple[list[int], list[int], int]:
    """Place the free units in `seq` order; returns (starts, channels, makespan)."""
    b = Builder(c)
    for u in seq:
        b.place(u)
    if not b.complete:
        raise ValueError(f"sequence places {b.placed_count} of {c.n} units")
    return b.starts, b.chan_of, b.makespan


def greedy_sequence(c: Compiled, deadline: Deadline | None = None) -> list[int]:
    """A simple dispatching order: always the eligible unit that can start first
    (ties: the one whose module has the longest remaining chain, then lowest index).

    A lazy heap keeps this O(n log n) evaluations in practice: while a unit stays eligible its
    earliest start can only grow (its module is unchanged, its channels only fill), so a stored
    key is a lower bound; the popped unit is taken when its recomputed key is unchanged, which
    is exactly the minimum over all eligible units. When `deadline` passes first, the rest is
    placed in first-eligible order (one cheap pass: the plan is always complete)."""
    tail = remaining_chain(c)
    b = Builder(c)
    heap = [(b.best_slot(e)[0], -tail[e], e) for e in b.eligible]
    heapq.heapify(heap)
    seq: list[int] = []
    while heap:
        start, neg_tail, e = heapq.heappop(heap)
        if not b.is_eligible(e):
            continue
        now = b.best_slot(e)[0]
        if now != start:
            heapq.heappush(heap, (now, neg_tail, e))
            continue
        b.place(e)
        seq.append(e)
        for nxt in b.eligible_of_module(c.module[e]):
            heapq.heappush(heap, (b.best_slot(nxt)[0], -tail[nxt], nxt))
        if deadline is not None and len(seq) % 64 == 0 and deadline.expired():
            _finish_first_eligible(b, seq)
            break
    return seq


def first_eligible_sequence(c: Compiled) -> list[int]:
    """Always the first eligible unit: a feasible order in one pass (the floor when a deadline
    passes before the greedy plan is complete)."""
    seq: list[int] = []
    _finish_first_eligible(Builder(c), seq)
    return seq


def _finish_first_eligible(b: Builder, seq: list[int]) -> None:
    while b._elig:
        u = next(iter(b._elig.values()))[0]
        b.place(u)
        seq.append(u)


def remaining_chain(c: Compiled) -> list[int]:
    """Per unit: its duration plus everything after it in its module's listed order (with rests)."""
    tail = [0] * c.n
    for m_tasks in c.tasks:
        flat = [u for t in m_tasks for u in t]
        acc = 0
        for i in range(len(flat) - 1, -1, -1):
            u = flat[i]
            acc += c.dur[u] + (c.rest(u, flat[i + 1]) if i + 1 < len(flat) else 0)
            tail[u] = acc
    return tail

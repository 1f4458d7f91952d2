"""Tiers to channels (S13): which tier each channel of a discharge line takes, balanced so that
the line finishes soonest.

Owns `ChannelLoad`, `assign_tiers`, `Assignment` (`Block`, `PlannedBattery`), the validator
`check_assignment`, `AssignError`, `LOAD_REST_OVERHEAD_S` and `most_waiting_makespan_s` (the
flow's rule before S13, kept for comparison).

The model (times in seconds from now):
- Every usable station discharges one battery at a time; the stations of a channel run at once
  (the flow loads each empty station), and they share one tier at a time: a channel changes tier
  only when all its stations are empty (a drain).
- A battery lasts its tier plan's predicted discharge time plus `overhead_s` (default
  LOAD_REST_OVERHEAD_S = 76 s: the robot's place 8 s, the rest before the rebound check 60 s,
  the robot's unload 8 s; robot.cycle_s and FlowSettings.rest_s).
- A station is free at its `busy_until_s`. An unusable station (isolated, fault) takes nothing;
  its `busy_until_s` still counts for the drain: finite, its battery leaves then; `math.inf`,
  it stays until an operator clears it, so the channel keeps its tier (it is locked) and that
  battery is left out of the makespan. A channel holding a tier starts with a block of it.
- The decision is, per channel, an ordered list of blocks (tier, batteries). In a block the
  batteries go longest first to the station free first (LPT); the next block starts when the
  block has ended (the first block: also every battery already on the channel).
- Search: two constructions by event simulation (the flow's most-waiting rule; a balance rule:
  an empty channel takes the tier with the most waiting seconds per station serving it, longest
  battery first), then descent on the critical channel (move a battery to a block of its tier on
  another channel or to a new block there; swap two of a tier) with random kicks, until a local
  optimum after MAX_KICKS kicks, the lower bound or SEARCH_SHARE of the budget.
- edge/scheduling: a station is a scheduling channel, a battery a module of one unit on its own
  fixture. Level by level (the blocks' first, second ...), the blocks become an instance: each
  battery wired to the stations of its block's channel, released at the block's start, a busy
  station holding a frozen unit; `edge.scheduling.solve` gets its share of the budget and per
  channel the shorter of its plan and LPT is kept. The whole plan is then one instance (every
  battery wired to every usable station) checked by `check_plan` plus the tier rule: a battery
  missing or twice, two on a station at once, one before its station is free or on an unusable
  station, and two tiers on one channel at once are all refused (`check_assignment`).
- Instances count integer minutes; here one "minute" is `quantum_s` (1 s, coarser when a
  duration would pass MAX_MINUTES) and durations are rounded up to it, so the reported plan (and
  `predicted_makespan_s`) is that quantised plan: at most one quantum late per battery.
- Budget: the final check is kept FINISH_S + FINISH_S_PER_PAIR per battery x usable station
  (at most 40 %); of the rest SEARCH_SHARE goes to the search, then solve per level at most
  SOLVE_CAP_S + SOLVE_S_PER_UNIT per battery, skipped where LPT meets the block's bound.
- `lower_bound_s` = max(the last battery already on a station; per tier, its earliest possible
  start plus its longest battery; busy seconds plus all work over the usable stations): below
  every plan under the rule. A tier no channel can take is `unplaced` and both figures are inf.
- Re-assignment: pass `previous`; an empty channel keeps its previous tier when the best plan
  with it is within `stability_margin` (2 %) of the best plan.

Tests: tests/edge/placement/test_assign.py, test_assign_bench.py (marker bench).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edge.scheduling.best import solve
from edge.scheduling.cpsat import cpsat_available
from edge.scheduling.budget import MIN_TIME_LIMIT_S, Deadline, check_time_limit_s
from edge.scheduling.decode import Frozen
from edge.scheduling.instance import MAX_MINUTES, SCHEMA_ID, instance_from_dict
from edge.scheduling.plan import Placement, Plan
from edge.scheduling.validate import check_plan

LOAD_REST_OVERHEAD_S = 76.0   # robot place 8 s + rest before the rebound check 60 s + unload 8 s
STABILITY_MARGIN = 0.02       # an empty channel keeps its previous tier within 2 % of the best
SEARCH_SHARE = 0.45           # of the budget: constructions and local search
SOLVE_SHARE = 0.6             # of what is left: edge/scheduling's solve, level by level
SOLVE_CAP_S = 0.05            # solve's budget per level: this plus SOLVE_S_PER_UNIT per battery
SOLVE_S_PER_UNIT = 0.002      # (LPT is rarely beaten on a block: measured 0 to 1 channel of 2)
FINISH_S = 0.02               # kept for the final check: this plus FINISH_S_PER_PAIR per battery
FINISH_S_PER_PAIR = 1.2e-6    # and usable station (the instance wires each to each: 0.23 s for
                              # 2 000 batteries x 128 stations, measured on the shared machine)
MAX_KICKS = 30                # random kicks of the local search (a small line ends well before)
NEAR_TARGETS = 6              # least-loaded channels tried for a new block
EPS_S = 1e-6

cpsat_available()   # imports ortools now (0.25 s measured), not inside the first call's budget


class AssignError(ValueError):
    """Inputs that do not describe a line (the message names the argument and the field)."""


@dataclass(frozen=True)
class ChannelLoad:
    """What the flow knows of one channel now."""

    name: str
    stations: tuple[int, ...]
    tier: int | None                  # the tier its stations hold now (None: all empty)
    busy_until_s: tuple[float, ...]   # per station: predicted seconds until it is free (0 = free)
    usable: tuple[bool, ...]          # per station: False when isolated / fault


@dataclass(frozen=True)
class PlannedBattery:
    tier: int
    index: int          # position in waiting[tier]
    station: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Block:
    tier: int
    start_s: float
    end_s: float        # its last battery's end (the first block: and every battery held before)
    batteries: tuple[PlannedBattery, ...]


@dataclass(frozen=True)
class Assignment:
    channel_tier: dict[str, int]              # the tier each channel takes now (absent: none)
    blocks: dict[str, tuple[Block, ...]]      # per channel, its tiers in order
    predicted_makespan_s: float
    lower_bound_s: float
    tier_start_s: dict[int, float]            # when each tier's first battery starts
    unplaced: dict[int, int] = field(default_factory=dict)   # tier -> batteries no channel can take
    quantum_s: float = 1.0
    overhead_s: float = LOAD_REST_OVERHEAD_S
    stages: tuple[str, ...] = ()
    note: str = ""

    @property
    def tier_order(self) -> tuple[int, ...]:
        """The tiers by their first start: which go first when tiers must wait."""
        return tuple(sorted(self.tier_start_s, key=lambda t: (self.tier_start_s[t], t)))

    @property
    def station_plan(self) -> dict[int, tuple[PlannedBattery, ...]]:
        out: dict[int, list[PlannedBattery]] = {}
        for blocks in self.blocks.values():
            for b in blocks:
                for p in b.batteries:
                    out.setdefault(p.station, []).append(p)
        return {s: tuple(sorted(ps, key=lambda p: p.start_s)) for s, ps in sorted(out.items())}

    def quota(self, channel: str) -> int:
        """How many batteries of `channel_tier[channel]` the channel takes before it drains."""
        blocks = self.blocks.get(channel, ())
        return len(blocks[0].batteries) if blocks else 0


# ---------------------------------------------------------------------------------------------
# the line


@dataclass
class _Line:
    names: list[str]
    stations: list[tuple[int, ...]]   # every station per channel
    usable: list[list[int]]      # usable station ids per channel
    free: list[list[float]]      # their free times
    drain: list[float]           # per channel: the last finite busy_until of any of its stations
    held: list[int | None]
    locked: list[bool]           # an unusable station held until an operator clears it
    held_spans: list[list[tuple[float, float]]]   # per channel: (0, busy_until) of held batteries
    tier: list[int]              # per placeable battery
    index: list[int]
    dur: list[float]
    unplaced: dict[int, int]

    def allowed(self, c: int, t: int) -> bool:
        return bool(self.usable[c]) and (not self.locked[c] or self.held[c] == t)


def _number(value, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise AssignError(f"{where}: expected seconds (a number), got {value!r}") from None
    if math.isnan(x) or x < 0:
        raise AssignError(f"{where}: expected seconds >= 0, got {value!r}")
    return x


def _prepare(channels: Sequence[ChannelLoad], waiting: Mapping[int, Sequence[float]], overhead_s: float) -> _Line:
    overhead_s = _number(overhead_s, "overhead_s")
    if not math.isfinite(overhead_s):
        raise AssignError(f"overhead_s: must be finite, got {overhead_s!r}")
    names, usable, free, drain, held, locked, spans = [], [], [], [], [], [], []
    seen_st: dict[int, str] = {}
    for i, ch in enumerate(channels):
        where = f"channels[{i}] ({ch.name!r})"
        if ch.name in names:
            raise AssignError(f"{where}.name: duplicate channel name")
        n = len(ch.stations)
        for fld in ("busy_until_s", "usable"):
            if len(getattr(ch, fld)) != n:
                raise AssignError(f"{where}.{fld}: {len(getattr(ch, fld))} values for {n} stations")
        if ch.tier is not None and (not isinstance(ch.tier, int) or isinstance(ch.tier, bool)):
            raise AssignError(f"{where}.tier: expected an integer tier or None, got {ch.tier!r}")
        us, fr, sp, dr, lk = [], [], [], 0.0, False
        for k, s in enumerate(ch.stations):
            if s in seen_st:
                raise AssignError(f"{where}.stations[{k}]: station {s} is already in channel {seen_st[s]!r}")
            seen_st[s] = ch.name
            busy = _number(ch.busy_until_s[k], f"{where}.busy_until_s[{k}]")
            if ch.usable[k]:
                if not math.isfinite(busy):
                    raise AssignError(f"{where}.busy_until_s[{k}]: inf is for an unusable station only")
                us.append(s)
                fr.append(busy)
            if math.isfinite(busy):
                dr = max(dr, busy)
            else:
                lk = True
            if busy > 0 and ch.tier is not None:
                sp.append((0.0, busy))
        names.append(ch.name)
        usable.append(us), free.append(fr), drain.append(dr), held.append(ch.tier), locked.append(lk)
        spans.append(sp)
    line = _Line(names, [tuple(ch.stations) for ch in channels], usable, free, drain, held, locked, spans,
                 [], [], [], {})
    for t in sorted(waiting):
        if not isinstance(t, int) or isinstance(t, bool):
            raise AssignError(f"waiting: tier keys must be integers, got {t!r}")
        durs = [_number(d, f"waiting[{t}][{i}]") for i, d in enumerate(waiting[t])]
        for i, d in enumerate(durs):
            if not math.isfinite(d) or d + overhead_s <= 0:
                raise AssignError(f"waiting[{t}][{i}]: expected a finite discharge time > 0 s with "
                                  f"overhead_s {overhead_s}, got {waiting[t][i]!r}")
        if not durs:
            continue
        if not any(line.allowed(c, t) for c in range(len(names))):
            line.unplaced[t] = len(durs)
            continue
        for i, d in enumerate(durs):
            line.tier.append(t), line.index.append(i), line.dur.append(d + overhead_s)
    return line


# ---------------------------------------------------------------------------------------------
# structures: per channel a list of [tier, [battery, ...]] blocks


def _channel_end(line: _Line, c: int, blocks: list) -> float:
    free, end = line.free[c], line.drain[c]
    if not free:
        return end
    for i, (_, bats) in enumerate(blocks):
        h = list(free) if i == 0 else [end] * len(free)
        heapq.heapify(h)
        for p in sorted((line.dur[b] for b in bats), reverse=True):
            heapq.heapreplace(h, h[0] + p)
        end = max(max(h), line.drain[c]) if i == 0 else max(h)
    return max(end, line.drain[c])


def _simulate(line: _Line, balance: bool, pinned: Mapping[int, int]) -> tuple[list, float]:
    """Run a dispatching rule through time; returns the blocks and the simulated makespan.
    balance=False is the flow's rule before S13 (waiting order, most batteries waiting)."""
    nc = len(line.names)
    queues: dict[int, list[int]] = {}
    for b, t in enumerate(line.tier):
        queues.setdefault(t, []).append(b)
    if balance:
        for q in queues.values():
            q.sort(key=lambda b: -line.dur[b])
    head = {t: 0 for t in queues}
    left_s = {t: sum(line.dur[b] for b in q) for t, q in queues.items()}
    ends = [list(f) for f in line.free]
    tier_now = list(line.held)
    blocks = [[[line.held[c], []]] if line.held[c] is not None else [] for c in range(nc)]
    events = [(0.0, c) for c in range(nc)] + [(line.drain[c], c) for c in range(nc)]
    heapq.heapify(events)
    makespan = max(line.drain, default=0.0)
    while events:
        now = events[0][0]
        todo = set()
        while events and events[0][0] <= now + EPS_S:
            todo.add(heapq.heappop(events)[1])
        for c in sorted(todo):
            if not line.usable[c]:
                continue
            if (tier_now[c] is not None and not line.locked[c] and line.drain[c] <= now + EPS_S
                    and all(e <= now + EPS_S for e in ends[c])
                    and not (balance and head.get(tier_now[c], 0) < len(queues.get(tier_now[c], ())))):
                tier_now[c] = None   # empty: the flow's rule chooses again, the balance rule goes on
            for k, e in enumerate(ends[c]):
                if e > now + EPS_S:
                    continue
                if tier_now[c] is None:
                    t = _choose(line, c, queues, head, left_s, tier_now, balance, pinned if not blocks[c] else {})
                    if t is None:
                        break
                    tier_now[c] = t
                    if not blocks[c] or blocks[c][-1][0] != t:
                        blocks[c].append([t, []])
                t = tier_now[c]
                if head.get(t, 0) >= len(queues.get(t, ())):
                    break
                b = queues[t][head[t]]
                head[t] += 1
                left_s[t] -= line.dur[b]
                ends[c][k] = now + line.dur[b]
                makespan = max(makespan, ends[c][k])
                blocks[c][-1][1].append(b)
                heapq.heappush(events, (ends[c][k], c))
    return blocks, makespan


def _choose(line, c, queues, head, left_s, tier_now, balance, pinned) -> int | None:
    if c in pinned and head[pinned[c]] < len(queues[pinned[c]]):
        return pinned[c]
    options = [t for t in queues if head[t] < len(queues[t]) and line.allowed(c, t)]
    if not options:
        return None
    if not balance:
        return max(options, key=lambda t: (len(queues[t]) - head[t], -t))
    serving = {t: 0 for t in options}
    for d, t in enumerate(tier_now):
        if t in serving:
            serving[t] += len(line.usable[d])
    return max(options, key=lambda t: (left_s[t] / (1 + serving[t]), -t))


def _normalise(blocks_c: list, fixed_first: bool) -> list:
    out = []
    for i, (t, bats) in enumerate(blocks_c):
        if not bats and not (i == 0 and fixed_first):
            continue
        if out and out[-1][0] == t:
            out[-1][1].extend(bats)
        else:
            out.append([t, list(bats)])
    return out


class _Search:
    def __init__(self, line: _Line, pinned: Mapping[int, int], lb: float, deadline: Deadline, seed: int):
        self.line, self.pinned, self.lb, self.deadline = line, pinned, lb, deadline
        self.rng = random.Random(seed)
        self.fixed = [line.held[c] is not None or c in pinned for c in range(len(line.names))]

    def run(self, stages: list[str]) -> tuple[list, list[float]]:
        best, best_span = None, math.inf
        for balance in (False, True):
            blocks, _ = _simulate(self.line, balance, self.pinned)
            ends = [_channel_end(self.line, c, b) for c, b in enumerate(blocks)]
            stages.append(f"{'balance' if balance else 'most-waiting'} {max(ends, default=0):.0f} s")
            if max(ends, default=0.0) < best_span - EPS_S:
                best, best_ends, best_span = blocks, ends, max(ends, default=0.0)
        blocks, ends = self.descend(_copy(best), list(best_ends))
        best, best_ends = blocks, ends
        kicks = 0
        while kicks < MAX_KICKS and max(best_ends, default=0) > self.lb + EPS_S and not self.deadline.expired():
            kicks += 1
            blocks, ends = self.descend(*self.kick(_copy(best), list(best_ends)))
            if max(ends) < max(best_ends) - EPS_S:
                best, best_ends = blocks, ends
        for c in range(len(best)):
            best[c], best_ends[c] = self.merge(c, best[c], best_ends[c])
        stages.append(f"local {max(best_ends, default=0):.0f} s ({kicks} kicks)")
        return best, best_ends

    def merge(self, c: int, blocks_c: list, end: float) -> tuple[list, float]:
        """Join two blocks of one tier on a channel where that costs nothing (one drain less)."""
        i = 0
        while i < len(blocks_c):
            for j in range(len(blocks_c) - 1, i, -1):
                if blocks_c[j][0] == blocks_c[i][0]:
                    cand = [[t, list(bb)] for t, bb in blocks_c]
                    cand[i][1] += cand.pop(j)[1]
                    cand = _normalise(cand, self.fixed[c])
                    e = _channel_end(self.line, c, cand)
                    if e <= end + EPS_S and self.ok_first(c, cand):
                        blocks_c, end = cand, e
                        break
            else:
                i += 1
        return blocks_c, end

    def ok_first(self, c: int, blocks_c: list) -> bool:
        if c not in self.pinned:
            return True
        return bool(blocks_c) and blocks_c[0][0] == self.pinned[c] and bool(blocks_c[0][1])

    def descend(self, blocks: list, ends: list[float]) -> tuple[list, list[float]]:
        while not self.deadline.expired():
            c = max(range(len(ends)), key=lambda i: (ends[i], -i))
            if ends[c] <= self.lb + EPS_S or not self.improve(blocks, ends, c):
                break
        return blocks, ends

    def improve(self, blocks: list, ends: list[float], c: int) -> bool:
        line, top = self.line, ends[c]
        near = sorted(range(len(ends)), key=lambda d: (ends[d], d))[:NEAR_TARGETS + 1]
        for bi, (t, bats) in enumerate(blocks[c]):
            seen: set[float] = set()
            for b in sorted(bats, key=lambda b: -line.dur[b]):
                if line.dur[b] in seen or self.deadline.expired():
                    continue
                seen.add(line.dur[b])
                rest = [[tt, [x for x in bb if x != b] if i == bi else bb] for i, (tt, bb) in enumerate(blocks[c])]
                rest = _normalise(rest, self.fixed[c])
                if not self.ok_first(c, rest):
                    continue
                end_c = _channel_end(line, c, rest)
                if end_c >= top - EPS_S:
                    continue
                targets = [d for d in range(len(ends)) if d != c and line.allowed(d, t)
                           and (d in near or any(tt == t for tt, _ in blocks[d]))]
                for d in targets:
                    for cand in self.placements(blocks[d], d, t, b):
                        end_d = _channel_end(line, d, cand)
                        if end_d < top - EPS_S:
                            blocks[c], blocks[d], ends[c], ends[d] = rest, cand, end_c, end_d
                            return True
                    for j, (tt, bb) in enumerate(blocks[d]):   # swap with a shorter one of the tier
                        if tt != t:
                            continue
                        for b2 in bb:
                            if line.dur[b2] >= line.dur[b] - EPS_S:
                                continue
                            new_c = [[x, list(y)] for x, y in blocks[c]]
                            new_c[bi][1] = [b2 if x == b else x for x in new_c[bi][1]]
                            new_d = [[x, list(y)] for x, y in blocks[d]]
                            new_d[j][1] = [b if x == b2 else x for x in new_d[j][1]]
                            e_c, e_d = _channel_end(line, c, new_c), _channel_end(line, d, new_d)
                            if max(e_c, e_d) < top - EPS_S:
                                blocks[c], blocks[d], ends[c], ends[d] = new_c, new_d, e_c, e_d
                                return True
        return False

    def placements(self, blocks_d: list, d: int, t: int, b: int):
        for j, (tt, bb) in enumerate(blocks_d):
            if tt == t:
                new = [[x, list(y)] for x, y in blocks_d]
                new[j][1].append(b)
                yield new
        if not blocks_d or blocks_d[-1][0] != t:
            yield [[x, list(y)] for x, y in blocks_d] + [[t, [b]]]

    def kick(self, blocks: list, ends: list[float]) -> tuple[list, list[float]]:
        line, nc = self.line, len(self.line.names)
        for _ in range(max(1, len(line.dur) // 25)):
            c = self.rng.randrange(nc)
            full = [i for i, (_, bb) in enumerate(blocks[c]) if bb]
            if not full:
                continue
            bi = self.rng.choice(full)
            t, bats = blocks[c][bi]
            b = self.rng.choice(bats)
            d = self.rng.choice([d for d in range(nc) if line.allowed(d, t)])
            rest = [[tt, [x for x in bb if x != b] if i == bi else list(bb)] for i, (tt, bb) in enumerate(blocks[c])]
            rest = _normalise(rest, self.fixed[c])
            if d == c or not self.ok_first(c, rest):
                continue
            blocks[c] = rest
            blocks[d] = self.rng.choice(list(self.placements(blocks[d], d, t, b)))
        return blocks, [_channel_end(line, c, b) for c, b in enumerate(blocks)]


def _copy(blocks: list) -> list:
    return [[[t, list(bb)] for t, bb in bc] for bc in blocks]


def _lower_bound(line: _Line) -> float:
    lb = max(line.drain, default=0.0)
    by_tier: dict[int, float] = {}
    for b, t in enumerate(line.tier):
        by_tier[t] = max(by_tier.get(t, 0.0), line.dur[b])
    for t, longest in by_tier.items():
        starts = []
        for c in range(len(line.names)):
            if line.allowed(c, t):
                if line.held[c] is None or line.held[c] == t:
                    starts.append(min(line.free[c]))
                else:
                    starts.append(max(line.drain[c], max(line.free[c])))
        lb = max(lb, min(starts) + longest)
    work = [f for c in range(len(line.names)) if any(line.allowed(c, t) for t in by_tier) for f in line.free[c]]
    if work and line.dur:
        lb = max(lb, (sum(work) + sum(line.dur)) / len(work))
    return lb


# ---------------------------------------------------------------------------------------------
# edge/scheduling: the blocks as instances, solved level by level, and the whole plan checked


def _quantum(line: _Line) -> float:
    top = max([1.0, *line.dur, *(f for fr in line.free for f in fr), *line.drain])
    return 1.0 if top <= MAX_MINUTES else float(math.ceil(top / MAX_MINUTES))


def _q(x: float, q: float) -> int:
    return max(0, math.ceil(x / q - 1e-9))


def _unit_module(mid: str, fixture: str, uid: str, dur_q: int, release_q: int = 0) -> dict:
    m = {"id": mid, "station": fixture,
         "tasks": [{"item": "discharge", "rest_class_min": 0, "units": [{"id": uid, "duration_min": dur_q}]}]}
    if release_q:
        m["release_min"] = release_q
    return m


def _lpt(line: _Line, c: int, bats: list[int], rel: list[int], dq: list[int]) -> tuple[list, int]:
    h = [(r, k) for k, r in enumerate(rel)]
    heapq.heapify(h)
    out = []
    for b in sorted(bats, key=lambda b: (-dq[b], b)):
        t, k = heapq.heappop(h)
        out.append((b, line.usable[c][k], t))
        heapq.heappush(h, (t + dq[b], k))
    return out, max(t for t, _ in h)


def _block_bound(bats: list[int], rel: list[int], dq: list[int]) -> int:
    """A block's bound on its stations: its longest battery after the first free station; all
    its work after the stations' release, spread evenly; the last release."""
    if not bats:
        return max(rel)
    return max(max(rel), min(rel) + max(dq[b] for b in bats),
               -(-(sum(rel) + sum(dq[b] for b in bats)) // len(rel)))


def _solve_level(line: _Line, blocks: list, lvl: int, chans: list[int], rel: dict[int, list[int]],
                 dq: list[int], limit_s: float, seed: int) -> dict[int, tuple[list, int]]:
    """One level's blocks as one instance for edge.scheduling.solve; per channel its plan."""
    base = 0 if lvl == 0 else min(rel[c][0] for c in chans)
    chjson, mods, held = [], [], []
    for c in chans:
        bats = blocks[c][lvl][1]
        if not bats:
            continue
        if lvl and rel[c][0] - base > MAX_MINUTES:
            return {}
        for k, s in enumerate(line.usable[c]):
            fixtures = [f"F{b}" for b in bats]
            if lvl == 0 and rel[c][k] > 0:
                fixtures.append(f"H{s}")
                mods.append(_unit_module(f"H{s}", f"H{s}", f"H{s}", rel[c][k]))
                held.append(s)
            chjson.append({"id": f"S{s}", "stations": fixtures})
        mods += [_unit_module(f"B{b}", f"F{b}", f"U{b}", dq[b], rel[c][0] - base if lvl else 0) for b in bats]
    if not chjson:
        return {}
    inst = instance_from_dict({"schema": SCHEMA_ID, "name": f"tiers-level-{lvl}", "channels": chjson,
                               "modules": mods}, source=f"<assign level {lvl}>")
    uidx, cidx = {u.id: u.index for u in inst.units}, {ch.id: ch.index for ch in inst.channels}
    frozen = Frozen({uidx[f"H{s}"]: (cidx[f"S{s}"], 0) for s in held}) if held else None
    sol = solve(inst, time_limit_s=limit_s, frozen=frozen, seed=seed)
    chan_of = {b: c for c in chans for b in blocks[c][lvl][1]}
    out: dict[int, tuple[list, int]] = {}
    for p in sol.plan.placements:
        if p.unit_id.startswith("U"):
            b = int(p.unit_id[1:])
            placed, end = out.get(chan_of[b], ([], max(rel[chan_of[b]])))
            placed.append((b, int(p.channel_id[1:]), p.start_min + base))
            out[chan_of[b]] = (placed, max(end, p.end_min + base))
    return out


def _plan_levels(line: _Line, blocks: list, q: float, deadline: Deadline, seed: int,
                 stages: list[str]) -> tuple[list, dict]:
    """Quantised plan: [(battery, station, start_q)] and per (channel, level) (start_q, end_q)."""
    dq = [max(1, _q(p, q)) for p in line.dur]
    nc, levels = len(blocks), max((len(b) for b in blocks), default=0)
    prev = [0] * nc
    entries, spans = [], {}
    solver = deadline.share(SOLVE_SHARE)
    for lvl in range(levels):
        chans = [c for c in range(nc) if len(blocks[c]) > lvl and line.usable[c]]
        rel = {c: [_q(f, q) for f in line.free[c]] if lvl == 0 else [prev[c]] * len(line.usable[c]) for c in chans}
        chosen = {c: _lpt(line, c, blocks[c][lvl][1], rel[c], dq) for c in chans}
        open_ = [c for c in chans if chosen[c][1] > _block_bound(blocks[c][lvl][1], rel[c], dq)]
        units = sum(len(blocks[c][lvl][1]) for c in open_)
        share = min(solver.left_s() / (levels - lvl), SOLVE_CAP_S + SOLVE_S_PER_UNIT * units)
        if not open_:
            stages.append(f"level {lvl}: LPT meets the bound on every channel")
        elif share >= MIN_TIME_LIMIT_S:
            better = 0
            for c, (placed, end) in _solve_level(line, blocks, lvl, open_, rel, dq, share, seed).items():
                if end < chosen[c][1]:
                    chosen[c], better = (placed, end), better + 1
            stages.append(f"level {lvl}: solve shorter on {better} of {len(open_)} channels above their bound")
        else:
            stages.append(f"level {lvl}: LPT (no time left for solve)")
        for c in chans:
            placed, end = chosen[c]
            if lvl == 0:
                end = max(end, _q(line.drain[c], q))
            start = min((s for _, _, s in placed), default=prev[c] if lvl else 0)
            spans[(c, lvl)] = (start, end)
            prev[c] = end
            entries += placed
    return entries, spans


def _check(line: _Line, q: float, entries: list[tuple[int, int, int, int]]) -> list[str]:
    """The whole plan [(battery, station, start_q, end_q)] as one instance: edge/scheduling's
    validator, then the tier rule per channel. Returns 'kind: message' lines (empty: valid)."""
    problems: list[str] = []
    channel_of = {s: c for c, ch in enumerate(line.usable) for s in ch}
    all_channel_of = {s: c for c, ch in enumerate(line.stations) for s in ch}
    usable = [s for ch in line.usable for s in ch]
    busy_q = {s: _q(f, q) for c in range(len(line.names)) for s, f in zip(line.usable[c], line.free[c])}
    if line.dur and usable:
        fixtures = [f"F{b}" for b in range(len(line.dur))]
        chjson = [{"id": f"S{s}", "stations": fixtures + ([f"H{s}"] if busy_q[s] else [])} for s in usable]
        mods = [_unit_module(f"B{b}", f"F{b}", f"U{b}", max(1, _q(p, q))) for b, p in enumerate(line.dur)]
        mods += [_unit_module(f"H{s}", f"H{s}", f"H{s}", busy_q[s]) for s in usable if busy_q[s]]
        inst = instance_from_dict({"schema": SCHEMA_ID, "name": "tiers", "channels": chjson, "modules": mods},
                                  source="<assign plan>")
        frozen = {f"H{s}": Placement(f"H{s}", f"H{s}", f"S{s}", 0, busy_q[s]) for s in usable if busy_q[s]}
        plan = Plan(tuple(Placement(f"U{b}", f"B{b}", f"S{s}", st, en) for b, s, st, en in entries)
                    + tuple(frozen.values()), "assign")
        problems += [str(v) for v in check_plan(inst, plan, frozen)]
    elif entries:
        problems.append("station_unusable: batteries are placed but no station is usable")
    for b, s, st, en in entries:
        if s not in channel_of:
            problems.append(f"station_unusable: battery {line.tier[b]}/{line.index[b]} on station {s}, "
                            "which is not a usable station of any channel")
    spans: list[list[tuple[float, float, int]]] = [[] for _ in line.names]
    for c, held in enumerate(line.held_spans):
        spans[c] += [(0.0, _q(e, q) if math.isfinite(e) else math.inf, line.held[c]) for _, e in held]
    for b, s, st, en in entries:
        if s in all_channel_of:
            spans[all_channel_of[s]].append((st, en, line.tier[b]))
    for c, sp in enumerate(spans):
        sp.sort(key=lambda x: (x[0], x[1]))
        tier, until = None, -math.inf
        for st, en, t in sp:
            if st < until and t != tier:
                problems.append(f"tier_mixed: channel {line.names[c]!r}: tier {t} starts at {st * q:.0f} s "
                                f"while tier {tier} runs until {until * q:.0f} s")
                until = max(until, en)
            elif st >= until:
                tier, until = t, en
            else:
                until = max(until, en)
    return problems


# ---------------------------------------------------------------------------------------------
# the public calls


def assign_tiers(channels: Sequence[ChannelLoad], waiting: Mapping[int, Sequence[float]], *,
                 time_limit_s: float = 1.0, overhead_s: float = LOAD_REST_OVERHEAD_S,
                 previous: Assignment | None = None, stability_margin: float = STABILITY_MARGIN,
                 seed: int = 0) -> Assignment:
    """The tier of each channel and the plan behind it (module docstring: the model); at most
    `time_limit_s` (edge/scheduling's limits: 0.05 s to a day). Call it again on a new batch, an
    isolated station or an early finish, with `previous`. Raises AssignError on bad inputs only."""
    limit = check_time_limit_s(time_limit_s, "time_limit_s")
    deadline = Deadline(limit)
    line = _prepare(channels, waiting, overhead_s)
    stages: list[str] = []
    lb = _lower_bound(line)
    reserve = min(0.4 * limit, FINISH_S + FINISH_S_PER_PAIR * len(line.dur) * sum(map(len, line.usable)))
    work = deadline.until(deadline.end - reserve)
    search = work.share(SEARCH_SHARE)
    pins = {}
    if previous is not None:
        tiers = set(line.tier)
        for c, name in enumerate(line.names):
            t = previous.channel_tier.get(name)
            if t in tiers and line.held[c] is None and line.allowed(c, t):
                pins[c] = t
    blocks, ends = _Search(line, {}, lb, search.share(0.5) if pins else search, seed).run(stages)
    if pins and any(not blocks[c] or blocks[c][0][0] != t for c, t in pins.items()):
        alt_stages: list[str] = []
        alt, alt_ends = _Search(line, pins, lb, search, seed).run(alt_stages)
        if max(alt_ends) <= max(ends) * (1 + stability_margin) + EPS_S:
            blocks = alt
            stages.append(f"previous tiers kept ({max(alt_ends):.0f} s against {max(ends):.0f} s): "
                          + "; ".join(alt_stages))
    q = _quantum(line)
    entries, spans = _plan_levels(line, blocks, q, work, seed, stages)
    dq = [max(1, _q(p, q)) for p in line.dur]
    checked = [(b, s, st, st + dq[b]) for b, s, st in entries]
    problems = _check(line, q, checked)
    if problems:   # a bug here, never a bad input: refuse rather than hand the flow a wrong plan
        raise AssignError("the tier plan failed its own check:\n  " + "\n  ".join(problems[:20]))
    return _assignment(line, blocks, checked, spans, q, lb, overhead_s, stages)


def _assignment(line: _Line, blocks: list, entries: list, spans: dict, q: float, lb: float,
                overhead_s: float, stages: list[str]) -> Assignment:
    by_b = {b: (s, st, en) for b, s, st, en in entries}
    out_blocks: dict[str, tuple[Block, ...]] = {}
    channel_tier: dict[str, int] = {}
    tier_start: dict[int, float] = {}
    end_q = max((_q(d, q) for d in line.drain), default=0)
    for c, name in enumerate(line.names):
        if line.held[c] is not None:
            channel_tier[name] = line.held[c]
        out = []
        for lvl, (t, bats) in enumerate(blocks[c]):
            if (c, lvl) not in spans:
                continue
            st, en = spans[(c, lvl)]
            end_q = max(end_q, en)
            planned = tuple(sorted((PlannedBattery(t, line.index[b], by_b[b][0], by_b[b][1] * q, by_b[b][2] * q)
                                    for b in bats), key=lambda p: (p.start_s, p.station)))
            if planned:
                channel_tier.setdefault(name, t)
                tier_start[t] = min(tier_start.get(t, math.inf), planned[0].start_s)
            out.append(Block(t, st * q, en * q, planned))
        if out:
            out_blocks[name] = tuple(out)
    note, span, bound = "", end_q * q, lb
    if line.unplaced:
        span = bound = math.inf
        n = sum(line.unplaced.values())
        why = ("no usable station" if not any(line.usable)
               else "every channel with a usable station is locked to another tier")
        note = f"{n} batteries of tiers {sorted(line.unplaced)} cannot be placed: {why}"
    elif not line.dur:
        note = "no battery waiting"
    return Assignment(channel_tier, out_blocks, span, bound, tier_start, dict(line.unplaced), q, overhead_s,
                      tuple(stages), note)


def check_assignment(channels: Sequence[ChannelLoad], waiting: Mapping[int, Sequence[float]],
                     assignment: Assignment) -> list[str]:
    """Every violation of `assignment` against the line ('kind: message'; empty = valid):
    edge/scheduling's validator on the whole plan as an instance, plus the tier rule (two
    tiers on one channel at once), unusable stations and batteries a block does not own."""
    line = _prepare(channels, waiting, assignment.overhead_s)
    q = assignment.quantum_s
    key = {(t, i): b for b, (t, i) in enumerate(zip(line.tier, line.index))}
    problems, entries = [], []
    for name, blocks in assignment.blocks.items():
        for block in blocks:
            for p in block.batteries:
                b = key.get((p.tier, p.index))
                if b is None:
                    problems.append(f"unknown_unit: battery {p.tier}/{p.index} is not waiting")
                    continue
                if p.tier != block.tier:
                    problems.append(f"tier_mixed: channel {name!r}: battery {p.tier}/{p.index} "
                                    f"in a tier-{block.tier} block")
                entries.append((b, p.station, round(p.start_s / q), round(p.end_s / q)))
    return problems + _check(line, q, entries)


def most_waiting_makespan_s(channels: Sequence[ChannelLoad], waiting: Mapping[int, Sequence[float]], *,
                            overhead_s: float = LOAD_REST_OVERHEAD_S) -> float:
    """The makespan of the flow's rule before S13 (edge/supervisor/flow.py `_assign`: an empty
    channel takes the tier with the most waiting batteries, batteries in waiting order), by the
    same model; inf when a tier cannot be placed."""
    line = _prepare(channels, waiting, overhead_s)
    return math.inf if line.unplaced else _simulate(line, False, {})[1]

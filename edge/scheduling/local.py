"""Local search on unit sequences (the decoder's input), seeded by any sequence, time-limited.

A move takes one unit out of the sequence and puts it back elsewhere between its module's
neighbours (so the module's order, and with first_fixed its task blocks, stay as they were);
the shared decoder evaluates it. A move is kept when the makespan does not grow and the sum of
the module completion times does not grow either when the makespan ties (plateaus are crossed,
cycling is limited). After `kick_after` moves without gain, a few random moves are applied to
the best sequence (iterated local search). Seeded and reproducible for a given number of
evaluations; with a time limit, the result depends on the machine's speed.

Tests: tests/edge/scheduling/test_schedule_best.py, test_schedule_budget.py.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from edge.scheduling.budget import Deadline
from edge.scheduling.decode import Compiled, decode


@dataclass
class LocalResult:
    sequence: list[int]
    starts: list[int]
    chans: list[int]
    makespan: int
    evaluations: int
    runtime_s: float


def _score(c: Compiled, starts: list[int], makespan: int) -> tuple[int, int]:
    ends = {}
    for u in c.free:
        m = c.module[u]
        ends[m] = max(ends.get(m, 0), starts[u] + c.dur[u])
    return makespan, sum(ends.values())


def _move(c: Compiled, seq: list[int], rng: random.Random) -> list[int] | None:
    i = rng.randrange(len(seq))
    u = seq[i]
    m = c.module[u]
    lo = i - 1
    while lo >= 0 and c.module[seq[lo]] != m:
        lo -= 1
    hi = i + 1
    while hi < len(seq) and c.module[seq[hi]] != m:
        hi += 1
    if hi - lo <= 2:
        return None
    rest = seq[:i] + seq[i + 1:]
    j = rng.randrange(lo + 1, hi)     # positions in `rest` between the module neighbours
    if j == i:
        return None
    rest.insert(j, u)
    return rest


def local_search(c: Compiled, seq: list[int], time_limit_s: float | None, seed: int = 0,
                 max_evaluations: int | None = None, target: int = 0, kick_after: int = 2000,
                 deadline: Deadline | None = None) -> LocalResult:
    """Improve `seq` until the time limit (or `deadline`, the earlier), the evaluation cap or
    makespan <= target. A move (one decode) is not started when the longest move so far would
    end past the deadline."""
    t0 = time.perf_counter()
    if time_limit_s is not None:
        own = Deadline(time_limit_s)
        deadline = own if deadline is None else deadline.until(own.end)
    if deadline is None and max_evaluations is None:
        raise ValueError("local_search needs a time limit, a deadline or an evaluation cap")
    rng = random.Random(seed)
    starts, chans, span = decode(c, seq)
    cur, cur_score = list(seq), _score(c, starts, span)
    best = LocalResult(list(seq), starts, chans, span, 1, 0.0)
    evals, since_gain = 1, 0
    move_s = 0.0       # the longest move so far: no move starts that would end past the deadline
    while span > target and not (deadline is not None and deadline.left_s() <= move_s):
        if max_evaluations is not None and evals >= max_evaluations:
            break
        cand = _move(c, cur, rng)
        if cand is None:
            continue
        t_move = time.perf_counter()
        s, ch, sp = decode(c, cand)
        evals += 1
        sc = _score(c, s, sp)
        move_s = max(move_s, time.perf_counter() - t_move)
        if sc <= cur_score:
            cur, cur_score = cand, sc
        if sp < best.makespan:
            best = LocalResult(cand, s, ch, sp, evals, 0.0)
            since_gain = 0
        else:
            since_gain += 1
        if since_gain >= kick_after:
            cur = list(best.sequence)
            for _ in range(max(2, len(cur) // 50)):
                cand = _move(c, cur, rng)
                cur = cand or cur
            cur_score = _score(c, *decode(c, cur)[::2])
            since_gain = 0
        span = best.makespan
    best.evaluations = evals
    best.runtime_s = time.perf_counter() - t0
    return best

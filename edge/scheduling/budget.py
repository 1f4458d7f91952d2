"""Time budgets of the scheduling methods: the checked `--time-limit` and the `Deadline` every
search stage polls.

A time limit is finite and between MIN_TIME_LIMIT_S (50 ms: below it not even the greedy plan
of a small line fits, so a smaller value is a typo, not a wish) and MAX_TIME_LIMIT_S (one day).
`Deadline` holds an end time on an injectable clock (tests pass a fake one); `share(f)` hands a
stage a fraction of what is left, never past the parent's end.

Tests: tests/edge/scheduling/test_schedule_budget.py.
"""

from __future__ import annotations

import math
import time
from typing import Callable

MIN_TIME_LIMIT_S = 0.05
MAX_TIME_LIMIT_S = 86_400.0


class TimeLimitError(ValueError):
    """A time limit that is not a finite number of seconds in [MIN_TIME_LIMIT_S, MAX_TIME_LIMIT_S]."""


def check_time_limit_s(value: float | str, name: str = "time limit") -> float:
    """The limit as float seconds, or TimeLimitError saying what is allowed."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise TimeLimitError(f"{name}: expected seconds (a number), got {value!r}") from None
    if not math.isfinite(seconds):
        raise TimeLimitError(f"{name}: must be a finite number of seconds, got {value!r}")
    if not MIN_TIME_LIMIT_S <= seconds <= MAX_TIME_LIMIT_S:
        raise TimeLimitError(f"{name}: must be between {MIN_TIME_LIMIT_S} s and {MAX_TIME_LIMIT_S:.0f} s, "
                             f"got {value!r}")
    return seconds


class Deadline:
    """An end time on `clock` (seconds, monotonic)."""

    def __init__(self, budget_s: float, clock: Callable[[], float] = time.perf_counter,
                 _end: float | None = None):
        self.clock = clock
        self.end = clock() + budget_s if _end is None else _end

    def left_s(self) -> float:
        return self.end - self.clock()

    def expired(self) -> bool:
        return self.clock() >= self.end

    def share(self, fraction: float) -> Deadline:
        """A deadline `fraction` of the time left from now (never later than this one)."""
        return Deadline(0.0, self.clock, self.clock() + max(0.0, self.left_s()) * fraction)

    def until(self, end: float) -> Deadline:
        return Deadline(0.0, self.clock, min(self.end, end))

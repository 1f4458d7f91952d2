"""Timing statistics of the real-time loop: lateness and work time per tick, overruns, bus misses.

Lateness is how long after its absolute deadline a tick woke; work is the time from waking to
having written the outputs. The last `window` ticks are kept in preallocated arrays (8192 ticks:
13 minutes at 100 ms, so a 10-minute soak's percentiles cover the whole run), so recording a
tick allocates nothing; percentiles are computed when asked (once a second by the loop, and at
the end). A bus miss is a tick whose read or write failed; the longest run of consecutive misses
is what the blind time (LoopSettings.link_blind_s) must cover. Tests: tests/edge/rtloop/test_loop.py.
"""

from __future__ import annotations

import numpy as np


class TickStats:
    def __init__(self, window: int = 8192):
        self._lateness_ns = np.zeros(window, dtype=np.int64)
        self._work_ns = np.zeros(window, dtype=np.int64)
        self.ticks = 0
        self.overruns = 0  # ticks whose work ran past the next deadline
        self.lateness_max_ns = 0
        self.work_max_ns = 0
        self.bus_misses = 0  # ticks whose read or write raised BusError
        self.miss_streak_max = 0  # the longest run of consecutive missed ticks

    def record(self, lateness_ns: int, work_ns: int, overran: bool) -> None:
        slot = self.ticks % self._lateness_ns.size
        self._lateness_ns[slot] = lateness_ns
        self._work_ns[slot] = work_ns
        self.ticks += 1
        self.overruns += overran
        self.lateness_max_ns = max(self.lateness_max_ns, lateness_ns)
        self.work_max_ns = max(self.work_max_ns, work_ns)

    def record_miss(self, streak: int) -> None:
        """One missed tick, the `streak`-th in a row."""
        self.bus_misses += 1
        self.miss_streak_max = max(self.miss_streak_max, streak)

    def summary(self) -> dict[str, int]:
        n = min(self.ticks, self._lateness_ns.size)
        misses = {"bus_misses": self.bus_misses, "bus_miss_streak_max": self.miss_streak_max}
        if n == 0:
            return {"ticks": 0, "overruns": 0, "lateness_p50_ns": 0, "lateness_p99_ns": 0,
                    "lateness_max_ns": 0, "work_mean_ns": 0, "work_max_ns": 0, **misses}
        lateness = self._lateness_ns[:n]
        p50, p99 = np.percentile(lateness, [50, 99])
        return {
            "ticks": self.ticks,
            "overruns": self.overruns,
            "lateness_p50_ns": int(p50),
            "lateness_p99_ns": int(p99),
            "lateness_max_ns": int(self.lateness_max_ns),
            "work_mean_ns": int(self._work_ns[:n].mean()),
            "work_max_ns": int(self.work_max_ns),
            **misses,
        }


TIMING_NS = ("lateness_p50_ns", "lateness_p99_ns", "lateness_max_ns", "work_mean_ns", "work_max_ns")


def timing_us(summary: dict) -> dict[str, float]:
    """The timing fields of a `TickStats.summary()` in µs, to 0.1 µs (`lateness_p99_ns` ->
    `lateness_p99_us`): how the bench tools report them."""
    return {name[:-3] + "_us": round(summary[name] / 1e3, 1) for name in TIMING_NS}

"""Timing statistics of the real-time loop: lateness and work time per tick, overruns, bus misses.

Lateness is how long after its absolute deadline a tick woke; work is the time from waking to
having written the outputs. The statistics cover the last `window` ticks (8192: 13 minutes at
100 ms, so a 10-minute soak's percentiles cover the whole run) and are kept incrementally: a
tick's record is O(1) and allocates nothing (its lateness goes into a bin of a histogram, the
bin of the tick leaving the window comes out; the work time joins a running sum). Percentiles
come from the histogram when the summary is read (a cumulative sum over its bins in a
preallocated buffer), not from sorting the window, so publishing status every tick stays cheap.

The bins are log-linear: exact below 128 ns, then 64 a power of two, so a percentile is the
upper edge of its bin, at most 1/64 (1.6 %) above the nearest-rank value, never below it, and
never above the largest lateness seen. Maxima cover the whole run. A bus miss is a tick whose
read or write failed; the longest run of consecutive misses is what the blind time
(LoopSettings.link_blind_s) must cover. Tests: tests/edge/rtloop/test_stats.py, test_loop.py.
"""

from __future__ import annotations

import math

import numpy as np

SUB_BITS = 6  # 64 bins a power of two above the exact range
_EXACT = 2 << SUB_BITS  # 128: below this every nanosecond has its bin
_TOP_BITS = 40  # lateness up to 2**40 ns (18 minutes); a longer one counts in the last bin
N_BINS = _EXACT + (_TOP_BITS - SUB_BITS - 1) * (1 << SUB_BITS)


def bin_of(value_ns: int) -> int:
    """The histogram bin of a lateness (negative counts as 0)."""
    if value_ns < _EXACT:
        return max(0, value_ns)
    shift = value_ns.bit_length() - SUB_BITS - 1  # >= 1
    index = _EXACT + (shift - 1) * (1 << SUB_BITS) + ((value_ns >> shift) - (1 << SUB_BITS))
    return min(index, N_BINS - 1)


def bin_upper_ns(index: int) -> int:
    """The largest lateness that falls in bin `index`."""
    if index < _EXACT:
        return index
    shift, mantissa = divmod(index - _EXACT, 1 << SUB_BITS)
    shift += 1
    return ((mantissa + (1 << SUB_BITS) + 1) << shift) - 1


class TickStats:
    def __init__(self, window: int = 8192):
        self.window = window
        self._bins = np.zeros(window, dtype=np.int32)  # each recorded tick's lateness bin, a ring
        self._work_ns = np.zeros(window, dtype=np.int64)  # each recorded tick's work, a ring
        self._histogram = np.zeros(N_BINS, dtype=np.int64)
        self._cumulative = np.zeros(N_BINS, dtype=np.int64)  # summary()'s buffer
        self._work_sum_ns = 0
        self.ticks = 0
        self.overruns = 0  # ticks whose work ran past the next deadline
        self.lateness_max_ns = 0
        self.work_max_ns = 0
        self.bus_misses = 0  # ticks whose read or write raised BusError
        self.miss_streak_max = 0  # the longest run of consecutive missed ticks

    def record(self, lateness_ns: int, work_ns: int, overran: bool) -> None:
        slot = self.ticks % self.window
        if self.ticks >= self.window:  # the oldest tick leaves the window
            self._histogram[self._bins[slot]] -= 1
            self._work_sum_ns -= int(self._work_ns[slot])
        lateness_ns, work_ns = int(lateness_ns), int(work_ns)
        index = bin_of(lateness_ns)
        self._bins[slot] = index
        self._histogram[index] += 1
        self._work_ns[slot] = work_ns
        self._work_sum_ns += work_ns
        self.ticks += 1
        self.overruns += bool(overran)
        if lateness_ns > self.lateness_max_ns:
            self.lateness_max_ns = lateness_ns
        if work_ns > self.work_max_ns:
            self.work_max_ns = work_ns

    def record_miss(self, streak: int) -> None:
        """One missed tick, the `streak`-th in a row."""
        self.bus_misses += 1
        self.miss_streak_max = max(self.miss_streak_max, streak)

    def percentiles_ns(self, *qs: float) -> tuple[int, ...]:
        """The q-th percentiles (0 < q <= 100) of the window's lateness: for each, the upper edge
        of the bin holding the nearest-rank value, capped at the largest lateness seen."""
        n = min(self.ticks, self.window)
        if n == 0:
            return (0,) * len(qs)
        np.cumsum(self._histogram, out=self._cumulative)
        out = []
        for q in qs:
            rank = min(n, max(1, math.ceil(q * n / 100)))
            index = int(np.searchsorted(self._cumulative, rank))  # the first bin reaching the rank
            out.append(min(bin_upper_ns(index), self.lateness_max_ns))
        return tuple(out)

    def summary(self) -> dict[str, int]:
        n = min(self.ticks, self.window)
        misses = {"bus_misses": self.bus_misses, "bus_miss_streak_max": self.miss_streak_max}
        if n == 0:
            return {"ticks": 0, "overruns": 0, "lateness_p50_ns": 0, "lateness_p99_ns": 0,
                    "lateness_max_ns": 0, "work_mean_ns": 0, "work_max_ns": 0, **misses}
        p50, p99 = self.percentiles_ns(50, 99)
        return {
            "ticks": self.ticks,
            "overruns": self.overruns,
            "lateness_p50_ns": p50,
            "lateness_p99_ns": p99,
            "lateness_max_ns": int(self.lateness_max_ns),
            "work_mean_ns": self._work_sum_ns // n,
            "work_max_ns": int(self.work_max_ns),
            **misses,
        }


TIMING_NS = ("lateness_p50_ns", "lateness_p99_ns", "lateness_max_ns", "work_mean_ns", "work_max_ns")


def timing_us(summary: dict) -> dict[str, float]:
    """The timing fields of a `TickStats.summary()` in µs, to 0.1 µs (`lateness_p99_ns` ->
    `lateness_p99_us`): how the bench tools report them."""
    return {name[:-3] + "_us": round(summary[name] / 1e3, 1) for name in TIMING_NS}

"""The loop's timing statistics: incremental, over a sliding window, percentiles within a bin."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.rtloop.stats import N_BINS, TickStats, bin_of, bin_upper_ns, timing_us

pytestmark = pytest.mark.unit


def nearest_rank(values, q):
    ordered = np.sort(np.asarray(values))
    return int(ordered[max(1, math.ceil(q * len(ordered) / 100)) - 1])


def test_bins_are_exact_below_128_ns_then_within_1_64():
    assert [bin_of(v) for v in (-5, 0, 1, 127)] == [0, 0, 1, 127]
    for value in (128, 129, 200, 1_000, 99_999, 123_456_789, 2**39 + 12345):
        index = bin_of(value)
        assert value <= bin_upper_ns(index) <= value * (1 + 1 / 64), value
        assert index == 0 or bin_upper_ns(index - 1) < value  # the bin below ends before it
    assert bin_of(2**45) == N_BINS - 1  # beyond the range: the last bin


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_match_the_nearest_rank_within_a_bin(seed):
    rng = np.random.default_rng(seed)
    lateness = np.concatenate([rng.gamma(2.0, 40_000.0, 3000), rng.uniform(0, 3e6, 30)]).astype(np.int64)
    rng.shuffle(lateness)
    stats = TickStats(window=8192)
    for value in lateness:
        stats.record(int(value), 1_000_000, False)
    summary = stats.summary()
    for q, key in ((50, "lateness_p50_ns"), (99, "lateness_p99_ns")):
        truth = nearest_rank(lateness, q)
        assert truth <= summary[key] <= truth * (1 + 1 / 64) + 1, (q, truth, summary[key])
    assert summary["lateness_max_ns"] == lateness.max() and summary["ticks"] == len(lateness)


def test_the_window_slides_counts_and_means_follow_it():
    stats = TickStats(window=100)
    for _ in range(100):
        stats.record(5_000_000, 9_000, True)  # an early burst of late ticks
    for i in range(250):
        stats.record(1_000 + i, 2_000, False)
    summary = stats.summary()
    recent = [1_000 + i for i in range(150, 250)]
    assert summary["lateness_p99_ns"] == pytest.approx(nearest_rank(recent, 99), rel=1 / 64)
    assert summary["lateness_p50_ns"] <= 1_250
    assert summary["work_mean_ns"] == 2_000  # the burst left the window
    assert summary["lateness_max_ns"] == 5_000_000 and summary["work_max_ns"] == 9_000  # maxima: whole run
    assert summary["overruns"] == 100 and summary["ticks"] == 350
    assert int(stats._histogram.sum()) == 100


def test_an_empty_summary_and_the_conversion_to_microseconds():
    stats = TickStats()
    assert stats.summary()["lateness_p99_ns"] == 0 and stats.summary()["ticks"] == 0
    stats.record(150_000, 2_500_000, False)
    stats.record_miss(1)
    stats.record_miss(2)
    summary = stats.summary()
    assert summary["lateness_p50_ns"] == summary["lateness_p99_ns"] == 150_000  # capped at the max
    assert summary["bus_misses"] == 2 and summary["bus_miss_streak_max"] == 2
    assert timing_us(summary)["work_mean_us"] == 2500.0

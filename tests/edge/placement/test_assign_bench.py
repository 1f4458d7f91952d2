"""Tier assignment benchmarks (marker bench): a bench line (8 stations in 2 channels, 40
batteries, 4 tiers, default 1 s budget) and a plant line (128 stations in 16 channels, 2 000
batteries, 6 tiers, 2 s budget). extra_info holds the makespan, the bound and the flow's
most-waiting rule on the same line. With --benchmark-disable every body runs once.
"""

from __future__ import annotations

import pytest

from edge.placement.assign import assign_tiers, check_assignment, most_waiting_makespan_s

from .lines import random_line

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("size,limit_s", [((2, 4, 40, 4), 1.0), ((16, 8, 2000, 6), 2.0)],
                         ids=["line8x40", "plant128x2000"])
def test_bench_assign_tiers(benchmark, size, limit_s):
    chans, waiting = random_line(0, *size)
    a = benchmark(assign_tiers, chans, waiting, time_limit_s=limit_s)
    naive = most_waiting_makespan_s(chans, waiting)
    benchmark.extra_info.update(makespan_s=a.predicted_makespan_s, lower_bound_s=a.lower_bound_s,
                                most_waiting_s=naive, ratio=a.predicted_makespan_s / naive, stages=list(a.stages))
    assert check_assignment(chans, waiting, a) == []
    assert a.lower_bound_s <= a.predicted_makespan_s < naive

"""`bench rtcore` runs the loop in its own process under load and reports its timing; the tick
work at a station count against the served bench."""

import pytest

from tools.bench_rtcore import bench_rtcore, bench_tick_work

pytestmark = pytest.mark.bench


def test_bench_rtcore_reports_lateness_under_load():
    report = bench_rtcore(1.0)
    # ticks are counted, not timed: under load the loop skips the periods an overrun has missed
    assert report["ticks_expected"] == 10 and 0 < report["ticks"] <= report["ticks_expected"]
    assert 0 <= report["lateness_p50_us"] <= report["lateness_p99_us"] <= report["lateness_max_us"]
    assert report["work_mean_us"] > 0 and not report["safe_state_at_end"]
    assert report["status_reads_over_link"] >= 1  # the parent read the loop's status as it ran


@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_tick_work_on_the_served_bench_at_a_station_count(protocol):
    report = bench_tick_work(protocol, stations=16, seconds=2.0, realtime=False)
    assert report["stations"] == 16 and report["protocol"] == protocol
    assert 0 < report["ticks"] <= report["ticks_expected"] == 20
    assert 0 < report["work_mean_us"] <= report["work_max_us"]
    assert report["link_lost_latches"] == 0

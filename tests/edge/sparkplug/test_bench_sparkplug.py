"""The broker-path benchmark runs end to end (small: 8 stations for 3 s) and counts every report."""

from __future__ import annotations

import pytest

from tools.bench_sparkplug import run_bench

pytestmark = pytest.mark.bench


def test_the_benchmark_counts_every_report_and_measures(mosquitto_installed, tmp_path):
    result = run_bench(stations=8, duration_s=3.0, folder=tmp_path)
    assert result["reports_offered"] >= 8 * 3  # one a station a second, the first at once
    assert result["reports_missing"] == 0
    assert result["reports_received"] == result["reports_offered"]
    assert result["latency_ms"]["n"] == result["reports_offered"] - 8
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
    assert result["publisher"]["dropped_messages"] == 0


@pytest.mark.slow  # 8 s; in make test-slow
def test_the_benchmark_across_a_broker_restart_counts_every_report(mosquitto_installed, tmp_path):
    result = run_bench(stations=8, duration_s=5.0, restart_at_s=2.0, folder=tmp_path)
    assert result["broker_restarted_at_s"] == 2.0
    assert result["reports_missing"] == 0 and result["reports_received"] == result["reports_offered"]
    assert result["publisher"]["births"] == 2 and result["publisher"]["dropped_messages"] == 0

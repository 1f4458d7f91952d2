"""`discharge-edge demo` runs as `make demo` runs it (shorter) and reports what it measured."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.hil


def test_demo_runs_the_loop_against_the_bench_and_writes_its_report(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--seconds", "6", "--time-scale", "10",
                           "--short-onset-s", "15", "--out", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert 55 <= report["rtcore"]["ticks"] <= 61  # 6 s at 100 ms
    assert report["plant_time_s"] >= 50  # time x10
    hot = report["hot_station"]
    assert hot["first_relief_after_onset_s"] is not None and hot["peak_relief_kpa"] > 0
    if report["rtcore"]["safe_state"]:  # only a thermal alarm may have stopped the batch
        assert set(report["rtcore"]["safe_cause"]) <= {"OVER_TEMP", "DTDT_ALARM"}
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "report.json").read_text()) == report

"""`discharge-edge demo` runs as `make demo` runs it (faster) and reports what it measured."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.hil


def test_demo_isolates_the_hot_station_and_the_others_finish(tmp_path):
    done = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--max-seconds", "200",
                           "--out", str(tmp_path), "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["ok"] is True
    rt = report["rtcore"]
    assert rt["ticks"] > 0 and rt["safe_state"] is False and rt["safe_values_written_at_stop"] is True
    hot = report["hot_station"]
    assert hot["first_relief_after_onset_s"] is not None and hot["peak_relief_kpa"] > 0
    assert hot["outcome"] == "isolated" and set(hot["causes"]) <= {"OVER_TEMP", "DTDT_ALARM"}
    stations = report["stations"]
    assert [s["outcome"] for s in stations if s["station"] != hot["station"]] == ["finished"] * 7
    assert report["stations_isolated"] == 1 and report["stations_finished"] == 7
    assert all(s["causes"] == [] for s in stations if s["station"] != hot["station"])
    assert "isolated" in open(tmp_path / "report.json").read()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_demo_refuses_a_time_scale_too_coarse_for_the_check_interval():
    done = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--time-scale", "40", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "--time-scale 40 gives a core tick of 4 s of plant time" in done.stderr

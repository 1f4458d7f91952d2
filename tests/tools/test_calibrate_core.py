"""tools/calibrate_core.py: a --quick run (few modules, 1C and 3C, a two-point grid) measures real
properties of the plant and the core: normal heating grows with the rate and the interval, the
chosen θ stays above it, a short is detected within seconds at 1C, and the calibrated gains beat
the old ones and S14-S15 off."""

import json
import subprocess
import sys

import pytest

from edge import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report():
    done = subprocess.run([sys.executable, "-m", "tools.calibrate_core", "--quick", "--json", "--workers", "1"],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_normal_heating_grows_with_the_rate_and_the_interval(report):
    by_rate = {r["c_rate"]: r["max_delta_t_degc"] for r in report["normal_heating"]}
    assert set(by_rate) == {1.0, 3.0}
    for s in ("2", "4", "8"):
        assert by_rate[3.0][s] > by_rate[1.0][s] > 0
    for rate in by_rate.values():
        assert rate["8"] > rate["2"]  # heating, not only noise: a longer interval sees more of it


def test_chosen_threshold_clears_normal_heating_and_detects_a_short_fast_at_1c(report):
    for row in report["thresholds"]:
        assert row["theta_degc"] > row["max_normal_delta_t_degc"]
        assert 2.0 <= row["check_interval_s"] <= 8.0
    one_c = next(r for r in report["thresholds"] if r["c_rate"] == 1.0)
    assert one_c["worst_detect_s"] is not None and one_c["worst_detect_s"] <= 8.0
    cands = report["threshold_candidates"]["1"]
    chosen = next(c for c in cands if c["interval_s"] == one_c["check_interval_s"])
    assert chosen["detect_s"]["0.5"] <= chosen["detect_s"]["2"]  # a stronger short is seen sooner


def test_calibrated_gains_beat_the_old_ones_and_relief_off(report):
    stage = report["grid"]["stage1_g1_gc_release"]
    old = next(r for r in stage if r["gains"]["relief_gain_kpa_per_degc_per_s"] == 400.0)
    best = stage[0]
    assert best["cost"] <= old["cost"]
    assert report["gains"] == best["gains"]
    held = report["held_out"]
    ours, off = held["calibrated"]["1C"], held["without_relief"]["1C"]
    assert ours["worst_peak_degc"] < off["worst_peak_degc"]
    assert ours["worst_peak_degc"] <= 55.5  # isolated at or kept below the maximum safety
    assert ours["others_isolated"] == 0 and ours["others_above_warning_s"] == 0  # the line carries on
    assert all(r["relief_s"] > 0 for r in ours["shorted"])  # S14 answered every short
    # without S14-S15 the shorted stations reach 55 °C and are isolated; with them they run on cooler
    assert ours["isolated"] < off["isolated"]
    assert ours["mean_above_warning_s"] < off["mean_above_warning_s"]

"""The six S13 scenarios (tools/hil/scenarios/placement_*.yaml) on the served bench over Modbus
and over EtherNet/IP: the supervisor's flow engine places the batch through the bench's camera
and robot while faults strike; each ends with every battery placed or rejected with its reason,
no order left hanging and no current before a clamp held its setpoint (the bench's truth). About
1-2 s each. Also: the clamp check fails a supervisor that gives current at half the clamp, and the
loader refuses a bad placement section naming the key."""

from __future__ import annotations

import pytest

from tools.hil.expect import CheckStatus
from tools.hil.scenario import SCENARIO_DIR, ScenarioError, ScenarioKind, load_all, load_scenario
from tools.hil.server_scenario import run_placement_scenario

pytestmark = pytest.mark.hil

NAMES = ["placement_reversed_battery", "placement_low_confidence", "placement_robot_timeout",
         "placement_dropped_part", "placement_fault_mid_move", "placement_noisy_frames"]


def test_the_six_placement_scenarios_are_there():
    assert sorted(s.name for s in load_all() if s.kind is ScenarioKind.PLACEMENT) == sorted(NAMES)


@pytest.mark.parametrize("protocol", ["modbus", "logix"])
@pytest.mark.parametrize("name", NAMES)
def test_a_placement_scenario(name, protocol):
    scenario = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    checks, summary = run_placement_scenario(scenario, protocol)
    failed = [(c.name, c.detail) for c in checks if c.status is not CheckStatus.PASS]
    assert not failed, failed
    names = {c.name for c in checks}
    assert {"no_order_hanging", "clamp_before_current", "every_battery_placed_or_rejected"} <= names
    assert summary["settled_s"] is not None
    for cell, r in summary["records"].items():  # rejected: reason and, from the camera, its figures
        assert r["outcome"] == "rejected" and r["reason"] and r["vision"]["battery_id"] == int(cell)


@pytest.mark.parametrize("tolerance_pct, ok", [(None, True), (50.0, False)])
def test_a_slow_clamp_holds_the_current_back_and_the_check_fails_a_lax_supervisor(tolerance_pct, ok):
    """A clamp that closes with a 10 s time constant: the line's 5 % waits for it; a supervisor
    content with half the setpoint gives current too early and the bench's truth says so."""
    scenario = load_scenario(SCENARIO_DIR / "placement_reversed_battery.yaml")
    checks, summary = run_placement_scenario(scenario, "modbus", clamp_tolerance_pct=tolerance_pct, clamp_tau_s=10.0)
    clamp = next(c for c in checks if c.name == "clamp_before_current")
    assert (clamp.status is CheckStatus.PASS) is ok, clamp.detail
    assert bool(summary["truth"]["clamp_violations"]) is not ok
    waits = [r for r in summary["records"].values()]  # the rejected one only; the placed wait on stations
    assert len(waits) == 1


@pytest.mark.unit
@pytest.mark.parametrize("text, match", [
    ("placement: {faults: [{type: fire, module: 0}]}", r"placement\.faults\[0\]\.type: unknown placement fault"),
    ("placement: {faults: [{type: reversed_battery, module: 9}]}", r"placement\.faults\[0\]\.module: 9 outside"),
    ("placement: {faults: [{type: robot_mishap, module: 0, mishap: explode}]}", r"mishap: 'explode' not one of"),
    ("placement: {camera: {noise_mm: -1.0}}", r"placement\.camera: camera noise_mm must be >= 0"),
    ("placement: {robot_cycle_s: -2.0}", r"robot_cycle_s: -2.0 outside"),
])
def test_a_bad_placement_section_is_refused_naming_the_key(tmp_path, text, match):
    path = tmp_path / "x.yaml"
    path.write_text(f"name: x\nkind: placement\nbatch: {{first: 0, n: 2}}\n{text}\nexpect: {{no_order_hanging: true}}\n")
    with pytest.raises(ScenarioError, match=match):
        load_scenario(path)

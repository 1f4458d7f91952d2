"""Scenario files: they parse, the plant-side ones run in SIL, and their checks can fail."""

import numpy as np
import pytest

from edge.strategy.baseline import BaselineController
from tools.hil.expect import CheckStatus, check_expectations
from tools.hil.plant import Command
from tools.hil.scenario import SCENARIO_DIR, ScenarioError, ScenarioKind, build_plant, load_all, load_scenario
from edge.batterymodel.sil import run_sil

EXPECTED = {"hot_cell", "sensor_stuck", "sensor_nan", "sensor_out_of_range", "mixed_batch",
            "link_drop", "server_restart", "slow_responses",
            "placement_reversed_battery", "placement_low_confidence", "placement_robot_timeout",
            "placement_dropped_part", "placement_fault_mid_move", "placement_noisy_frames"}


class Reactive(BaselineController):
    """Baseline plus full coolant while relieving: the simplest controller meeting hot_cell."""

    def step(self, observation, dt_s):
        cmd = super().step(observation, dt_s)
        cmd.coolant_lpm = np.where(self.relieving, 20.0, cmd.coolant_lpm)
        return cmd


class FailSafe(BaselineController):
    """Baseline plus a plausibility check: NaN or out-of-range marker -> that station safe."""

    def step(self, observation, dt_s):
        cmd = super().step(observation, dt_s)
        t = observation.marker_temp_degc
        bad = (~np.isfinite(t) | (t < -40) | (t > 150)).any(axis=1)
        cmd.discharge_on = cmd.discharge_on & ~bad
        cmd.relief[bad] = 1.0
        cmd.coolant_lpm = np.where(bad, 20.0, cmd.coolant_lpm)
        return cmd


def status(checks):
    return {c.name: c.status for c in checks}


@pytest.mark.unit
def test_all_scenarios_load():
    scenarios = {s.name: s for s in load_all()}
    assert set(scenarios) == EXPECTED
    for s in scenarios.values():
        assert s.expect and s.description
    assert scenarios["link_drop"].kind is ScenarioKind.PROTOCOL
    assert scenarios["slow_responses"].protocol[0].delay_ms == 150.0
    assert len(scenarios["mixed_batch"].batch.rows) == 40


@pytest.mark.unit
@pytest.mark.parametrize("text,match", [
    ("kind: plant\nbatch: {first: 0, n: 2}\nexpect: {all_finished: true}\n", r"missing key 'name'"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nexpect: {bogus: 1}\n", r"x\.yaml\.expect: unknown keys \['bogus'\]"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nexpect: {max_peak_temp_degc: hot}\n",
     r"expect\.max_peak_temp_degc: expected float"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nfaults: [{type: fire}]\nexpect: {all_finished: true}\n",
     r"faults\[0\]\.type: unknown fault 'fire'"),
    ("name: x\nkind: protocol\nbatch: {first: 0, n: 2}\nexpect: {resume_within_s: 1}\n",
     r"protocol: a protocol scenario needs at least one event"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nexpect: {resume_within_s: 1}\n", r"unknown keys \['resume_within_s'\]"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nexpect:\n  relief_within_s: {module: 0}\n",
     r"relief_within_s: missing key 'trigger_temp_degc'"),
    ("name: x\nkind: plant\nbatch: {first: 0, n: 2}\nplant: {n_zones: 0}\nexpect: {all_finished: true}\n",
     r"x\.yaml\.plant: plant\.n_zones"),
])
def test_bad_files_name_file_and_key(tmp_path, text, match):
    f = tmp_path / "x.yaml"
    f.write_text(text)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(f)


@pytest.mark.unit
def test_hot_cell_separates_the_baseline_from_a_reactive_controller():
    sc = load_scenario(SCENARIO_DIR / "hot_cell.yaml")
    plant = build_plant(sc)
    base = status(check_expectations(sc, run_sil(plant, BaselineController(4, plant.cfg.n_zones), sc.run)))
    assert base == {"relief_within_s": CheckStatus.PASS, "coolant_within_s": CheckStatus.FAIL,
                    "max_peak_temp_degc": CheckStatus.FAIL}
    plant = build_plant(sc)
    good = status(check_expectations(sc, run_sil(plant, Reactive(4, plant.cfg.n_zones), sc.run)))
    assert set(good.values()) == {CheckStatus.PASS}


@pytest.mark.unit
@pytest.mark.parametrize("name", ["sensor_nan", "sensor_out_of_range"])
def test_sensor_faults_need_a_fail_safe(name):
    sc = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    plant = build_plant(sc)
    n, z = plant.n_modules, plant.cfg.n_zones
    assert status(check_expectations(sc, run_sil(plant, BaselineController(n, z), sc.run))) == {
        "safe_state_within_s": CheckStatus.FAIL}
    plant = build_plant(sc)
    assert status(check_expectations(sc, run_sil(plant, FailSafe(n, z), sc.run))) == {
        "safe_state_within_s": CheckStatus.PASS}


@pytest.mark.unit
def test_stuck_sensor_is_frozen_in_the_observation():
    sc = load_scenario(SCENARIO_DIR / "sensor_stuck.yaml")
    plant = build_plant(sc)
    res = run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), sc.run)
    t = res.trace.t_s
    stuck = res.trace.marker_temp_degc[t > 121.0, 0, 1]
    assert np.ptp(stuck) == 0.0 and np.ptp(res.trace.marker_temp_degc[t > 121.0, 0, 0]) > 0.1
    assert status(check_expectations(sc, res)) == {"safe_state_within_s": CheckStatus.FAIL}


@pytest.mark.unit
def test_protocol_expectations_are_left_to_the_hil_server():
    sc = load_scenario(SCENARIO_DIR / "link_drop.yaml")
    plant = build_plant(sc)
    idle = Command.idle(plant.n_modules, plant.cfg.n_zones)

    class Idle:
        def step(self, observation, dt_s):
            return idle

    checks = status(check_expectations(sc, run_sil(plant, Idle(), sc.run)))
    assert checks["heartbeat_timeout_s"] is CheckStatus.UNCHECKED
    assert checks["max_peak_temp_degc"] is CheckStatus.PASS


class Taper(BaselineController):
    """Baseline that tapers its current near the cut-off, with more coolant: meets mixed_batch."""

    def __init__(self, n_modules, n_zones):
        super().__init__(n_modules, n_zones)
        self.level_a = np.full(n_modules, 5.0)

    def step(self, observation, dt_s):
        cmd = super().step(observation, dt_s)
        low = (observation.cell_voltage_v.min(axis=1) < 2.75) & (observation.current_a > 0)
        self.level_a = np.where(low, np.maximum(0.98 * self.level_a, 0.5), self.level_a)
        cmd.current_a = self.level_a.copy()
        cmd.coolant_lpm = np.where(self.relieving, 20.0, 8.0)
        return cmd


@pytest.mark.slow
def test_mixed_batch_fails_the_baseline_on_residual_and_a_taper_meets_it():
    sc = load_scenario(SCENARIO_DIR / "mixed_batch.yaml")
    plant = build_plant(sc)
    base = status(check_expectations(sc, run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), sc.run)))
    assert base["all_finished"] is CheckStatus.PASS and base["max_residual_pct"] is CheckStatus.FAIL
    plant = build_plant(sc)
    taper = status(check_expectations(sc, run_sil(plant, Taper(plant.n_modules, plant.cfg.n_zones), sc.run)))
    assert set(taper.values()) == {CheckStatus.PASS}


@pytest.mark.unit
def test_runner_prints_checks_and_refuses_protocol_scenarios(capsys):
    from tools.hil.run_scenario import main

    assert main(["sensor_nan"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)["sensor_nan"]
    assert out["traditional"]["checks"]["safe_state_within_s"]["status"] == "fail"
    assert out["ours"]["checks"]["safe_state_within_s"]["status"] == "pass"
    assert main(["link_drop"]) == 2
    assert "runs on the HIL server" in capsys.readouterr().err

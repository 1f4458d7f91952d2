"""The rtcore kernel plugged into the SIL as a controller (tools/hil/rtcore_controller.py)."""

from dataclasses import replace

import pytest

from rtcore.spec import Setpoints
from tools.hil.expect import CheckStatus, check_expectations
from tools.hil.rtcore_controller import RtcoreController
from tools.hil.scenario import SCENARIO_DIR, build_plant, load_scenario
from tools.hil.sil import run_sil

pytestmark = pytest.mark.unit


def run(name, setpoints=None, max_time_s=None):
    sc = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    if max_time_s is not None:
        sc = replace(sc, run=replace(sc.run, max_time_s=max_time_s))
    plant = build_plant(sc)
    ctrl = RtcoreController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, setpoints)
    return sc, ctrl, run_sil(plant, ctrl, sc.run)


@pytest.mark.parametrize("name", ["sensor_nan", "sensor_out_of_range"])
def test_the_core_latches_the_safe_state_on_a_bad_sensor(name):
    sc, ctrl, res = run(name)
    assert ctrl.kernel.safe_state
    assert {c.name: c.status for c in check_expectations(sc, res)} == {"safe_state_within_s": CheckStatus.PASS}


def test_the_core_answers_the_hot_cell_with_relief():
    sc, ctrl, res = run("hot_cell", Setpoints(delta_t_threshold_degc=0.5, check_interval_s=2.0), max_time_s=200.0)
    checks = {c.name: c.status for c in check_expectations(sc, res)}
    assert checks["relief_within_s"] is CheckStatus.PASS
    assert res.metrics.relief_events >= 1 and not ctrl.kernel.safe_state
    assert (res.trace.relief[:, 1] > 0).any() and not (res.trace.relief[:, [0, 2, 3]] > 0).any(), \
        "relief only where the hot cell is"

"""The traditional method: whole-fixture relief at the warning temperature (edge/strategy/baseline.py)."""

import numpy as np
import pytest

from edge.strategy.baseline import BaselineConfig, BaselineController
from tools.hil.plant import Observation, Plant
from edge.batterymodel.sil import SilConfig, run_sil

pytestmark = pytest.mark.unit


def obs(temps):
    temps = np.asarray(temps, float)
    m = temps.shape[0]
    z = np.zeros(m)
    return Observation(0.0, temps, np.zeros((m, 1)), z, np.zeros((m, 6)), z, np.zeros(m, bool), z)


def test_relieves_whole_fixture_at_warning_and_resumes_in_safe_range():
    c = BaselineController(2, 2, BaselineConfig(warning_temp_degc=45.0, safe_temp_degc=35.0))
    cmd = c.step(obs([[30, 44.9], [30, 31]]), 0.1)
    assert cmd.discharge_on.all() and not cmd.relief.any()
    cmd = c.step(obs([[30, 45.0], [30, 31]]), 0.1)
    assert list(cmd.discharge_on) == [False, True] and cmd.relief[0].tolist() == [1.0, 1.0]
    cmd = c.step(obs([[30, 40.0], [30, 31]]), 0.1)
    assert not cmd.discharge_on[0], "waits until back in the safe range"
    cmd = c.step(obs([[30, 35.0], [30, 31]]), 0.1)
    assert cmd.discharge_on.all() and not cmd.relief.any()
    np.testing.assert_allclose(cmd.current_a, 5.0)
    assert cmd.coolant_lpm.tolist() == [4.0, 4.0], "one fixed coolant flow, also during relief"


def test_trusts_its_sensors():
    c = BaselineController(1, 1)
    assert c.step(obs([[np.nan, np.nan, 30, 30]]), 0.1).discharge_on[0], "NaN is ignored"
    assert not c.step(obs([[250.0, 30, 30, 30]]), 0.1).discharge_on[0], "an absurd reading is believed"


def test_config_is_checked():
    with pytest.raises(ValueError, match="safe_temp_degc must be below"):
        BaselineConfig(warning_temp_degc=40.0, safe_temp_degc=40.0)


def test_on_a_hot_batch_relief_keeps_the_peak_near_warning(cells):
    plant = Plant(cells.select([1, 1]))
    hot_cfg = BaselineConfig(current_a=12.0, coolant_lpm=0.0, warning_temp_degc=40.0, safe_temp_degc=36.0)
    res = run_sil(plant, BaselineController(2, plant.cfg.n_zones, hot_cfg), SilConfig(dt_s=0.5, max_time_s=1200.0, record_every_s=0.5, warning_temp_degc=40.0))
    m = res.metrics
    assert m.relief_events >= 2
    assert m.peak_temp_degc < 43.0, "relief caps the peak a few K above warning"
    off = ~res.trace.discharge_on
    assert off.any() and np.all(res.trace.current_a[1:][off[:-1]] == 0.0)

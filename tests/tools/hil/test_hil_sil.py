"""The software-in-the-loop runner and its metrics (edge/batterymodel/sil.py) on the bench plant."""

import numpy as np
import pytest

from tools.hil.plant import Command, Plant
from edge.batterymodel.sil import HoldController, SilConfig, run_sil

pytestmark = pytest.mark.unit


def hold(plant, current, coolant=20.0):
    cmd = Command.idle(plant.n_modules, plant.cfg.n_zones)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current
    cmd.coolant_lpm[:] = coolant
    return HoldController(cmd)


def test_batch_runs_to_the_end_and_charge_balances(cells):
    plant = Plant(cells.select([3, 48]))  # low-SOC modules: minutes at 2C
    res = run_sil(plant, hold(plant, 10.0), SilConfig(dt_s=0.1, max_time_s=3600.0, record_every_s=1.0))
    m = res.metrics
    assert m.modules_finished == 2 and m.batch_time_s < 3600.0
    tr = res.trace
    assert tr.t_s[-1] == pytest.approx(m.batch_time_s)
    assert tr.marker_temp_degc.shape[1:] == (2, 4) and tr.relief.shape[1:] == (2, 2)
    # charge counted by the plant equals the current integrated over the trace (1 s records)
    integrated_ah = float(np.sum(tr.current_a[:-1] * np.diff(tr.t_s)[:, None]) / 3600.0)
    assert m.discharged_ah == pytest.approx(integrated_ah, rel=0.03)
    assert 0 < m.residual_pct < 100 and m.peak_temp_degc >= tr.cell_temp_max_degc.max() - 1e-9


def test_unfinished_batch_reports_max_time_and_warning_time(cells):
    plant = Plant(cells.select([1]))
    res = run_sil(plant, hold(plant, 14.0, coolant=0.0), SilConfig(max_time_s=600.0, warning_temp_degc=35.0))
    m = res.metrics
    assert m.modules_finished == 0 and m.batch_time_s == pytest.approx(600.0)
    hot_s = float(np.sum(res.trace.cell_temp_max_degc[:, 0] > 35.0))  # 1 s records
    assert m.time_above_warning_s == pytest.approx(hot_s, abs=2.0) and hot_s > 10
    assert m.relief_events == 0


def test_config_is_checked():
    with pytest.raises(ValueError, match="dt_s"):
        SilConfig(dt_s=0.0)
    with pytest.raises(ValueError, match="record_every_s"):
        SilConfig(dt_s=1.0, record_every_s=0.5)

"""The 2-RC cell model and its ageing law (edge/batterymodel/cell_model.py)."""

import json

import numpy as np
import pytest

from edge.batterymodel.cell_model import CellBank, EcmParams, default_ecm_path, resistance_scale
from edge.batterymodel.electrode import windows_for_soh

pytestmark = pytest.mark.unit


def bank(ecm, soc, soh):
    soc, soh = np.atleast_1d(soc).astype(float), np.atleast_1d(soh).astype(float)
    return CellBank(ecm, windows_for_soh(soh), soc, soh, np.full(soc.size, 2e-3))


def test_resistance_grows_as_soh_falls():
    s = resistance_scale(np.array([1.0, 0.9, 0.75, 0.6]))
    assert s[0] == 1.0 and np.all(np.diff(s) > 0)


def test_rest_voltage_is_the_ocv_and_load_drops_it(ecm):
    b = bank(ecm, [0.5, 0.5], [0.9, 0.65])
    t = np.full(2, 298.15)
    rest = b.evaluate(np.zeros(2), t)
    load = b.evaluate(np.full(2, 5.0), t)
    np.testing.assert_allclose(rest["voltage_v"], rest["ocv_t_v"])
    drop = rest["voltage_v"] - load["voltage_v"]
    assert np.all(drop > 0) and drop[1] > drop[0], "the aged cell must sag more"
    assert np.all(load["heat_w"] > 0)


def test_charge_counting_and_cold_resistance(ecm):
    b = bank(ecm, 0.8, 0.8)
    cap = b.cap_ah[0]
    ev = b.evaluate(np.array([5.0]), np.array([298.15]))
    for _ in range(360):
        b.advance(np.array([5.0]), ev["r1_ohm"], ev["r2_ohm"], 1.0)
    assert b.soc[0] == pytest.approx(0.8 - 0.5 / cap, abs=1e-9)
    cold = b.evaluate(np.array([5.0]), np.array([273.15]))["r0_ohm"]
    warm = b.evaluate(np.array([5.0]), np.array([313.15]))["r0_ohm"]
    assert cold[0] > warm[0]


def test_defaults_file_errors_name_the_field(tmp_path):
    raw = json.loads(default_ecm_path().read_text())
    del raw["tau1_s"]
    f = tmp_path / "ecm.json"
    f.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"ecm\.json: missing fields \['tau1_s'\]"):
        EcmParams.load(f)

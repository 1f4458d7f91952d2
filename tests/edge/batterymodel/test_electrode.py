"""Electrode OCV and capacity of aged cells against the data's truth, with the plant's entropic term
(edge/grading/electrochem.py), and the plant's SOH-only windows (edge/batterymodel/electrode.py)."""

import json

import numpy as np
import pytest

from edge.batterymodel.cell_model import default_ecm_path
from edge.grading.electrochem import FRESH_CAP_AH, solve_windows
from edge.batterymodel.electrode import windows_for_soh

pytestmark = pytest.mark.unit


def test_fresh_cell_matches_the_ecm_defaults():
    raw = json.loads(default_ecm_path().read_text())
    assert FRESH_CAP_AH == pytest.approx(raw["Q_Ah"], abs=1e-3)
    w = solve_windows(np.zeros(1), np.zeros(1), np.zeros(1))
    ocv = w.ocv_v(np.asarray(raw["ocv_soc"]))
    assert np.max(np.abs(ocv - np.asarray(raw["ocv_V"]))) < 1e-3


def test_aged_capacity_and_rest_voltage_match_truth(cells, ecm):
    w = solve_windows(cells["truth_lli"], cells["truth_lam_ne"], cells["truth_lam_pe"])
    assert np.max(np.abs(w.cap_ah - cells["truth_cap_Ah"])) < 1e-3
    soc = cells["truth_soc"]
    dudt = np.interp(soc, np.linspace(-0.4, 1.0, ecm.dudt_v_per_k.size), ecm.dudt_v_per_k)
    ocv = w.ocv_v(soc) + (cells["truth_t_amb_C"] + 273.15 - 298.15) * dudt
    err_mv = 1e3 * np.abs(ocv - cells["truth_ocv_V"])
    assert err_mv.max() < 3.0, f"worst rest-voltage error {err_mv.max():.2f} mV"


def test_soh_only_cells_get_the_asked_capacity():
    soh = np.array([0.6, 0.75, 0.95])
    w = windows_for_soh(soh)
    np.testing.assert_allclose(w.cap_ah, soh * FRESH_CAP_AH, rtol=1e-4)


def test_bad_degradation_is_refused():
    with pytest.raises(ValueError, match="lli"):
        solve_windows(np.array([0.95]), np.zeros(1), np.zeros(1))

"""edge.grading.electrochem against the ground truth of the simulated cells (../shared/data).

The plant's view (with its entropic term, and windows from SOH alone) is tested in
tests/tools/hil/test_hil_electrode.py.
"""

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.electrochem import FRESH_CAP_AH, ocp_negative_v, ocp_positive_v, solve_windows
from edge.grading.features import read_cells_csv

pytestmark = pytest.mark.unit

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


@pytest.fixture(scope="module")
def truth():
    return read_cells_csv(TRAIN_CSV).columns


@pytest.fixture(scope="module")
def windows(truth):
    return solve_windows(truth["truth_lli"], truth["truth_lam_ne"], truth["truth_lam_pe"])


def test_capacity_of_each_aged_cell_matches_the_simulation(truth, windows):
    assert np.max(np.abs(windows.cap_ah - truth["truth_cap_Ah"])) < 1e-4


def test_ocv_at_the_true_soc_is_the_simulated_rest_voltage(truth, windows):
    gaps = windows.ocv_v(truth["truth_soc"]) - truth["truth_ocv_V"]
    # what is left is the entropic term (ambient 15-35 degC) left out here: 4.2 mV at most over
    # the 1000 cells, against the +-10 mV offset the SOC posterior allows for
    assert np.max(np.abs(gaps)) < 5e-3
    assert np.sqrt(np.mean(np.square(gaps))) < 1.5e-3


def test_window_ends_sit_at_the_voltage_limits_and_ocv_rises_with_soc():
    window = solve_windows(np.array([0.1]), np.array([0.05]), np.array([0.05]))
    assert window.ocv_v(np.array([0.0]))[0] == pytest.approx(2.5, abs=1e-9)
    assert window.ocv_v(np.array([1.0]))[0] == pytest.approx(4.2, abs=1e-9)
    assert np.all(np.diff(window.ocv_v(np.linspace(0, 1, 501))) > 0)
    assert window.cap_ah[0] < FRESH_CAP_AH
    x0, y0 = window.stoichiometry(np.array([0.0]))
    x100, y100 = window.stoichiometry(np.array([1.0]))
    assert 0 < x0[0] < x100[0] < 1 and 0 < y100[0] < y0[0] < 1


def test_batch_solve_broadcasts_like_numpy():
    lli = np.array([[0.1], [0.2]])
    window = solve_windows(lli, np.zeros((2, 1)), np.zeros((2, 1)))
    curves = window.ocv_v(np.linspace(0, 1, 5)[None, :])
    assert curves.shape == (2, 5)
    assert window.cap_ah[1, 0] < window.cap_ah[0, 0]  # more lithium lost, less capacity


def test_open_circuit_potentials_have_the_known_shape():
    assert ocp_negative_v(0.02) > 0.5 > ocp_negative_v(0.5) > 0.05  # lithiated graphite sits near 0.1 V
    assert ocp_positive_v(0.2) > 4.0 > 3.6 > ocp_positive_v(0.95)


def test_impossible_ageing_is_refused_by_name():
    with pytest.raises(ValueError, match="lli"):
        solve_windows(np.array([0.95]), np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="lam_ne"):
        solve_windows(np.zeros(1), np.array([-0.1]), np.zeros(1))

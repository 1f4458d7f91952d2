"""edge/batterymodel/arrays.py: nan_to_num agrees with NumPy's, bit for bit."""

import numpy as np
import pytest

from edge.batterymodel.arrays import nan_to_num

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("x", [np.array([1.0, -2.5, 0.0, -0.0]), np.array([np.nan, 1.0, np.inf, -np.inf]),
                               np.array([[np.nan, 3.0], [4.0, 5.0]]), np.array([1, 2, 3]), np.array([True, False]),
                               [0.5, np.nan], 7.0])
@pytest.mark.parametrize("nan", [0.0, 1.0, np.inf])
def test_nan_to_num_is_numpys(x, nan):
    want = np.nan_to_num(np.asarray(x, float), nan=nan)
    got = nan_to_num(x, nan=nan)
    assert got.dtype == np.float64 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))

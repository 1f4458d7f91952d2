"""Small array helpers of the model's hot loop (a SIL step calls them a dozen times).

Owns `nan_to_num`: `np.nan_to_num(x, nan=...)` (NaN to `nan`, ±inf to the largest finite float)
as float64, without its Python overhead when every element is finite, the common case. Tests:
tests/edge/batterymodel/test_arrays.py.
"""

from __future__ import annotations

import numpy as np


def nan_to_num(x, nan: float = 0.0) -> np.ndarray:
    """Float64 `np.nan_to_num(x, nan=nan)`; may return `x` itself (a float64 array with every element
    finite): never write into the result."""
    a = np.asarray(x, dtype=float)
    if np.isfinite(a).all():
        return a
    return np.nan_to_num(a, nan=nan)

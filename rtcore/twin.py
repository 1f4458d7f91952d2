"""Reference twin of the compiled tick in plain Python/NumPy, with the same names.

Placeholder until the S14-S15 kernel lands (issue 3).
"""

import math


def clamp(value: float, low: float, high: float) -> float:
    """Clamp `value` into [low, high]; NaN maps to `low`."""
    if math.isnan(value):
        return low
    return min(max(value, low), high)

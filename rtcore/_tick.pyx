# cython: language_level=3
"""Compiled real-time tick. Placeholder: only the clamp every output passes through."""

cdef double clamp_c(double value, double low, double high) noexcept nogil:
    if value != value:  # NaN goes to the low (safe) end
        return low
    if value < low:
        return low
    if value > high:
        return high
    return value


def clamp(double value, double low, double high):
    """Clamp `value` into [low, high]; NaN maps to `low`."""
    return clamp_c(value, low, high)

"""Test helper: whether a value read from the PLC is a tag's safe value (floats within 0.1 %,
booleans exactly, arrays element by element). Used by test_handle.py and test_lifecycle.py."""

from __future__ import annotations


def is_safe_value(value, safe) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    wanted = safe if isinstance(safe, tuple) else (safe,) * len(values)
    return len(values) == len(wanted) and all(
        v is w if isinstance(w, bool) else v is not None and abs(v - w) <= 1e-3 * max(1.0, abs(w))
        for v, w in zip(values, wanted))

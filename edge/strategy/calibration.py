"""Calibrated constants of the real-time core's S14-S15 (measured by `tools/calibrate_core.py`).

Owns `threshold_for_c_rate` (the ΔT threshold θ and check interval K·Δt per C-rate) and the
calibrated gains that `edge.strategy.model.Strategy` takes as its defaults. Tests:
tests/edge/strategy/test_calibration.py; the measurement: tests/tools/test_calibrate_core.py,
docs/calibration.md.

How the table was measured (`python -m tools.calibrate_core --json`, SIL, plant of tools/hil):
held-out modules (rows 700-715 of ../shared/data/cells_train.csv, used by no scenario, bench run
or validation, and rows 0-7 of tests/data/cells_unseen.csv) were discharged without faults at a
constant current of c·5 A (no derating, clamp 150 kPa, the line's base coolant of 4 L/min: the
least cooling, so the fastest normal heating) at the core's 100 ms tick, with the plant's marker
noise. For every candidate check interval (2-8 s) the largest marker rise ΔT over that interval
was recorded (any marker, any time of the discharge, to the cut-off or 55 °C). θ is that largest
normal ΔT times `THETA_MARGIN_FACTOR` plus `THETA_MARGIN_DEGC`, rounded up to 0.05 K, so normal
discharge never triggers relief. Among the intervals, K is the one that detects the most of three internal
shorts of 0.5, 1 and 2 Ω (onset 300 s, copies of three of the modules) within 120 s, then the
fastest worst case (then the mean; ties: the shorter interval). The gains below were chosen by
the grid search of the same tool on internal shorts under the real-time loop in SIL.
"""

from __future__ import annotations

import bisect
import math

#: Margin of θ over the largest normal ΔT: θ = factor·ΔT_max + degc (then rounded up to 0.05 K).
THETA_MARGIN_FACTOR = 1.25
THETA_MARGIN_DEGC = 0.1

#: (C-rate, θ °C, check interval s, largest normal ΔT °C over that interval, worst detection s of
#: a 0.5-2 Ω short; inf: not all three are seen within 120 s, the weaker shorts heat no faster than
#: a normal discharge at that rate, and the absolute limit stands behind). Measured; see the module
#: docstring and docs/calibration.md.
THRESHOLD_TABLE: tuple[tuple[float, float, float, float, float], ...] = (
    (0.5, 0.6, 6.0, 0.387, 2.9),
    (1.0, 0.85, 5.0, 0.5753, 5.2),
    (1.5, 0.9, 3.0, 0.6055, math.inf),
    (2.0, 1.7, 5.0, 1.2662, math.inf),
    (2.5, 1.15, 2.0, 0.8318, math.inf),
    (3.0, 1.55, 2.0, 1.1458, math.inf),
)

#: Gains chosen by the grid search on the calibration faults (docs/calibration.md).
RELIEF_GAIN_KPA_PER_DEGC_PER_S = 1500.0
COOLANT_GAIN_LPM_PER_CM2_DEGC_PER_S = 0.5
CORRECTION_GAIN = 0.5
COUPLING_DECAY_PER_TICK = 0.3
RELIEF_HOLD_S = 3.0
RELIEF_RELEASE_DEGC = 33.0


def threshold_for_c_rate(c_rate: float) -> tuple[float, float]:
    """(θ °C, check interval s) for a discharge at `c_rate` (C of the 5 Ah nominal cell).

    The row of the smallest tabulated C-rate at or above `c_rate` (a rate between two rows takes
    the higher one's, whose normal heating is faster, so θ never falls below the normal ΔT);
    above the table, its last row. ValueError for a C-rate that is not a positive number."""
    if not (isinstance(c_rate, (int, float)) and c_rate > 0 and c_rate == c_rate and c_rate != float("inf")):
        raise ValueError(f"c_rate must be a finite number > 0, got {c_rate!r}")
    rates = [row[0] for row in THRESHOLD_TABLE]
    i = min(bisect.bisect_left(rates, float(c_rate) - 1e-9), len(rates) - 1)
    return THRESHOLD_TABLE[i][1], THRESHOLD_TABLE[i][2]

"""Electrode windows for cells known only by their SOH (the model's default without LLI/LAM).

The electrode model itself (Chen2020 OCPs, the electrode state-of-health solve) is
edge/grading/electrochem.py, shared with the SOC physics. Tests: tests/edge/batterymodel/test_electrode.py.
"""

from __future__ import annotations

import numpy as np

from edge.grading.electrochem import FRESH_CAP_AH, ElectrodeWindows, bisect, solve_windows


def windows_for_soh(soh: np.ndarray, lam_share: float = 0.3) -> ElectrodeWindows:
    """Windows for cells known only by SOH: LAM_ne = LAM_pe = lam_share·(1-SOH), LLI solved.

    lam_share 0.3 is the mean share of the data generator (uniform 0-0.6 of the fade).
    """
    soh = np.atleast_1d(np.asarray(soh, dtype=float))
    if np.any(~np.isfinite(soh)) or np.any(soh <= 0.3) or np.any(soh > 1.0):
        raise ValueError(f"soh must be in (0.3, 1], got {soh}")
    lam = lam_share * (1.0 - soh)

    def excess(lli):
        return solve_windows(lli, lam, lam).cap_ah - soh * FRESH_CAP_AH

    lli = bisect(excess, np.zeros(soh.shape), np.full(soh.shape, 0.85), iterations=40)
    return solve_windows(lli, lam, lam)

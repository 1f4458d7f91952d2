"""Open-circuit voltage of an aged LG M50 cell from its degradation modes (LLI, LAM_ne, LAM_pe).

Owns the cell's electrode model, shared by the SOC physics (edge.grading.soc_physics) and the
HIL plant (tools/hil/electrode.py, cell_model.py): the electrode open-circuit potentials of the
LG M50 21700 (NMC811 / graphite-SiOx) fitted by Chen et al., "Development of Experimental
Techniques for Parameterization of Multi-scale Lithium-ion Battery Models", J. Electrochem.
Soc. 167 (2020) 080534, the electrode capacities of the same paper's geometry (the "Chen2020"
set the battery data were simulated with, ../shared/data), and the electrode state-of-health
solve: the stoichiometry windows such that the cell spans 2.5-4.2 V, for a whole batch of cells
at once (vectorised bisection). Lithium is conserved: Q_Li = Q_neg x + Q_pos y at every SOC.

SOC is a fraction of the aged cell's own capacity, the data's convention (`truth_soc`).
Why not one OCV table for all cells: loss of lithium and of active material shift the electrode
windows; the fresh table misses an aged cell's rest voltage by up to 150 mV. With the windows,
the OCV at `truth_soc` matches `truth_ocv_V` within 4.2 mV over the 1000 training cells without
the entropic term (within 3 mV with the plant's entropic term), and the capacity matches
`truth_cap_Ah` to 1e-5 Ah.

Constants: Chen2020 parameter set (electrode area 0.1027 m², thicknesses 85.2/75.6 µm, active
fractions 0.75/0.665, maximum concentrations 33133/63104 mol/m³, initial 29866/17038 mol/m³).
Tests: tests/edge/grading/test_grading_electrochem.py, tests/edge/batterymodel/test_electrode.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FARADAY_C_PER_MOL = 96485.33212
AREA_M2 = 0.1027
V_MAX_V = 4.2
V_MIN_V = 2.5


def _capacity_ah(eps: float, cmax_mol_m3: float, thickness_m: float) -> float:
    return FARADAY_C_PER_MOL * eps * cmax_mol_m3 * thickness_m * AREA_M2 / 3600.0


Q_NEG_FRESH_AH = _capacity_ah(0.75, 33133.0, 85.2e-6)
Q_POS_FRESH_AH = _capacity_ah(0.665, 63104.0, 75.6e-6)
Q_LI_FRESH_AH = (
    FARADAY_C_PER_MOL * (29866.0 * 0.75 * 85.2e-6 + 17038.0 * 0.665 * 75.6e-6) * AREA_M2 / 3600.0
)


def ocp_negative_v(x: np.ndarray) -> np.ndarray:
    """Graphite open-circuit potential (V vs Li) at stoichiometry x (Chen 2020 fit)."""
    return (
        1.9793 * np.exp(-39.3631 * x)
        + 0.2482
        - 0.0909 * np.tanh(29.8538 * (x - 0.1234))
        - 0.04478 * np.tanh(14.9159 * (x - 0.2769))
        - 0.0205 * np.tanh(30.4444 * (x - 0.6103))
    )


def ocp_positive_v(y: np.ndarray) -> np.ndarray:
    """NMC811 open-circuit potential (V vs Li) at stoichiometry y (Chen 2020 fit)."""
    return (
        -0.809 * y
        + 4.4875
        - 0.0428 * np.tanh(18.5138 * (y - 0.5542))
        - 17.7326 * np.tanh(15.789 * (y - 0.3117))
        + 17.5842 * np.tanh(15.9308 * (y - 0.312))
    )


def bisect(func, lo: np.ndarray, hi: np.ndarray, iterations: int = 55) -> np.ndarray:
    """Root of a monotone `func` in [lo, hi], element-wise (signs at lo and hi must differ)."""
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    f_lo = func(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f_mid = func(mid)
        same = np.sign(f_mid) == np.sign(f_lo)
        lo = np.where(same, mid, lo)
        f_lo = np.where(same, f_mid, f_lo)
        hi = np.where(same, hi, mid)
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class ElectrodeWindows:
    """Per-cell electrode state: capacity (Ah), stoichiometry at 100 % SOC, electrode capacities."""

    cap_ah: np.ndarray
    x100: np.ndarray
    y100: np.ndarray
    q_neg_ah: np.ndarray
    q_pos_ah: np.ndarray

    def stoichiometry(self, soc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Negative (x) and positive (y) stoichiometry of each cell at its own SOC."""
        removed = (1.0 - np.asarray(soc, dtype=float)) * self.cap_ah
        x = np.clip(self.x100 - removed / self.q_neg_ah, 1e-6, 1.0)
        y = np.clip(self.y100 + removed / self.q_pos_ah, 0.0, 1.0)
        return x, y

    def ocv_v(self, soc: np.ndarray) -> np.ndarray:
        """OCV at 25 °C (V) of each cell at its own SOC (same shape as the windows)."""
        x, y = self.stoichiometry(soc)
        return ocp_positive_v(y) - ocp_negative_v(x)


def solve_windows(lli: np.ndarray, lam_ne: np.ndarray, lam_pe: np.ndarray) -> ElectrodeWindows:
    """Electrode SOH solve for each cell: the windows that span 2.5-4.2 V, and the capacity."""
    lli, lam_ne, lam_pe = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (lli, lam_ne, lam_pe)))
    for name, arr in (("lli", lli), ("lam_ne", lam_ne), ("lam_pe", lam_pe)):
        if np.any(~np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr >= 0.9):
            raise ValueError(f"{name} must be finite and in [0, 0.9), got {arr}")
    q_neg = Q_NEG_FRESH_AH * (1.0 - lam_ne)
    q_pos = Q_POS_FRESH_AH * (1.0 - lam_pe)
    q_li = Q_LI_FRESH_AH * (1.0 - lli)
    x_hi = np.minimum(1.0, q_li / q_neg) - 1e-9

    def top(x):
        return ocp_positive_v((q_li - q_neg * x) / q_pos) - ocp_negative_v(x) - V_MAX_V

    x100 = bisect(top, np.full(lli.shape, 1e-6), x_hi)
    y100 = (q_li - q_neg * x100) / q_pos
    q_hi = np.minimum(x100 * q_neg, (1.0 - y100) * q_pos) * (1.0 - 1e-9)

    def bottom(q):
        return ocp_positive_v(y100 + q / q_pos) - ocp_negative_v(x100 - q / q_neg) - V_MIN_V

    cap = bisect(bottom, np.zeros(lli.shape), q_hi)
    return ElectrodeWindows(cap, x100, y100, q_neg, q_pos)


FRESH_CAP_AH = float(solve_windows(np.zeros(1), np.zeros(1), np.zeros(1)).cap_ah[0])

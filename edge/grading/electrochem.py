"""Open-circuit voltage of an aged LG M50 cell from its degradation modes (DESIGN.md S11).

Owns the electrode open-circuit potentials of the LG M50 21700 (NMC811 / graphite-SiOx) fitted
by Chen et al., "Development of Experimental Techniques for Parameterization of Multi-scale
Lithium-ion Battery Models", J. Electrochem. Soc. 167 (2020) 080534, the electrode geometry of
the same paper (the "Chen2020" set the battery data were simulated with, ../shared/data), and
the electrode-SOH balance: given the loss of lithium inventory (LLI) and the loss of active
material in each electrode (LAM), the stoichiometry window between 2.5 V and 4.2 V, hence the
capacity and the OCV-SOC curve of that cell.

SOC is a fraction of the aged cell's own capacity (the data's convention): at SOC s the
negative electrode sits at x0 + s (x100 - x0) and the positive at y0 - s (y0 - y100).
The entropic (temperature) term is left out: on the training cells it moves SOC by 0.05 pp RMS.
Tests: tests/edge/grading/test_grading_electrochem.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

FARADAY_C_PER_MOL = 96485.33212
ELECTRODE_AREA_M2 = 0.065 * 1.58  # height x width
NEG_THICKNESS_M, POS_THICKNESS_M = 85.2e-6, 75.6e-6
NEG_CMAX_MOL_M3, POS_CMAX_MOL_M3 = 33133.0, 63104.0
NEG_ACTIVE_FRACTION, POS_ACTIVE_FRACTION = 0.75, 0.665
NEG_C_INIT_MOL_M3, POS_C_INIT_MOL_M3 = 29866.0, 17038.0
V_MIN_V, V_MAX_V = 2.5, 4.2


def _ah(concentration_mol_m3: float, fraction: float, thickness_m: float) -> float:
    return FARADAY_C_PER_MOL * concentration_mol_m3 * fraction * thickness_m * ELECTRODE_AREA_M2 / 3600.0


NEG_CAPACITY_AH = _ah(NEG_CMAX_MOL_M3, NEG_ACTIVE_FRACTION, NEG_THICKNESS_M)
POS_CAPACITY_AH = _ah(POS_CMAX_MOL_M3, POS_ACTIVE_FRACTION, POS_THICKNESS_M)
LITHIUM_INVENTORY_AH = (_ah(NEG_C_INIT_MOL_M3, NEG_ACTIVE_FRACTION, NEG_THICKNESS_M)
                        + _ah(POS_C_INIT_MOL_M3, POS_ACTIVE_FRACTION, POS_THICKNESS_M))


def graphite_ocp_v(x):
    """Negative electrode (graphite-SiOx) potential vs Li/Li+ at stoichiometry x (Chen 2020)."""
    x = np.asarray(x, dtype=float)
    return (1.9793 * np.exp(-39.3631 * x) + 0.2482 - 0.0909 * np.tanh(29.8538 * (x - 0.1234))
            - 0.04478 * np.tanh(14.9159 * (x - 0.2769)) - 0.0205 * np.tanh(30.4444 * (x - 0.6103)))


def nmc811_ocp_v(y):
    """Positive electrode (NMC811) potential vs Li/Li+ at stoichiometry y (Chen 2020)."""
    y = np.asarray(y, dtype=float)
    return (-0.8090 * y + 4.4875 - 0.0428 * np.tanh(18.5138 * (y - 0.5542))
            - 17.7326 * np.tanh(15.7890 * (y - 0.3117)) + 17.5842 * np.tanh(15.9308 * (y - 0.3120)))


class AgeingError(ValueError):
    """Degradation modes for which no cell between 2.5 V and 4.2 V exists."""


@dataclass(frozen=True)
class ElectrodeWindow:
    """Stoichiometries at 0 % and 100 % SOC, and the electrode capacities (Ah)."""

    x0: float
    x100: float
    y0: float
    y100: float
    neg_capacity_ah: float

    @property
    def capacity_ah(self) -> float:
        return self.neg_capacity_ah * (self.x100 - self.x0)

    def ocv_v(self, soc):
        """Open-circuit voltage at SOC (fraction of this cell's capacity), 25 degC."""
        soc = np.asarray(soc, dtype=float)
        return nmc811_ocp_v(self.y0 - soc * (self.y0 - self.y100)) - graphite_ocp_v(self.x0 + soc * (self.x100 - self.x0))


def electrode_window(lli: float, lam_ne: float, lam_pe: float) -> ElectrodeWindow:
    """The 2.5-4.2 V window of a cell that lost `lli` of its lithium and `lam_*` of each electrode.

    Lithium is conserved: Q_Li = Q_n x + Q_p y at both ends; the ends are where the OCV is
    2.5 V and 4.2 V. Raises AgeingError when an end cannot be reached.
    """
    q_n = NEG_CAPACITY_AH * (1.0 - lam_ne)
    q_p = POS_CAPACITY_AH * (1.0 - lam_pe)
    q_li = LITHIUM_INVENTORY_AH * (1.0 - lli)
    if min(q_n, q_p, q_li) <= 0:
        raise AgeingError(f"lli={lli}, lam_ne={lam_ne}, lam_pe={lam_pe}: no capacity left")

    def end(v: float) -> tuple[float, float]:
        eps = 1e-9
        x_lo, x_hi = max(eps, (q_li - q_p * (1 - eps)) / q_n), min(1 - eps, (q_li - q_p * eps) / q_n)
        if x_lo >= x_hi:
            raise AgeingError(f"lli={lli}, lam_ne={lam_ne}, lam_pe={lam_pe}: electrodes cannot hold the lithium")

        def gap(x: float) -> float:
            return float(nmc811_ocp_v((q_li - q_n * x) / q_p) - graphite_ocp_v(x)) - v

        if gap(x_lo) * gap(x_hi) > 0:
            raise AgeingError(f"lli={lli}, lam_ne={lam_ne}, lam_pe={lam_pe}: {v} V is out of reach")
        x = optimize.brentq(gap, x_lo, x_hi, xtol=1e-13)
        return x, (q_li - q_n * x) / q_p

    x100, y100 = end(V_MAX_V)
    x0, y0 = end(V_MIN_V)
    return ElectrodeWindow(x0=x0, x100=x100, y0=y0, y100=y100, neg_capacity_ah=q_n)

"""Thermal chain of a module and its marker-point sensors, for all modules at once.

Owns the lumped thermal model of the plant (tests: tests/edge/batterymodel/test_plant.py, tests/tools/hil/test_hil_plant.py): one node
per cell, cells in a row along the module, conduction between neighbours, convection from each
cell to the coolant/ambient with a per-cell film coefficient:

    C dT_i/dt = q_i + G (T_{i-1} - T_i) + G (T_{i+1} - T_i) - h_i A (T_i - T_coolant)

and marker sensors at fractional positions along the module (0 = first cell, 1 = last), each
reading the linear interpolation of the node temperatures; a hot spot at one end is therefore
seen by the marker at that end first and by the far marker only after conduction carries it.
Explicit Euler; stable while dt < C / (2G + h A) (about 20 s with the defaults).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThermalConfig:
    conduction_w_per_k: float = 0.3
    h_natural_w_m2k: float = 10.0
    marker_positions: tuple[float, ...] = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)

    def __post_init__(self) -> None:
        if self.conduction_w_per_k < 0:
            raise ValueError(f"thermal.conduction_w_per_k must be >= 0, got {self.conduction_w_per_k}")
        if self.h_natural_w_m2k < 0:
            raise ValueError(f"thermal.h_natural_w_m2k must be >= 0, got {self.h_natural_w_m2k}")
        if not self.marker_positions or any(not 0.0 <= x <= 1.0 for x in self.marker_positions):
            raise ValueError(f"thermal.marker_positions must be fractions in [0, 1], got {self.marker_positions}")


def step_chain(temp_k: np.ndarray, heat_w: np.ndarray, h_w_m2k: np.ndarray, coolant_k: np.ndarray,
               dt_s: float, heat_capacity_j_per_k: float, area_m2: float, conduction_w_per_k: float
               ) -> np.ndarray:
    """One explicit step of all chains; temp/heat/h are (modules, cells), coolant is (modules,)."""
    flow = np.zeros_like(temp_k)
    if temp_k.shape[1] > 1 and conduction_w_per_k > 0:
        link = conduction_w_per_k * (temp_k[:, 1:] - temp_k[:, :-1])
        flow[:, :-1] += link
        flow[:, 1:] -= link
    conv = h_w_m2k * area_m2 * (temp_k - coolant_k[:, None])
    return temp_k + dt_s * (heat_w + flow - conv) / heat_capacity_j_per_k


class MarkerMap:
    """Linear interpolation weights from cell nodes to marker sensors."""

    def __init__(self, positions: tuple[float, ...], n_cells: int) -> None:
        x = np.asarray(positions, dtype=float) * (n_cells - 1)
        lo = np.clip(np.floor(x).astype(int), 0, max(n_cells - 2, 0))
        frac = x - lo if n_cells > 1 else np.zeros_like(x)
        self.weights = np.zeros((len(positions), n_cells))
        for k, (i, f) in enumerate(zip(lo, frac)):
            self.weights[k, i] += 1.0 - f
            if n_cells > 1:
                self.weights[k, i + 1] += f
        self.n_markers = len(positions)
        self._lo = lo
        self._hi = np.minimum(lo + 1, n_cells - 1)
        self._w_lo = 1.0 - frac
        self._w_hi = frac if n_cells > 1 else np.zeros_like(frac)

    def read(self, temp: np.ndarray) -> np.ndarray:
        """Marker readings (modules, markers) from node temperatures (modules, cells): each marker
        the two nearest cells weighted (the rows of `weights`), computed element by element so that a
        module reads the same to the last bit however many modules are stepped with it (a matrix
        product's rounding depends on the rows it is given)."""
        return temp[:, self._lo] * self._w_lo + temp[:, self._hi] * self._w_hi

"""The supervisor's side of a strategy: per-station current setpoints every scan.

Owns `StationDriver`, which turns one `Strategy` per station (its tier's) into a current setpoint
per station from what the line measures: the station current (coulomb counting from the graded
SOC, capacity = SOH estimate x nominal), the loaded cell voltage (module voltage / cells in
series) and the hottest marker of the station. Setpoint = C-rate of the profile at the estimated
SOC x nominal capacity, x the voltage taper near the cut-off, x the temperature derating, rising
no faster than the ramp (soft start from the end C-rate), clipped to the station limit. Tests: tests/edge/strategy/test_supervisor.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.batterymodel.arrays import nan_to_num
from edge.strategy.model import NOMINAL_CAPACITY_AH, Strategy


class StationDriver:
    def __init__(self, strategies: Sequence[Strategy], soc_est_pct: np.ndarray, soh_est: np.ndarray,
                 cutoff_v_per_cell: float = 2.5, station_max_current_a: float = 15.0):
        self.strategies = tuple(strategies)
        n = len(self.strategies)
        self.soc_pct = np.asarray(soc_est_pct, float).copy()
        self.capacity_ah = NOMINAL_CAPACITY_AH * np.clip(np.asarray(soh_est, float), 0.3, 1.2)
        if self.soc_pct.shape != (n,) or self.capacity_ah.shape != (n,):
            raise ValueError(f"StationDriver: {n} strategies but SOC {self.soc_pct.shape}, SOH {self.capacity_ah.shape}")
        self.cutoff_v = cutoff_v_per_cell
        self.max_a = station_max_current_a
        self._taper_v = np.array([s.taper_v_per_cell for s in self.strategies])
        self._end_c = np.array([s.end_c_rate for s in self.strategies])
        self._d0 = np.array([s.derate_start_degc for s in self.strategies])
        self._d1 = np.array([s.derate_stop_degc for s in self.strategies])
        self._floor = np.array([s.derate_floor for s in self.strategies])
        self._ramp_a_per_s = np.array([s.ramp_c_rate_per_s for s in self.strategies]) * NOMINAL_CAPACITY_AH
        self._last_a = np.zeros(n)
        width = max(len(s.segments) for s in self.strategies)
        # segment k of station i applies from _soc_from[i, k] (padding: never); past the last, the last rate
        self._soc_from = np.full((n, width), np.inf)
        self._seg_c = np.zeros((n, width))
        for i, st in enumerate(self.strategies):
            for k, (soc_from, c_rate) in enumerate(st.segments):
                self._soc_from[i, k], self._seg_c[i, k] = soc_from, c_rate
        self._last_c = np.array([st.segments[-1][1] for st in self.strategies], float)
        self.pressure_kpa = np.array([s.pressure_kpa for s in self.strategies])
        self.coolant_base_lpm = np.array([s.coolant_base_lpm for s in self.strategies])

    def profile_c_rate(self) -> np.ndarray:
        """Each station's C-rate at its estimated SOC (`Strategy.c_rate_at`, for every station at once)."""
        hit = self.soc_pct[:, None] >= self._soc_from
        first = hit.argmax(axis=1)
        return np.where(hit.any(axis=1), self._seg_c[np.arange(first.size), first], self._last_c)

    def step(self, current_a: np.ndarray, cell_voltage_v: np.ndarray, hottest_degc: np.ndarray,
             dt_s: float) -> np.ndarray:
        """Count the charge drawn over the last `dt_s`, return the current setpoints (A) for the next."""
        drawn = nan_to_num(np.asarray(current_a, float), nan=0.0).clip(min=0.0)
        self.soc_pct -= 100.0 * drawn * dt_s / 3600.0 / self.capacity_ah
        c_rate = self.profile_c_rate()
        v = nan_to_num(np.asarray(cell_voltage_v, float), nan=self.cutoff_v)
        taper = np.clip((v - self.cutoff_v) / (self._taper_v - self.cutoff_v), self._end_c / c_rate, 1.0)
        taper = np.where(drawn > 0, taper, 1.0)  # open circuit (not yet loaded) says nothing about the knee
        t = nan_to_num(np.asarray(hottest_degc, float), nan=np.inf)  # a lost sensor derates to the floor
        derate = np.clip((self._d1 - t) / (self._d1 - self._d0), self._floor, 1.0)
        target = c_rate * NOMINAL_CAPACITY_AH * taper * derate
        ceiling = np.maximum(self._last_a, self._end_c * NOMINAL_CAPACITY_AH) + self._ramp_a_per_s * dt_s
        self._last_a = np.clip(np.minimum(target, ceiling), 0.0, self.max_a)
        return self._last_a.copy()

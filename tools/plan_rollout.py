"""SIL rollouts of one tier's strategy for the planner (S12): the fast plant model and its controller.

Owns `model_cells` (a plant built from what grading estimated, never the truth), `pick_representative`
(the short sub-batch a tier is planned on) and `Rollout` (strategy -> SIL metrics through the
real-time loop of tools/bench_discharge.LoopController, with the tier's strategy on every station).
Tests: tests/tools/test_plan.py.

The model plant takes per module: SOC = graded SOC estimate, SOH = graded SOH estimate, capacity =
SOH x 5.153 Ah (the plant's fresh cell), ambient = the measured `feat_t_amb_C`, contact resistance
= `MODEL_CONTACT_MOHM` (not measured on arrival; a typical value). So planning sees the estimates
with their errors, as a real line would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.strategy.model import Strategy
from edge.strategy.supervisor import StationDriver
from tools.bench_discharge import LoopController
from tools.hil.baseline import BaselineController
from tools.hil.cells import CellTable
from tools.hil.plant import Plant, PlantConfig
from tools.hil.sil import SilConfig, run_sil

MODEL_CONTACT_MOHM = 10.0
FRESH_CAPACITY_AH = 5.153


def model_cells(cells: CellTable, soc_pct: np.ndarray, soh_est: np.ndarray) -> CellTable:
    """A CellTable whose truth_* columns are the graded estimates (the planner's plant)."""
    n = len(cells)
    soh = np.clip(np.asarray(soh_est, float), 0.31, 1.0)
    cols = {"cell_id": cells["cell_id"].copy(),
            "truth_soc": np.clip(np.asarray(soc_pct, float) / 100.0, 0.0, 1.0),
            "truth_soh": soh, "truth_cap_Ah": FRESH_CAPACITY_AH * soh,
            "truth_r_contact_mOhm": np.full(n, MODEL_CONTACT_MOHM),
            "truth_t_amb_C": cells["feat_t_amb_C"].copy() if cells.has("feat_t_amb_C") else np.full(n, 25.0)}
    return CellTable(f"{cells.path} (model from estimates)", cols)


def pick_representative(soc_pct: np.ndarray, soh_est: np.ndarray, r_mohm: np.ndarray, k: int = 4) -> np.ndarray:
    """Up to k row indices: the fullest (sets the tier's time), the most resistive (hottest, earliest
    cut-off), the most aged, then the rows nearest the tier's median SOC."""
    n = len(soc_pct)
    picks = [int(np.argmax(soc_pct)), int(np.argmax(r_mohm)), int(np.argmin(soh_est))]
    order = np.argsort(np.abs(soc_pct - np.median(soc_pct)))
    out: list[int] = []
    for i in picks + [int(j) for j in order]:
        if i not in out:
            out.append(i)
        if len(out) >= min(k, n):
            break
    return np.array(sorted(out))


@dataclass
class Rollout:
    """strategy -> metrics of the model sub-batch discharged through the real-time loop."""

    cells: CellTable
    soc_pct: np.ndarray
    soh_est: np.ndarray
    dt_s: float = 2.0
    max_time_s: float = 3 * 3600.0
    seed: int = 0
    calls: int = 0

    def sil(self) -> SilConfig:
        return SilConfig(dt_s=self.dt_s, max_time_s=self.max_time_s, record_every_s=max(self.dt_s, 60.0))

    def __call__(self, strategy: Strategy, **setpoint_overrides) -> dict:
        self.calls += 1
        plant = Plant(self.cells, PlantConfig(seed=self.seed))
        driver = StationDriver([strategy] * plant.n_modules, self.soc_pct, self.soh_est)
        limits = (strategy.station_limits(),) * plant.n_modules  # the tier's limits, enforced by the core
        ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, self.dt_s,
                              setpoints=strategy.setpoints(station_limits=limits, **setpoint_overrides), driver=driver)
        return run_sil(plant, ctrl, self.sil()).metrics.to_dict()

    def traditional(self) -> dict:
        plant = Plant(self.cells, PlantConfig(seed=self.seed))
        return run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), self.sil()).metrics.to_dict()

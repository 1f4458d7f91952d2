"""SIL rollouts of one tier's strategy for the planner (S12): the battery model built from the grade.

Owns `Grades` (what grading said of each battery: SOC with its interval, SOH with its spread, the
measured resistance, the ambient, the tier and the model digests), `rollout_batteries` (the
model's modules from a grade, never from truth), `pick_representative` (the short sub-batch a
tier is planned on), `Rollout` (strategy -> `RolloutMetrics` through the real-time loop of
edge/strategy/loop_controller.LoopController, with the tier's strategy on every station) and
`RolloutMetrics` (the SIL metrics, edge/batterymodel/sil.SilMetrics: a frozen dataclass with the
per-module list). Tests: tests/edge/strategy/test_planner.py.

The model's module, from the grade of one battery:
* SOC: drawn (seeded, once per rollout) from the estimate's interval, a normal with the
  interval's width at its level, clipped to the interval; SOH: drawn from N(estimate, the SOH
  model's validation spread), clipped to [0.31, 1]. So a rollout sees estimates with their errors,
  as a real line does: the station driver counts charge from the point estimates, the model
  discharges the drawn battery. `spread=False` takes the point estimates.
* contact resistance: from the measured 0.1 s pulse resistance less the model's own R0 at the
  estimated SOC, SOH and ambient, shrunk toward the typical contact:
  r = `CONTACT_TYPICAL_MOHM` + `CONTACT_WEIGHT`·(measured − R0_model), clipped to [0, 50] mΩ
  (least squares on cells_train.csv rows 0-199 against truth_r_contact_mOhm; rows 200-399:
  RMSE 4.1 mΩ, bias +0.2 mΩ; the former constant 10 mΩ: 5.0 mΩ, bias +2.5 mΩ);
* ambient: the measured `feat_t_amb_C`; electrode windows and diffusivity: the model's laws of SOH.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from edge.batterymodel.cell_model import CellBank, EcmParams
from edge.batterymodel.electrode import windows_for_soh
from edge.batterymodel.plant import KELVIN, Batteries, Plant, PlantConfig
from edge.batterymodel.sil import SilConfig, SilMetrics, run_sil
from edge.strategy.baseline import BaselineController
from edge.strategy.loop_controller import LoopController
from edge.strategy.model import Strategy
from edge.strategy.supervisor import StationDriver

RolloutMetrics = SilMetrics
"""A rollout's result: the SIL metrics (frozen dataclass; `per_module` holds one ModuleMetrics per
station, `to_dict()` the JSON form with the list as `modules_list`)."""

CONTACT_TYPICAL_MOHM = 6.29
CONTACT_WEIGHT = 0.282
PULSE_CURRENT_A = 5.0
"""The arrival test's pulse (feat_r0p1s_mOhm is measured at it)."""


@dataclass(frozen=True)
class Grades:
    """What grading said of each battery of a batch, one entry per row (arrays)."""

    cell_ids: np.ndarray
    soc_pct: np.ndarray
    soc_lo_pct: np.ndarray
    soc_hi_pct: np.ndarray
    soc_level: float
    """Coverage of the SOC interval [soc_lo_pct, soc_hi_pct]."""
    soh_est: np.ndarray
    soh_sd: float
    """Spread of the SOH estimate's error (the SOH model's validation sd, fraction of rated)."""
    r_mohm: np.ndarray
    """The measured 0.1 s pulse resistance (feat_r0p1s_mOhm)."""
    t_amb_degc: np.ndarray
    """The measured ambient at arrival (feat_t_amb_C)."""
    tier: np.ndarray
    models: dict[str, str] = field(default_factory=dict)
    """Model name -> sha256 of the file that graded (and planned)."""

    def __len__(self) -> int:
        return int(self.cell_ids.size)

    def select(self, rows: np.ndarray) -> Grades:
        arrays = {k: getattr(self, k)[rows] for k in ("cell_ids", "soc_pct", "soc_lo_pct", "soc_hi_pct", "soh_est",
                                                     "r_mohm", "t_amb_degc", "tier")}
        return Grades(soc_level=self.soc_level, soh_sd=self.soh_sd, models=dict(self.models), **arrays)

    def to_json(self) -> dict:
        return {"models": dict(self.models), "soc_interval_level": self.soc_level, "soh_sd": self.soh_sd,
                "cells": [{"cell_id": int(c), "soc_pct": round(float(s), 3), "soc_lo_pct": round(float(lo), 3),
                           "soc_hi_pct": round(float(hi), 3), "soh_est": round(float(h), 4),
                           "r_mohm": round(float(r), 3), "tier": int(t)}
                          for c, s, lo, hi, h, r, t in zip(self.cell_ids, self.soc_pct, self.soc_lo_pct,
                                                           self.soc_hi_pct, self.soh_est, self.r_mohm, self.tier)]}


def contact_estimate_mohm(grades: Grades, params: EcmParams | None = None) -> np.ndarray:
    """Contact resistance of each battery's model (module docstring) from its measured resistance."""
    params = params or EcmParams.load()
    soh = np.clip(grades.soh_est, 0.31, 1.0)
    bank = CellBank(params, windows_for_soh(soh), np.clip(grades.soc_pct / 100.0, 0.0, 1.0), soh, np.zeros(len(soh)))
    r0_mohm = 1e3 * bank.evaluate(np.full(len(soh), PULSE_CURRENT_A), grades.t_amb_degc + KELVIN)["r0_ohm"]
    return np.clip(CONTACT_TYPICAL_MOHM + CONTACT_WEIGHT * (grades.r_mohm - r0_mohm), 0.0, 50.0)


def rollout_batteries(grades: Grades, seed: int = 0, spread: bool = True) -> Batteries:
    """The model's modules from the grade (module docstring); never from truth."""
    soc = np.clip(grades.soc_pct / 100.0, 0.0, 1.0)
    soh = np.clip(grades.soh_est, 0.31, 1.0)
    if spread:
        rng = np.random.default_rng(seed)
        z = NormalDist().inv_cdf(0.5 + grades.soc_level / 2.0)
        lo, hi = grades.soc_lo_pct / 100.0, grades.soc_hi_pct / 100.0
        soc = np.clip(soc + rng.normal(0.0, 1.0, soc.size) * (hi - lo) / (2.0 * z), np.clip(lo, 0, 1), np.clip(hi, 0, 1))
        soh = np.clip(soh + rng.normal(0.0, grades.soh_sd, soh.size), 0.31, 1.0)
    return Batteries(soc=soc, soh=soh, r_contact_mohm=contact_estimate_mohm(grades), t_amb_degc=grades.t_amb_degc,
                     source="model from the grade")


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
    """strategy -> metrics of the model sub-batch (`grades` of its modules) discharged through the
    real-time loop; the model's batteries are drawn once, so every strategy meets the same batch."""

    grades: Grades
    dt_s: float = 2.0
    max_time_s: float = 3 * 3600.0
    seed: int = 0
    spread: bool = True
    calls: int = 0

    def __post_init__(self) -> None:
        self.batteries = rollout_batteries(self.grades, self.seed, self.spread)

    def sil(self) -> SilConfig:
        return SilConfig(dt_s=self.dt_s, max_time_s=self.max_time_s, record_every_s=max(self.dt_s, 60.0))

    def plant(self) -> Plant:
        return Plant(self.batteries, PlantConfig(seed=self.seed))

    def __call__(self, strategy: Strategy, **setpoint_overrides) -> RolloutMetrics:
        self.calls += 1
        plant = self.plant()
        driver = StationDriver([strategy] * plant.n_modules, self.grades.soc_pct, self.grades.soh_est)
        limits = (strategy.station_limits(),) * plant.n_modules  # the tier's limits, enforced by the core
        ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, self.dt_s,
                              setpoints=strategy.setpoints(station_limits=limits, **setpoint_overrides), driver=driver)
        return run_sil(plant, ctrl, self.sil(), cell_ids=self.grades.cell_ids).metrics

    def traditional(self) -> RolloutMetrics:
        """The traditional method on the same model sub-batch (the score's reference time)."""
        plant = self.plant()
        return run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), self.sil(),
                       cell_ids=self.grades.cell_ids).metrics

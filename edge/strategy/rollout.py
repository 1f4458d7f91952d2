"""SIL rollouts of one tier's strategy for the planner (S12): the battery model built from the grade.

Owns `Grades` (what grading said of each battery: SOC with its interval, SOH with its spread, the
measured resistance, the ambient, the tier and the model digests), `rollout_batteries` (the
model's modules from a grade, never from truth), `pick_representative` (the short sub-batch a
tier is planned on), `Rollout` (strategy -> `RolloutMetrics` through the real-time loop of
edge/strategy/loop_controller.LoopController, with the tier's strategy on every station) and
`RolloutMetrics` (the SIL metrics, edge/batterymodel/sil.SilMetrics: a frozen dataclass with the
per-module list). Tests: tests/edge/strategy/test_planner.py, tests/edge/strategy/test_rollout_stacked.py.

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

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from edge.batterymodel.cell_model import CellBank, EcmParams
from edge.batterymodel.electrode import windows_for_soh
from edge.batterymodel.plant import KELVIN, Batteries, Plant, PlantConfig
from edge.batterymodel.sil import SilConfig, SilMetrics, run_sil
from edge.batterymodel.stacked import concat_plants, run_sil_stacked, stack_plant
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


def drawn_soc_soh(grades: Grades, seed: int = 0, spread: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The model's SOC and SOH (fractions) of each battery from its grade (module docstring)."""
    soc = np.clip(grades.soc_pct / 100.0, 0.0, 1.0)
    soh = np.clip(grades.soh_est, 0.31, 1.0)
    if spread:
        rng = np.random.default_rng(seed)
        z = NormalDist().inv_cdf(0.5 + grades.soc_level / 2.0)
        lo, hi = grades.soc_lo_pct / 100.0, grades.soc_hi_pct / 100.0
        soc = np.clip(soc + rng.normal(0.0, 1.0, soc.size) * (hi - lo) / (2.0 * z), np.clip(lo, 0, 1), np.clip(hi, 0, 1))
        soh = np.clip(soh + rng.normal(0.0, grades.soh_sd, soh.size), 0.31, 1.0)
    return soc, soh


def rollout_batteries(grades: Grades, seed: int = 0, spread: bool = True) -> Batteries:
    """The model's modules from the grade (module docstring); never from truth."""
    return many_rollout_batteries([grades], seed, spread)[0]


def many_rollout_batteries(sub_batches: Sequence[Grades], seed: int = 0, spread: bool = True) -> list[Batteries]:
    """`rollout_batteries` of each sub-batch (each drawn with its own generator from `seed`), the
    electrode solves of all of them at once (element by element the same numbers: the solve is
    per battery, and one call for a tier's four costs as much as one for forty)."""
    drawn = [drawn_soc_soh(g, seed, spread) for g in sub_batches]
    sizes = np.cumsum([0] + [len(g) for g in sub_batches])
    everyone = Grades(**{k: np.concatenate([getattr(g, k) for g in sub_batches]) for k in
                         ("cell_ids", "soc_pct", "soc_lo_pct", "soc_hi_pct", "soh_est", "r_mohm", "t_amb_degc",
                          "tier")}, soc_level=sub_batches[0].soc_level, soh_sd=sub_batches[0].soh_sd) \
        if len(sub_batches) > 1 else sub_batches[0]
    contact = contact_estimate_mohm(everyone)
    windows = windows_for_soh(np.concatenate([soh for _, soh in drawn]))
    out = []
    for i, (g, (soc, soh)) in enumerate(zip(sub_batches, drawn)):
        part = slice(sizes[i], sizes[i + 1])
        w = type(windows)(*(getattr(windows, f)[part] for f in ("cap_ah", "x100", "y100", "q_neg_ah", "q_pos_ah")))
        out.append(Batteries(soc=soc, soh=soh, r_contact_mohm=contact[part], t_amb_degc=g.t_amb_degc,
                             windows=w, source="model from the grade"))
    return out


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


STACK_MAX_STATIONS = 256
"""At most this many stations (candidates x modules) in one stacked rollout; more are split."""


@dataclass
class Rollout:
    """strategy -> metrics of the model sub-batch (`grades` of its modules) discharged through the
    real-time loop; the model's batteries are drawn once, so every strategy meets the same batch.

    `__call__` is the scalar rollout (one SIL run through `LoopController` and the in-memory tag
    bus: the reference). `many(strategies)` rolls out every strategy not yet seen in one stacked
    SIL run (edge/batterymodel/stacked.py with edge/strategy/stacked_loop.py: the same metrics,
    tested strategy by strategy) and caches the metrics by strategy; `calls` counts the
    strategies rolled out, `runs` the SIL runs."""

    grades: Grades
    dt_s: float = 2.0
    max_time_s: float = 3 * 3600.0
    seed: int = 0
    spread: bool = True
    calls: int = 0
    runs: int = 0
    batteries: Batteries | None = field(default=None, repr=False)
    """The model's modules (`rollout_batteries(grades, seed, spread)` when not given)."""

    def __post_init__(self) -> None:
        if self.batteries is None:
            self.batteries = rollout_batteries(self.grades, self.seed, self.spread)
        self._template: Plant | None = None
        self.cache: dict[str, RolloutMetrics] = {}

    def sil(self) -> SilConfig:
        return SilConfig(dt_s=self.dt_s, max_time_s=self.max_time_s, record_every_s=max(self.dt_s, 60.0))

    def plant(self) -> Plant:
        """A fresh model plant of the sub-batch (built once, copied after)."""
        if self._template is None:
            self._template = Plant(self.batteries, PlantConfig(seed=self.seed))
        return copy.deepcopy(self._template)

    def __call__(self, strategy: Strategy, **setpoint_overrides) -> RolloutMetrics:
        self.calls += 1
        self.runs += 1
        plant = self.plant()
        driver = StationDriver([strategy] * plant.n_modules, self.grades.soc_pct, self.grades.soh_est)
        limits = (strategy.station_limits(),) * plant.n_modules  # the tier's limits, enforced by the core
        ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, self.dt_s,
                              setpoints=strategy.setpoints(station_limits=limits, **setpoint_overrides), driver=driver)
        return run_sil(plant, ctrl, self.sil(), cell_ids=self.grades.cell_ids).metrics

    def many(self, strategies: Sequence[Strategy]) -> list[RolloutMetrics]:
        """The metrics of each strategy (module docstring of edge/batterymodel/stacked.py): the
        ones not in the cache rolled out together, stacked by the setpoints the kernel holds for
        the whole line, at most `STACK_MAX_STATIONS` stations a run."""
        from edge.strategy.stacked_loop import StackedLoopController, line_key

        todo: dict[str, Strategy] = {}
        for s in strategies:
            if repr(s) not in self.cache:
                todo.setdefault(repr(s), s)
        groups: dict[object, list[Strategy]] = {}
        for s in todo.values():
            groups.setdefault(line_key(s.setpoints()), []).append(s)
        m = len(self.grades)
        width = max(1, STACK_MAX_STATIONS // max(m, 1))
        for group in groups.values():
            for i in range(0, len(group), width):
                chunk = group[i:i + width]
                template = self.plant()
                plant = stack_plant(template, len(chunk))
                ctrl = StackedLoopController(chunk, self.grades.soc_pct, self.grades.soh_est,
                                             template.markers.n_markers, template.cfg.n_zones, self.dt_s,
                                             template.cfg.cells_per_module)
                for s, metrics in zip(chunk, run_sil_stacked(plant, ctrl, self.sil(), cell_ids=self.grades.cell_ids)):
                    self.cache[repr(s)] = metrics
                self.calls += len(chunk)
                self.runs += 1
        return [self.cache[repr(s)] for s in strategies]

    def traditional(self) -> RolloutMetrics:
        """The traditional method on the same model sub-batch (the score's reference time);
        `traditional_many` runs several sub-batches' at once."""
        plant = self.plant()
        return run_sil(plant, BaselineController(plant.n_modules, plant.cfg.n_zones), self.sil(),
                       cell_ids=self.grades.cell_ids).metrics


def traditional_many(rollouts: Sequence[Rollout]) -> list[RolloutMetrics]:
    """`Rollout.traditional()` of each rollout in one SIL run (their plants side by side,
    edge/batterymodel/stacked.concat_plants, under one baseline controller, which acts module by
    module): the same metrics, one run's Python overhead instead of one a tier. Rollouts of other
    steps, horizons or plant seeds are run apart."""
    out: list[RolloutMetrics | None] = [None] * len(rollouts)
    keys: dict[tuple, list[int]] = {}
    for i, r in enumerate(rollouts):
        keys.setdefault((r.dt_s, r.max_time_s, r.seed), []).append(i)
    for rows in keys.values():
        plants = [rollouts[i].plant() for i in rows]
        stacked = concat_plants(plants)
        metrics = run_sil_stacked(stacked, BaselineController(stacked.n_modules, stacked.cfg.n_zones),
                                  rollouts[rows[0]].sil(), cell_ids=[rollouts[i].grades.cell_ids for i in rows])
        for i, m in zip(rows, metrics):
            out[i] = m
    return out  # type: ignore[return-value]

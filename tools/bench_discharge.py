"""`discharge-edge bench discharge`: one batch in SIL, the traditional method against ours (S12).

Both controllers discharge the same batch (one module per row of a cells file, the plant taking
the truth_* columns) on the same plant, on a virtual clock (edge/batterymodel/sil.py):
- traditional: edge/strategy/baseline.py (no tiers, one strategy, whole-fixture relief at warning);
- ours, as it stands: the real-time loop itself (edge/strategy/loop_controller.LoopController:
  rtcore's S14-S15 tick, its fault handling and safe state, the tag map's limits and safe values,
  the line PLC's program) on an in-memory PLC whose input
  tags the plant's sensors fill, with the same discharge current as the traditional method
  (`run_bench_discharge`, the fixed strategy), or, with planning (`run_bench_planned`), graded
  into tiers (S11), a strategy planned per tier (S12, edge/strategy/planner.py: history, game
  tree over SIL rollouts of the battery model built from the grade) and every station driven by its tier's strategy
  (edge.strategy.supervisor.StationDriver) with the ablations (tiers without the game tree, the
  game tree without S15's correction of relief).
The controller sees only the observation (the line's sensors), never the truth. Any batch size
runs, 1 module to thousands. With planning, a row whose grade is absurd (edge.strategy.planner.sane_rows)
leaves every run of the comparison and is listed in the report's `refused` (line, field, reason);
a batch that cannot be graded at all, or whose every row is refused, raises
`edge.strategy.planner.PlanInputError` naming the file: no plan and no history record is made of it. Tests: tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from edge.batterymodel.sil import SilConfig, run_sil
from edge.strategy.baseline import BaselineConfig, BaselineController
from edge.strategy.loop_controller import LoopController, batch_setpoints, fixed_strategy
from edge.strategy.planner import Grades, PlanInputError, grade_cells_table, plan_tiers, sane_rows
from edge.strategy.score import score_metrics
from edge.strategy.supervisor import StationDriver
from tools.hil.cells import CellTable
from tools.hil.plant import Plant, PlantConfig

log = logging.getLogger(__name__)

__all__ = ["LineBudget", "LoopController", "WITHOUT_RELIEF", "fixed_strategy", "run_bench_discharge",
           "run_bench_planned", "run_tiered"]


@dataclasses.dataclass(frozen=True)
class LineBudget:
    """What both controllers of a comparison get alike (DESIGN.md "Baseline"): the same fixed
    strategy where there is one, the same coolant per station (a base flow, and at most
    `coolant_max_lpm` while relieving or cooling a hot spot) and the same current limits."""

    current_a: float = 5.0  # the fixed strategy's discharge current (1C)
    clamp_kpa: float = 150.0
    coolant_base_lpm: float = BaselineConfig().coolant_lpm
    coolant_max_lpm: float = 20.0  # the map's coolant limit per station
    station_max_current_a: float = PlantConfig().station_max_current_a

    def baseline(self) -> BaselineConfig:
        return BaselineConfig(current_a=self.current_a, pressure_kpa=self.clamp_kpa,
                              coolant_lpm=self.coolant_base_lpm, coolant_relief_lpm=self.coolant_max_lpm)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_bench_discharge(cells: CellTable, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                        current_a: float = 5.0, seed: int = 0, faults: tuple = ()) -> dict:
    """Traditional method against the real-time loop with one fixed strategy (no planning): the same
    current, clamp, coolant budget and current limits (`LineBudget`); `faults` in both runs alike."""
    budget = LineBudget(current_a=current_a)
    plant_config = PlantConfig(seed=seed)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    ids = cells["cell_id"]
    results = {}
    baseline_plant = Plant(cells, plant_config, faults)
    baseline = BaselineController(baseline_plant.n_modules, plant_config.n_zones, budget.baseline())
    results["traditional"] = _metrics(run_sil(baseline_plant, baseline, sil, cell_ids=ids))
    ours_plant = Plant(cells, plant_config, faults)
    ours = LoopController(ours_plant.n_modules, ours_plant.markers.n_markers, plant_config.n_zones, dt_s,
                          setpoints=fixed_strategy(current_a).setpoints(), current_a=current_a,
                          pressure_kpa=budget.clamp_kpa, coolant_lpm=budget.coolant_base_lpm)
    results["ours"] = _metrics(run_sil(ours_plant, ours, sil, cell_ids=ids), ours)
    return {"cells": len(cells), "dt_s": dt_s, "current_a": current_a, "budget": budget.to_dict(),
            "faults": [repr(f) for f in faults], **results}


def _metrics(result, controller: LoopController | None = None) -> dict:
    """A run's metrics with its coolant use (the budget is the same; what each used is not)."""
    metrics = result.metrics.to_dict()
    coolant = result.trace.coolant_lpm
    metrics["coolant_mean_lpm"] = round(float(coolant.mean()), 3) if coolant.size else 0.0
    metrics["coolant_max_lpm"] = round(float(coolant.max()), 3) if coolant.size else 0.0
    if controller is not None:
        metrics["safe_state_at_end"] = bool(controller.loop.kernel.safe_state)
    return metrics


#: S14-S15 off (no relief, no relief coolant), everything else equal: the ablation of the fault runs.
WITHOUT_RELIEF = {"relief_gain_kpa_per_degc_per_s": 0.0, "coolant_gain_lpm_per_cm2_degc_per_s": 0.0}


def run_tiered(cells: CellTable, grades: Grades, strategy_of_tier: dict, dt_s: float, max_time_s: float,
               seed: int = 0, faults: tuple = (), **setpoint_overrides) -> dict:
    """Discharge the whole batch, each module with its tier's strategy, through the real-time loop."""
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    strategies = [strategy_of_tier[int(t)] for t in grades.tier]
    driver = StationDriver(strategies, grades.soc_pct, grades.soh_est)
    ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s,
                          setpoints=batch_setpoints(strategies, **setpoint_overrides), driver=driver)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    return _metrics(run_sil(plant, ctrl, sil, cell_ids=cells["cell_id"]), ctrl)


def run_bench_planned(cells: CellTable, history, *, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                      simulations: int = 16, tree_seconds: float = 120.0, policy=None, seed: int = 0,
                      n_tiers: int = 4, rollout_modules: int = 4, faults: tuple = ()) -> dict:
    """Traditional vs ours (grade -> tiers -> plan per tier -> tiered loop) and the ablations:
    tiers without the game tree (initial strategies), the game tree without the S15 correction of
    relief (correction_gain 0), the whole; with `faults`, also the whole without S14-S15
    (`without_relief`). The traditional method gets the same coolant budget: the mean base flow of
    the planned strategies and the same maximum per station. Every run is appended to the history
    (source 'bench'). `faults` (tools/hil/faults.py) are injected into every discharge run alike,
    never into planning. Grading and planning see the rows' `feat_*` columns only
    (`CellTable.arrival_table`); the plant, the truth."""
    arrival = cells.arrival_table()
    try:
        grades = grade_cells_table(arrival, n_tiers)
    except ValueError as exc:  # a row the model cannot grade (edge.grading names file and line)
        raise PlanInputError(str(exc) if cells.path in str(exc) else f"{cells.path}: {exc}") from exc
    keep, refused = sane_rows(arrival, grades)  # absurd grades: the row leaves the whole comparison
    if keep.size == 0:
        raise PlanInputError(f"{cells.path}: every battery refused, nothing to plan: "
                             + "; ".join(r.message(cells.path) for r in refused[:10]))
    if refused:
        cells, arrival, grades = cells.select(keep), arrival.subset(keep), grades.select(keep)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    initial = plan_tiers(arrival, grades, history, use_tree=False, seed=seed, rollout_modules=rollout_modules)
    planned = plan_tiers(arrival, grades, history, policy=policy, max_simulations=simulations,
                         max_seconds=tree_seconds, seed=seed, rollout_modules=rollout_modules)
    no_tree = {t: p.strategy for t, p in initial.items()}
    tree = {t: p.strategy for t, p in planned.items()}
    base_lpm = float(np.mean([tree[int(t)].coolant_base_lpm for t in grades.tier]))
    budget = LineBudget(coolant_base_lpm=round(base_lpm, 3))
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    baseline = BaselineController(plant.n_modules, plant.cfg.n_zones, budget.baseline())
    runs = {
        "traditional": _metrics(run_sil(plant, baseline, sil, cell_ids=cells["cell_id"])),
        "tiers_without_tree": run_tiered(cells, grades, no_tree, dt_s, max_time_s, seed, faults),
        "tree_without_relief_correction": run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults,
                                                     correction_gain=0.0),
        "ours": run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults),
    }
    if faults:
        runs["without_relief"] = run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults, **WITHOUT_RELIEF)
    ref = runs["traditional"]["batch_time_s"]
    for name, metrics in runs.items():
        metrics["batch_time_vs_traditional_pct"] = round(100.0 * (metrics["batch_time_s"] / ref - 1.0), 2)
        if name != "traditional":
            score = score_metrics(metrics, ref_time_s=ref)
            metrics["score_cost"] = round(score.cost, 4)
            metrics["violations"] = list(score.violations)
    for tier, p in planned.items():  # what the whole batch did, per tier, as bench records
        history.append("bench", tier, p.features, p.strategy, runs["ours"],
                       score_metrics(runs["ours"], ref_time_s=ref).cost)
    return {"cells": len(cells), "refused": [r.to_dict() for r in refused], "dt_s": dt_s, "budget": budget.to_dict(),
            "faults": [repr(f) for f in faults], "tier_sizes": {str(t): int(p.features.n_modules) for t, p in planned.items()},
            "plans": [p.to_json() for p in planned.values()], "models": dict(grades.models), **runs}


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
The controller sees only the observation (the line's sensors), never the truth.

Bounds. Every row is its own SIL station, so a run's time grows with modules x virtual seconds:
a batch is 1 to `MAX_MODULES` (2 000) modules; the command line refuses a larger file, naming it
and its row count (tools/bench_cli.py). Memory does not grow with the run: the SIL trace is kept
at its first and last sample only and the coolant mean and maximum are summed step by step
(`Watched`), so a run holds the plant, the controller and one sample per module, under
`MAX_MEMORY_MB` at the maximum batch (measured, `bench discharge` on 2 000 modules with the
default 4 virtual hours: 214 s wall for both runs, 149 MB peak resident; a file of 100 000 rows
is refused in 1 s at 52 MB). `progress` (a callable taking one line) hears each run's virtual time
and modules ended every `PROGRESS_EVERY_S` wall seconds and at its end. With planning, a row whose grade is absurd (edge.strategy.planner.sane_rows)
leaves every run of the comparison and is listed in the report's `refused` (line, field, reason);
a batch that cannot be graded at all, or whose every row is refused, raises
`edge.strategy.planner.PlanInputError` naming the file: no plan and no history record is made of it. Tests: tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from edge.batterymodel.sil import SilConfig, run_sil
from edge.strategy.baseline import BaselineConfig, BaselineController
from edge.strategy.loop_controller import LoopController, batch_setpoints, fixed_strategy
from edge.strategy.planner import Grades, PlanInputError, grade_cells_table, plan_tiers, sane_rows
from edge.strategy.score import score_metrics
from edge.strategy.supervisor import StationDriver
from tools.hil.cells import BenchCells
from tools.hil.plant import Plant, PlantConfig

log = logging.getLogger(__name__)

__all__ = ["LineBudget", "LoopController", "MAX_MEMORY_MB", "MAX_MODULES", "WITHOUT_RELIEF", "Watched",
           "fixed_strategy", "run_bench_discharge", "run_bench_planned", "run_tiered"]

MAX_MODULES = 2000
"""The largest batch a comparison runs (one SIL station per module; the schedule's largest line)."""
MAX_MEMORY_MB = 300
"""The peak resident memory of a comparison of `MAX_MODULES` modules stays under this, whatever
its virtual time (tests/tools/test_bench_discharge_bounds.py measures it)."""
PROGRESS_EVERY_S = 5.0
"""Wall seconds between two progress lines of a run."""

Progress = Callable[[str], None]


class Watched:
    """A controller as the bench runs it: forwards `step` (and `isolated_stations` where the
    controller has it), sums the coolant it commands step by step for the report's mean and
    maximum (no trace that grows with the run) and tells `progress` how the run goes."""

    def __init__(self, controller, name: str, max_time_s: float, progress: Progress | None = None,
                 every_s: float = PROGRESS_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.controller, self.name, self.max_time_s = controller, name, max_time_s
        self.progress, self.every_s, self.clock = progress, every_s, clock
        self.steps = 0
        self.coolant_sum_lpm = 0.0
        self.coolant_max_lpm = 0.0
        self.started_s = self.last_s = clock()

    def __getattr__(self, name: str):
        if name == "controller":  # not set yet (a copy): no recursion
            raise AttributeError(name)
        return getattr(self.controller, name)  # isolated_stations, loop, ... (AttributeError if it has none)

    def step(self, observation, dt_s: float):
        command = self.controller.step(observation, dt_s)
        coolant = np.asarray(command.coolant_lpm, float)
        if coolant.size:
            self.steps += 1
            self.coolant_sum_lpm += float(coolant.mean())
            self.coolant_max_lpm = max(self.coolant_max_lpm, float(coolant.max()))
        if self.progress is not None and self.clock() - self.last_s >= self.every_s:
            self.last_s = self.clock()
            ended = int(np.count_nonzero(observation.tripped))
            self.progress(f"{self.name}: {observation.t_s:.0f} of {self.max_time_s:.0f} virtual s, "
                          f"{ended} of {np.size(observation.tripped)} modules at cut-off, "
                          f"{self.last_s - self.started_s:.0f} s wall")
        return command

    def done(self, metrics: dict) -> dict:
        if self.progress is not None:
            self.progress(f"{self.name}: done at {metrics['batch_time_s']:.0f} virtual s, "
                          f"{metrics['modules_finished']} of {metrics['modules']} modules at cut-off, "
                          f"{self.clock() - self.started_s:.1f} s wall")
        return metrics


def _sil_config(dt_s: float, max_time_s: float) -> SilConfig:
    """The comparison's SIL: the trace sampled at the start and the end only (bounded memory)."""
    return SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, max_time_s))


def _run(plant, controller, name: str, sil: SilConfig, cell_ids, progress: Progress | None,
         loop: LoopController | None = None) -> dict:
    watched = Watched(controller, name, sil.max_time_s, progress)
    return watched.done(_metrics(run_sil(plant, watched, sil, cell_ids=cell_ids), watched, loop))


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


def check_batch_size(cells: BenchCells) -> None:
    """Refuse a batch of more than `MAX_MODULES` modules, naming its file and its size."""
    if len(cells) > MAX_MODULES:
        raise ValueError(f"{cells.path}: {len(cells)} modules; a bench batch is at most {MAX_MODULES} "
                         "(one SIL station each): take its first rows with --limit")


def run_bench_discharge(cells: BenchCells, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                        current_a: float = 5.0, seed: int = 0, faults: tuple = (),
                        progress: Progress | None = None) -> dict:
    """Traditional method against the real-time loop with one fixed strategy (no planning): the same
    current, clamp, coolant budget and current limits (`LineBudget`); `faults` in both runs alike."""
    check_batch_size(cells)
    budget = LineBudget(current_a=current_a)
    plant_config = PlantConfig(seed=seed)
    sil = _sil_config(dt_s, max_time_s)
    ids = cells["cell_id"]
    results = {}
    baseline_plant = Plant(cells, plant_config, faults)
    baseline = BaselineController(baseline_plant.n_modules, plant_config.n_zones, budget.baseline())
    results["traditional"] = _run(baseline_plant, baseline, "traditional", sil, ids, progress)
    del baseline_plant, baseline  # one run's plant at a time
    ours_plant = Plant(cells, plant_config, faults)
    ours = LoopController(ours_plant.n_modules, ours_plant.markers.n_markers, plant_config.n_zones, dt_s,
                          setpoints=fixed_strategy(current_a).setpoints(), current_a=current_a,
                          pressure_kpa=budget.clamp_kpa, coolant_lpm=budget.coolant_base_lpm)
    results["ours"] = _run(ours_plant, ours, "ours", sil, ids, progress, ours)
    return {"cells": len(cells), "dt_s": dt_s, "current_a": current_a, "budget": budget.to_dict(),
            "faults": [repr(f) for f in faults], **results}


def _metrics(result, watched: Watched, loop: LoopController | None = None) -> dict:
    """A run's metrics with its coolant use (the budget is the same; what each used is not): the
    mean over the run's steps of the stations' mean flow, and the highest flow of any station."""
    metrics = result.metrics.to_dict()
    mean = watched.coolant_sum_lpm / watched.steps if watched.steps else 0.0
    metrics["coolant_mean_lpm"] = round(mean, 3)
    metrics["coolant_max_lpm"] = round(watched.coolant_max_lpm, 3)
    if loop is not None:
        metrics["safe_state_at_end"] = bool(loop.loop.kernel.safe_state)
    return metrics


#: S14-S15 off (no relief, no relief coolant), everything else equal: the ablation of the fault runs.
WITHOUT_RELIEF = {"relief_gain_kpa_per_degc_per_s": 0.0, "coolant_gain_lpm_per_cm2_degc_per_s": 0.0}


def run_tiered(cells: BenchCells, grades: Grades, strategy_of_tier: dict, dt_s: float, max_time_s: float,
               seed: int = 0, faults: tuple = (), progress: Progress | None = None, name: str = "ours",
               **setpoint_overrides) -> dict:
    """Discharge the whole batch, each module with its tier's strategy, through the real-time loop."""
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    strategies = [strategy_of_tier[int(t)] for t in grades.tier]
    driver = StationDriver(strategies, grades.soc_pct, grades.soh_est)
    ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s,
                          setpoints=batch_setpoints(strategies, **setpoint_overrides), driver=driver)
    return _run(plant, ctrl, name, _sil_config(dt_s, max_time_s), cells["cell_id"], progress, ctrl)


def run_bench_planned(cells: BenchCells, history, *, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                      simulations: int = 16, tree_seconds: float = 120.0, policy=None, seed: int = 0,
                      n_tiers: int = 4, rollout_modules: int = 4, faults: tuple = (),
                      progress: Progress | None = None) -> dict:
    """Traditional vs ours (grade -> tiers -> plan per tier -> tiered loop) and the ablations:
    tiers without the game tree (initial strategies), the game tree without the S15 correction of
    relief (correction_gain 0), the whole; with `faults`, also the whole without S14-S15
    (`without_relief`). The traditional method gets the same coolant budget: the mean base flow of
    the planned strategies and the same maximum per station. Every run is appended to the history
    (source 'bench'). `faults` (tools/hil/faults.py) are injected into every discharge run alike,
    never into planning. Grading and planning see the rows' `feat_*` columns only
    (`BenchCells.arrival_table`); the plant, the truth."""
    check_batch_size(cells)
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
    sil = _sil_config(dt_s, max_time_s)
    if progress is not None:
        progress(f"planning {len(cells)} modules in {len(set(grades.tier.tolist()))} tiers")
    initial = plan_tiers(arrival, grades, history, use_tree=False, seed=seed, rollout_modules=rollout_modules)
    planned = plan_tiers(arrival, grades, history, policy=policy, max_simulations=simulations,
                         max_seconds=tree_seconds, seed=seed, rollout_modules=rollout_modules)
    no_tree = {t: p.strategy for t, p in initial.items()}
    tree = {t: p.strategy for t, p in planned.items()}
    base_lpm = float(np.mean([tree[int(t)].coolant_base_lpm for t in grades.tier]))
    budget = LineBudget(coolant_base_lpm=round(base_lpm, 3))
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    baseline = BaselineController(plant.n_modules, plant.cfg.n_zones, budget.baseline())
    runs = {"traditional": _run(plant, baseline, "traditional", sil, cells["cell_id"], progress)}
    del plant, baseline  # one run's plant at a time
    runs["tiers_without_tree"] = run_tiered(cells, grades, no_tree, dt_s, max_time_s, seed, faults, progress,
                                            "tiers_without_tree")
    runs["tree_without_relief_correction"] = run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults, progress,
                                                        "tree_without_relief_correction", correction_gain=0.0)
    runs["ours"] = run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults, progress)
    if faults:
        runs["without_relief"] = run_tiered(cells, grades, tree, dt_s, max_time_s, seed, faults, progress,
                                            "without_relief", **WITHOUT_RELIEF)
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


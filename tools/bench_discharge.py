"""`discharge-edge bench discharge`: one batch in SIL, the traditional method against ours (S12).

Both controllers discharge the same batch (one module per row of a cells file, the plant taking
the truth_* columns) on the same plant, on a virtual clock (tools/hil/sil.py):
- traditional: tools/hil/baseline.py (no tiers, one strategy, whole-fixture relief at warning);
- ours, as it stands: the real-time loop itself (edge/rtloop: rtcore's S14-S15 tick, its fault
  handling and safe state, the tag map's limits and safe values) on an in-memory PLC whose input
  tags the plant's sensors fill, with the same discharge current as the traditional method
  (`run_bench_discharge`, the fixed strategy), or, with planning (`run_bench_planned`), graded
  into tiers (S11), a strategy planned per tier (S12: history, game tree over SIL rollouts of the
  plant model built from the estimates) and every station driven by its tier's strategy
  (edge.strategy.supervisor.StationDriver) with the ablations (tiers without the game tree, the
  game tree without S15's correction of relief).
The controller sees only the observation (the line's sensors), never the truth.
Tests: tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from edge import REPO_ROOT
from edge.bus import MemoryPlc, Quality, open_bus
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_kernel
from edge.tagmap import Owner, TagMap, load_tag_map
from edge.strategy.model import NOMINAL_CAPACITY_AH, Strategy
from edge.strategy.supervisor import StationDriver
from rtcore.spec import Setpoints
from tools.hil.baseline import BaselineConfig, BaselineController
from tools.hil.cells import CellTable
from tools.hil.plant import Command, Observation, Plant, PlantConfig
from tools.hil.server_bench import COMMANDS, HEARTBEAT, PlcProgram, observation_tags
from tools.hil.sil import SilConfig, run_sil

log = logging.getLogger(__name__)

BENCH_MAP = REPO_ROOT / "plc_tags" / "hil_logix.yaml"  # REAL temperatures: a NaN sensor stays NaN


def fixed_strategy(current_a: float = 5.0) -> Strategy:
    """The no-plan fixed strategy: one constant C-rate (`current_a` of the 5 Ah nominal cell) with
    the calibrated ΔT threshold and check interval of that rate and the calibrated S14-S15 gains
    (edge/strategy/calibration.py, docs/calibration.md)."""
    return Strategy(segments=((0.0, current_a / NOMINAL_CAPACITY_AH),)).with_calibrated_thresholds()


#: The core's setpoints without a plan: the fixed 1C strategy's (calibrated θ, K·Δt, g₁, g_c, κ, λ,
#: relief hold) with the tier's station limits (warning 45 °C, maximum safety 55 °C) line-wide.
DEFAULT_SETPOINTS = fixed_strategy().setpoints()


def map_for_stations(tag_map: TagMap, n_stations: int) -> TagMap:
    """The bench map resized to `n_stations` (for the in-memory PLC of a SIL batch): every array
    sized by station, by zone or by marker keeps its per-station share."""
    stations = tag_map.tag("discharge_permit").count
    zones = tag_map.tag("zone_pressure_kpa").count
    markers = tag_map.tag("marker_temp_degc").count
    resize = {stations: n_stations, zones: n_stations * (zones // stations),
              markers: n_stations * (markers // stations)}
    tags = []
    for tag in tag_map.tags:
        count = resize.get(tag.count, tag.count) if tag.count > 1 else tag.count
        if count != tag.count:
            safe = (tag.safe_value[0],) * count if tag.safe_value is not None else None
            tag = dataclasses.replace(tag, count=count, safe_value=safe)
        tags.append(tag)
    return dataclasses.replace(tag_map, name=f"{tag_map.name}-sil{n_stations}", tags=tuple(tags))


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


class LoopController:
    """The real-time loop as a SIL controller: sensors -> PLC tags -> RtLoop.step -> PLC tags -> command.

    Without a `driver` the supervisor writes one fixed strategy (current, clamp pressure, base
    coolant) once. With a `driver` (edge.strategy.supervisor.StationDriver: one tier strategy per
    station) the supervisor writes, every tick, the current setpoint per station computed from the
    station current, voltage and hottest marker as the PLC reports them, and the strategy's clamp
    pressure and base coolant per station; the rtcore loop then does relief and coolant on top.
    """

    def __init__(self, n_modules: int, markers_per_module: int, n_zones: int, dt_s: float,
                 setpoints: Setpoints = DEFAULT_SETPOINTS, current_a: float = 5.0, pressure_kpa: float = 150.0,
                 coolant_lpm: float = BaselineConfig().coolant_lpm, driver: StationDriver | None = None,
                 cells_per_module: int = PlantConfig().cells_per_module):
        self.tag_map = map_for_stations(load_tag_map(BENCH_MAP), n_modules)
        if self.tag_map.tag("marker_temp_degc").count != n_modules * markers_per_module:
            raise ValueError(f"{BENCH_MAP}: {self.tag_map.tag('marker_temp_degc').count // n_modules} markers a "
                             f"station; the plant has {markers_per_module}")
        self.plc = MemoryPlc(self.tag_map)
        self.n_zones = n_zones
        self.markers = markers_per_module
        self.cells = cells_per_module
        self.driver = driver
        self.supervisor = open_bus(self.tag_map, Owner.SUPERVISOR, plc=self.plc)  # the strategy's writer
        if driver is not None:
            pressure_kpa, coolant_lpm = driver.pressure_kpa, driver.coolant_base_lpm
            current_a = driver.profile_c_rate() * 0.0  # nothing before the first measured tick
        self._write_strategy(np.broadcast_to(current_a, n_modules), np.broadcast_to(pressure_kpa, n_modules),
                             np.broadcast_to(coolant_lpm, n_modules))
        bus = open_bus(self.tag_map, Owner.RTCORE, plc=self.plc)
        kernel = build_kernel(self.tag_map, LoopTags(), dt_s, setpoints)
        self.loop = RtLoop(bus, kernel, settings=LoopSettings(period_s=dt_s))
        self.loop.arm()  # the operator's arm: a batch on the bench starts discharging at once
        self.program = PlcProgram(n_zones)  # the bench PLC: permit, min(setpoint, limit), heartbeat watchdog
        self._heartbeat = 0

    def isolated_stations(self) -> np.ndarray:
        """Stations the real-time core has isolated (their own fault; the line goes on)."""
        return np.asarray(self.loop.kernel.station_safe, bool)

    def _write_strategy(self, current_a, pressure_kpa, coolant_lpm) -> None:
        def value(v):
            v = tuple(float(x) for x in v)
            return v[0] if len(v) == 1 else v  # a one-station map has scalar tags

        refused = [r for r in self.supervisor.write({"discharge_current_setpoint_a": value(current_a),
                                                     "fixture_pressure_setpoint_kpa": value(pressure_kpa),
                                                     "coolant_base_lpm": value(coolant_lpm)})
                   if r.quality is not Quality.GOOD]
        if refused:  # the strategy is clipped to the map's limits upstream, so this is a bench defect
            raise RuntimeError(f"{self.tag_map.name}: strategy write refused: {[(r.name, r.quality.value) for r in refused]}")

    def step(self, observation: Observation, dt_s: float) -> Command:
        self._heartbeat += 1
        for name, value in {**observation_tags(observation, np.nan), "plc_heartbeat": self._heartbeat}.items():
            if isinstance(value, tuple) and len(value) == 1:
                value = value[0]  # a one-station map has scalar tags
            self.plc.set(name, value)
        if self.driver is not None:
            current = np.atleast_1d(np.asarray(self.plc.get("station_current_a"), float))
            voltage = np.atleast_1d(np.asarray(self.plc.get("station_voltage_v"), float)) / self.cells
            temps = np.asarray(self.plc.get("marker_temp_degc"), float).reshape(-1, self.markers)
            hottest = np.where(np.isfinite(temps), temps, np.inf).max(axis=1)
            setpoint = self.driver.step(current, voltage, hottest, dt_s)
            self._write_strategy(setpoint, self.driver.pressure_kpa, self.driver.coolant_base_lpm)
        self.loop.step()
        values = {name: self.plc.get(name) for name in (*COMMANDS, HEARTBEAT)}
        return self.program.scan(values, dt_s)


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


def batch_setpoints(strategies, **overrides) -> Setpoints:
    """The kernel's setpoints for a batch: each station gets its own tier's thresholds and limits
    (`Strategy.station_limits`: ΔT threshold, check interval, warning, maximum safety); the fields the
    kernel holds for the whole line (gains, the S15 correction gain) come from the first tier
    (all equal unless a planner changed them)."""
    return strategies[0].setpoints(station_limits=tuple(s.station_limits() for s in strategies), **overrides)


#: S14-S15 off (no relief, no relief coolant), everything else equal: the ablation of the fault runs.
WITHOUT_RELIEF = {"relief_gain_kpa_per_degc_per_s": 0.0, "coolant_gain_lpm_per_cm2_degc_per_s": 0.0}


def run_tiered(cells: CellTable, grades: dict, strategy_of_tier: dict, dt_s: float, max_time_s: float,
               seed: int = 0, faults: tuple = (), **setpoint_overrides) -> dict:
    """Discharge the whole batch, each module with its tier's strategy, through the real-time loop."""
    plant = Plant(cells, PlantConfig(seed=seed), faults)
    strategies = [strategy_of_tier[int(t)] for t in grades["tier"]]
    driver = StationDriver(strategies, grades["soc_pct"], grades["soh_est"])
    ctrl = LoopController(plant.n_modules, plant.markers.n_markers, plant.cfg.n_zones, dt_s,
                          setpoints=batch_setpoints(strategies, **setpoint_overrides), driver=driver)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    return _metrics(run_sil(plant, ctrl, sil, cell_ids=cells["cell_id"]), ctrl)


def run_bench_planned(cells: CellTable, cells_path, history, *, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                      simulations: int = 16, tree_seconds: float = 120.0, policy=None, seed: int = 0,
                      n_tiers: int = 4, rollout_modules: int = 4, faults: tuple = ()) -> dict:
    """Traditional vs ours (grade -> tiers -> plan per tier -> tiered loop) and the ablations:
    tiers without the game tree (initial strategies), the game tree without the S15 correction of
    relief (correction_gain 0), the whole; with `faults`, also the whole without S14-S15
    (`without_relief`). The traditional method gets the same coolant budget: the mean base flow of
    the planned strategies and the same maximum per station. Every run is appended to the history
    (source 'bench'). `faults` (tools/hil/faults.py) are injected into every discharge run alike,
    never into planning."""
    from edge.strategy.score import score_metrics
    from tools.plan import grade_table, plan_batch, plans_to_json

    grades = grade_table(cells_path, cells, n_tiers)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    initial = plan_batch(cells, grades, history, use_tree=False, seed=seed, rollout_modules=rollout_modules)
    planned = plan_batch(cells, grades, history, policy=policy, max_simulations=simulations,
                         max_seconds=tree_seconds, seed=seed, rollout_modules=rollout_modules)
    no_tree = {t: p["strategy"] for t, p in initial.items()}
    tree = {t: p["strategy"] for t, p in planned.items()}
    base_lpm = float(np.mean([tree[int(t)].coolant_base_lpm for t in grades["tier"]]))
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
        history.append("bench", tier, p["features"], p["strategy"], runs["ours"],
                       score_metrics(runs["ours"], ref_time_s=ref).cost)
    return {"cells": len(cells), "dt_s": dt_s, "budget": budget.to_dict(), "faults": [repr(f) for f in faults],
            "tier_sizes": {str(t): int(p["features"].n_modules) for t, p in planned.items()},
            "plans": plans_to_json(planned), **runs}


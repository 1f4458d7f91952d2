"""The real-time loop as a SIL controller: the supervisor's strategy writes, the rtcore loop and the
line PLC's program on an in-memory PLC, so that a SIL run (edge/batterymodel/sil.py) discharges
under the same loop as the line.

Owns `LoopController` (sensors -> PLC tags -> edge.rtloop.RtLoop.step -> PLC tags -> the PLC
program edge/batterymodel/plc.py -> the model's command), `map_for_stations` (the loop's tag map
resized to a batch), `fixed_strategy` and `DEFAULT_SETPOINTS` (the no-plan strategy) and
`batch_setpoints` (each station its tier's limits). The planner's rollouts
(edge/strategy/rollout.py) and the bench's `bench discharge` (tools/bench_discharge.py) use it.
Tests: tests/edge/strategy/test_planner.py, tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edge import REPO_ROOT
from edge.batterymodel.plant import Command, Observation, PlantConfig
from edge.batterymodel.plc import COMMANDS, HEARTBEAT, PlcProgram, observation_tags
from edge.bus import MemoryPlc, Quality, open_bus
from edge.rtloop.loop import LoopSettings, RtLoop
from edge.rtloop.process import build_kernel
from edge.strategy.baseline import BaselineConfig
from edge.strategy.model import NOMINAL_CAPACITY_AH, Strategy
from edge.strategy.supervisor import StationDriver
from edge.tagmap import Owner, TagMap, load_tag_map
from edge.tagmap.roles import map_station_count, role_tag
from rtcore.spec import Setpoints

LOOP_MAP = REPO_ROOT / "plc_tags" / "hil_logix.yaml"
"""The tag map of the SIL loop (REAL temperatures: a NaN sensor stays NaN)."""


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
    sized by station, by zone or by marker keeps its per-station share (the counts from the
    map's roles, edge/tagmap/roles.py)."""
    stations = map_station_count(tag_map)
    zones = role_tag(tag_map, "zone_pressure_kpa").count
    markers = role_tag(tag_map, "marker_temp_degc").count
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
        self.tag_map = map_for_stations(load_tag_map(LOOP_MAP), n_modules)
        temps = role_tag(self.tag_map, "marker_temp_degc")
        if temps.count != n_modules * markers_per_module:
            raise ValueError(f"{LOOP_MAP}: {temps.count // n_modules} markers a station; the plant has "
                             f"{markers_per_module}")
        self.plc = MemoryPlc(self.tag_map)
        self.n_zones = n_zones
        self.markers = markers_per_module
        self.cells = cells_per_module
        self.driver = driver
        self.supervisor = open_bus(self.tag_map, Owner.SUPERVISOR, plc=self.plc)  # the strategy's writer
        self._strategy_tags = tuple(role_tag(self.tag_map, r).name for r in
                                    ("discharge_current_setpoint_a", "fixture_pressure_setpoint_kpa", "coolant_base_lpm"))
        if driver is not None:
            pressure_kpa, coolant_lpm = driver.pressure_kpa, driver.coolant_base_lpm
            current_a = driver.profile_c_rate() * 0.0  # nothing before the first measured tick
        self._write_strategy(np.broadcast_to(current_a, n_modules), np.broadcast_to(pressure_kpa, n_modules),
                             np.broadcast_to(coolant_lpm, n_modules))
        bus = open_bus(self.tag_map, Owner.RTCORE, plc=self.plc)
        kernel = build_kernel(self.tag_map, None, dt_s, setpoints)  # the map's roles (LoopTags.for_map)
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

        name = self._strategy_tags
        refused = [r for r in self.supervisor.write({name[0]: value(current_a), name[1]: value(pressure_kpa),
                                                     name[2]: value(coolant_lpm)})
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


def batch_setpoints(strategies, **overrides) -> Setpoints:
    """The kernel's setpoints for a batch: each station gets its own tier's thresholds and limits
    (`Strategy.station_limits`: ΔT threshold, check interval, warning, maximum safety); the fields the
    kernel holds for the whole line (gains, the S15 correction gain) come from the first tier
    (all equal unless a planner changed them)."""
    return strategies[0].setpoints(station_limits=tuple(s.station_limits() for s in strategies), **overrides)

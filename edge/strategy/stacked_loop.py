"""The real-time loop of K candidate strategies at once, as one SIL controller over a stacked plant.

Owns `StackedLoopController`: what K `LoopController`s (edge/strategy/loop_controller.py) do, one
per candidate strategy on the same m modules, as NumPy arrays over the K·m stations of a
stacked plant (edge/batterymodel/stacked.py), with one rtcore kernel for all of them (each
station its candidate's limits) and the line PLC's program (edge/batterymodel/plc.py). The tag
bus of the scalar controller is replaced by what it does to these tags on the in-memory PLC
(every one a REAL or BOOL without scaling in plc_tags/hil_logix.yaml, so values pass unchanged):

* the supervisor's writes (current setpoint, clamp pressure, base coolant) are refused outside
  the map's limits (a RuntimeError, as the scalar controller raises on a refused write);
* a read tag holding a value outside its limits (or NaN) is still usable (UNCERTAIN_LIMITS);
* the core's outputs are its kernel's, clamped to the map's limits, the safe value for an
  isolated station or zone and for a non-finite value, every output safe while the line is
  latched; the heartbeat is the tick count (the PLC's watchdog sees it move from the 2nd tick).

The kernel holds some setpoints for the whole line (gains, relief hold): the K strategies must
agree on them (`line_key`); `Rollout.many` stacks only strategies that do, and the game tree's
modifications never change them. Equivalence with K scalar rollouts is tested strategy by
strategy: tests/edge/strategy/test_rollout_stacked.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from edge.batterymodel.plc import PlcProgram
from edge.rtloop.loop import HEARTBEAT_WRAP, LoopTags
from edge.rtloop.process import build_kernel
from edge.strategy.loop_controller import LOOP_MAP, map_for_stations
from edge.strategy.model import Strategy
from edge.strategy.supervisor import StationDriver
from edge.tagmap import TagMap, load_tag_map
from rtcore.spec import Setpoints


@lru_cache(maxsize=1)
def loop_map() -> TagMap:
    """The SIL loop's tag map, read once per process."""
    return load_tag_map(LOOP_MAP)


@lru_cache(maxsize=64)
def stations_map(n_stations: int) -> TagMap:
    """The loop's map resized to `n_stations` (cached: a rollout builds one per batch size)."""
    return map_for_stations(loop_map(), n_stations)


def line_key(setpoints: Setpoints) -> Setpoints:
    """The setpoints the kernel holds for the whole line (station limits left out)."""
    return dataclasses.replace(setpoints, station_limits=None)


def _safe(tag) -> np.ndarray:
    safe = tag.safe_value
    return np.asarray(safe if isinstance(safe, (tuple, list)) else (safe,) * tag.count, dtype=float)


def _clamp(values: np.ndarray, tag, safe: np.ndarray) -> np.ndarray:
    """RtLoop's clamp of an output to its tag: a non-finite value goes to the safe element 0."""
    out = np.clip(values, tag.limits.min, tag.limits.max) if tag.limits else values.astype(float)
    return np.where(np.isfinite(values), out, safe[0])


class StackedLoopController:
    """K LoopControllers with drivers, vectorised (module docstring): `strategies[g]` drives
    stations g·m .. g·m+m-1; `soc_est_pct`/`soh_est` are the m modules' grades."""

    def __init__(self, strategies: Sequence[Strategy], soc_est_pct: np.ndarray, soh_est: np.ndarray,
                 markers_per_module: int, n_zones: int, dt_s: float, cells_per_module: int,
                 **setpoint_overrides):
        k, m = len(strategies), int(np.asarray(soc_est_pct).size)
        self.copies, self.m = k, m
        s = k * m
        self.tag_map = tag_map = stations_map(s)
        self.markers, self.cells, self.n_zones = markers_per_module, cells_per_module, n_zones
        if tag_map.tag("marker_temp_degc").count != s * markers_per_module:
            raise ValueError(f"{LOOP_MAP}: {tag_map.tag('marker_temp_degc').count // s} markers a station; "
                             f"the plant has {markers_per_module}")
        per_station = [st for st in strategies for _ in range(m)]
        limits = tuple(st.station_limits() for st in per_station)
        keys = {line_key(st.setpoints(**setpoint_overrides)) for st in strategies}
        if len(keys) != 1:
            raise ValueError("StackedLoopController: the strategies differ in the setpoints the kernel holds for "
                             "the whole line; stack only strategies that agree (line_key)")
        setpoints = strategies[0].setpoints(station_limits=limits, **setpoint_overrides)
        self.driver = StationDriver(per_station, np.tile(np.asarray(soc_est_pct, float), k),
                                    np.tile(np.asarray(soh_est, float), k))
        tags = LoopTags()
        self.kernel = build_kernel(tag_map, tags, dt_s, setpoints)
        self.kernel.reset()  # the operator's arm (RtLoop.arm)
        self.program = PlcProgram(n_zones)
        self.tick_count = 0
        t = tag_map.tag
        self._w = {name: t(name) for name in ("discharge_current_setpoint_a", "fixture_pressure_setpoint_kpa",
                                              "coolant_base_lpm")}
        self._relief = [t(tags.relief_first), t(tags.relief_second)]
        self._relief_safe = [_safe(tag) for tag in self._relief]
        self._coolant, self._limit = t(tags.coolant), t(tags.current_limit)
        self._coolant_safe, self._limit_safe = _safe(self._coolant), _safe(self._limit)
        if self._coolant.count != s or self._limit.count != s:
            raise ValueError(f"{tag_map.source}: coolant and current limit must be per station")
        fixture = self.kernel.fixture
        self._zone_station = np.asarray(fixture.zone_station)
        self.pressure_kpa = self._check_write("fixture_pressure_setpoint_kpa", self.driver.pressure_kpa)
        self.coolant_base_lpm = self._check_write("coolant_base_lpm", self.driver.coolant_base_lpm)
        self.current_setpoint_a = self._check_write("discharge_current_setpoint_a",
                                                    self.driver.profile_c_rate() * 0.0)
        self._coolant_base = np.zeros(s)  # the loop's last good read of coolant_base_lpm

    def _check_write(self, name: str, values: np.ndarray) -> np.ndarray:
        tag = self._w[name]
        v = np.asarray(values, float)
        bad = ~np.isfinite(v)
        if tag.limits is not None:
            bad |= (v < tag.limits.min) | (v > tag.limits.max)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RuntimeError(f"{self.tag_map.name}: strategy write refused: {name}[{i}] = {v[i]} outside "
                               f"{tag.limits.min}..{tag.limits.max}")
        return v.copy()

    def isolated_stations(self) -> np.ndarray:
        return np.asarray(self.kernel.station_safe, bool)

    def step(self, observation, dt_s: float):
        temps = observation.marker_temp_degc.ravel()  # NaN stays NaN (REAL tags)
        current = np.asarray(observation.current_a, float)
        voltage = np.asarray(observation.module_voltage_v, float) / self.cells
        hottest = np.where(np.isfinite(temps), temps, np.inf).reshape(-1, self.markers).max(axis=1)
        setpoint = self.driver.step(current, voltage, hottest, dt_s)
        self.current_setpoint_a = self._check_write("discharge_current_setpoint_a", setpoint)
        self.pressure_kpa = self._check_write("fixture_pressure_setpoint_kpa", self.driver.pressure_kpa)
        self.coolant_base_lpm = self._check_write("coolant_base_lpm", self.driver.coolant_base_lpm)
        # the core's tick (RtLoop.step): read, tick, compose and write its outputs
        self._coolant_base = np.where(np.isfinite(self.coolant_base_lpm), self.coolant_base_lpm, self._coolant_base)
        kernel = self.kernel
        kernel.tick(temps.astype(np.float64), np.asarray(observation.pressure_kpa, float).ravel())
        values = self._outputs()
        self.tick_count += 1
        return self.program.scan(values, dt_s)

    def _outputs(self) -> dict:
        kernel = self.kernel
        heartbeat = self.tick_count % HEARTBEAT_WRAP
        s = self.copies * self.m
        if kernel.safe_state:  # the line latched: every output safe (never in a SIL without a bus)
            permit, limit = np.zeros(s, bool), self._limit_safe
            coolant, relief2 = self._coolant_safe, self._relief_safe[1]
        else:
            isolated = np.asarray(kernel.station_safe, bool)
            zone_isolated = isolated[self._zone_station]
            relief2 = np.where(zone_isolated, self._relief_safe[1],
                               _clamp(np.asarray(kernel.relief2_kpa, float), self._relief[1], self._relief_safe[1]))
            flow = np.asarray(kernel.station_coolant_lpm, float)
            coolant = np.where(isolated, self._coolant_safe,
                               _clamp(self._coolant_base + flow, self._coolant, self._coolant_safe))
            frac = np.asarray(kernel.current_limit_frac, float)
            limit = np.where(isolated, self._limit_safe,
                             _clamp(frac * self._limit.limits.max, self._limit, self._limit_safe))
            permit = ~isolated
        return {"discharge_permit": permit, "discharge_current_setpoint_a": self.current_setpoint_a,
                "current_limit_pct": limit, "fixture_pressure_setpoint_kpa": self.pressure_kpa,
                "relief_second_kpa": relief2, "coolant_flow_lpm": coolant, "rtcore_heartbeat": heartbeat}

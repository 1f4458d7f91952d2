"""`discharge-edge bench discharge`: one batch in SIL, the traditional method against ours.

Both controllers discharge the same batch (one module per row of a cells file, the plant taking
the truth_* columns) on the same plant, on a virtual clock (tools/hil/sil.py):
- traditional: tools/hil/baseline.py (no tiers, one strategy, whole-fixture relief at warning);
- ours, as it stands: the real-time loop itself (edge/rtloop: rtcore's S14-S15 tick, its fault
  handling and safe state, the tag map's limits and safe values) on an in-memory PLC whose input
  tags the plant's sensors fill, with the same discharge current as the traditional method
  (per-tier strategies come with S12).
The controller sees only the observation (the line's sensors), never the truth.
Tests: tests/tools/test_bench_discharge.py.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from edge import REPO_ROOT
from edge.bus import MemoryPlc, open_bus
from edge.rtloop.loop import LoopSettings, LoopTags, RtLoop
from edge.rtloop.process import build_kernel
from edge.tagmap import Owner, TagMap, load_tag_map
from rtcore.spec import Setpoints
from tools.hil.baseline import BaselineConfig, BaselineController
from tools.hil.cells import CellTable
from tools.hil.plant import Command, Observation, Plant, PlantConfig
from tools.hil.server_bench import COMMANDS, command_from_tags, observation_tags
from tools.hil.sil import SilConfig, run_sil

log = logging.getLogger(__name__)

BENCH_MAP = REPO_ROOT / "plc_tags" / "hil_logix.yaml"  # REAL temperatures: a NaN sensor stays NaN
DEFAULT_SETPOINTS = Setpoints(delta_t_threshold_degc=1.0, check_interval_s=4.0)


def map_for_stations(tag_map: TagMap, n_stations: int, markers_per_station: int) -> TagMap:
    """The bench map resized to `n_stations` (for the in-memory PLC of a SIL batch)."""
    old = tag_map.tag("zone_pressure_kpa").count
    old_markers = tag_map.tag("marker_temp_degc").count
    tags = []
    for tag in tag_map.tags:
        count = {old: n_stations, old_markers: n_stations * markers_per_station}.get(tag.count, tag.count)
        if tag.count > 1 and count != tag.count:
            safe = (tag.safe_value[0],) * count if tag.safe_value is not None else None
            tag = dataclasses.replace(tag, count=count, safe_value=safe)
        tags.append(tag)
    return TagMap(f"{tag_map.name}-sil{n_stations}", tag_map.protocol, tag_map.endpoint, tag_map.timeout_s,
                  tag_map.scan_groups, tuple(tags), tag_map.source)


class LoopController:
    """The real-time loop as a SIL controller: sensors -> PLC tags -> RtLoop.step -> PLC tags -> command."""

    def __init__(self, n_modules: int, markers_per_module: int, n_zones: int, dt_s: float,
                 setpoints: Setpoints = DEFAULT_SETPOINTS, current_a: float = 5.0, pressure_kpa: float = 150.0,
                 coolant_lpm: float = BaselineConfig().coolant_lpm):
        self.tag_map = map_for_stations(load_tag_map(BENCH_MAP), n_modules, markers_per_module)
        self.plc = MemoryPlc(self.tag_map)
        self.n_zones = n_zones
        with open_bus(self.tag_map, Owner.SUPERVISOR, plc=self.plc) as supervisor:  # the strategy
            supervisor.write({"discharge_current_setpoint_a": (current_a,) * n_modules,
                              "fixture_pressure_setpoint_kpa": (pressure_kpa,) * n_modules,
                              "coolant_base_lpm": (coolant_lpm,) * n_modules})
        bus = open_bus(self.tag_map, Owner.RTCORE, plc=self.plc)
        kernel = build_kernel(self.tag_map, LoopTags(), dt_s, setpoints)
        self.loop = RtLoop(bus, kernel, settings=LoopSettings(period_s=dt_s))
        self._heartbeat = 0

    def step(self, observation: Observation, dt_s: float) -> Command:
        self._heartbeat += 1
        for name, value in {**observation_tags(observation, np.nan), "plc_heartbeat": self._heartbeat}.items():
            self.plc.set(name, value)
        self.loop.step()
        return command_from_tags({name: self.plc.get(name) for name in COMMANDS}, self.n_zones)


def run_bench_discharge(cells: CellTable, dt_s: float = 1.0, max_time_s: float = 4 * 3600.0,
                        current_a: float = 5.0, seed: int = 0) -> dict:
    plant_config = PlantConfig(seed=seed)
    sil = SilConfig(dt_s=dt_s, max_time_s=max_time_s, record_every_s=max(dt_s, 10.0))
    results = {}
    baseline_plant = Plant(cells, plant_config)
    baseline = BaselineController(baseline_plant.n_modules, plant_config.n_zones, BaselineConfig(current_a=current_a))
    results["traditional"] = run_sil(baseline_plant, baseline, sil).metrics.to_dict()
    ours_plant = Plant(cells, plant_config)
    ours = LoopController(ours_plant.n_modules, ours_plant.markers.n_markers, plant_config.n_zones, dt_s,
                          current_a=current_a)
    results["ours"] = run_sil(ours_plant, ours, sil).metrics.to_dict()
    results["ours"]["safe_state_at_end"] = bool(ours.loop.kernel.safe_state)
    return {"cells": len(cells), "dt_s": dt_s, "current_a": current_a, **results}

"""The HIL bench: the battery plant behind a bench PLC server, stepped in real or scaled time.

Each step the bench's PLC program scans what the controller wrote (per-station discharge permit
and current limit from the real-time core, current and clamping-pressure setpoints from the
supervisor, relief per zone, coolant per station, the core's heartbeat), steps the plant, and
publishes what the line's sensors show (marker temperatures, applied pressure per zone, station
voltages and currents) and the PLC's own heartbeat. Any map with the roles serves
(tools/hil/bench_map.py: each tag by its role, so a map of other names and a `roles:` section
works; any stations, zones and markers a station, the plant built by `bench_plant_config` with
its markers where the map's fixture puts them); plc_tags/hil_*.yaml are 8 stations x 2 zones x 4
markers (plc_tags/README.md has the same program as Structured Text). A plant step that raises
closes the PLC server (`start(on_failure=)`, `failure`): never a live server over a dead plant. The PLC program is edge/batterymodel/plc.py's (`PlcProgram`, also run by
the planner's SIL rollouts):

* station s discharges while discharge_permit[s] and the core's watchdog is healthy, at
  discharge_current_setpoint_a[s] x current_limit_pct[s] / 100 (the core's envelope);
* zone z of station z // (Z/S) is clamped at fixture_pressure_setpoint_kpa[s] minus the
  second relief (S15, the corrected one) of that zone, as a share of the setpoint;
* the watchdog (`CoreWatchdog`): the core's rtcore_heartbeat must change at least every
  `WATCHDOG_S` = 0.5 s of PLC time, or every permit drops and every current goes to 0 until it
  moves again; each healthy -> stale transition counts as a trip. Before the heartbeat has moved
  once (a core not started yet) every station is off too, without a trip. The watchdog runs on
  the PLC's clock, as a real PLC's timer does: the wall clock between scans when the bench is
  paced (`start`), plant time / time_scale when a test steps it by hand (`step(dt_s)`). So a
  scaled bench (the x10 demo: one core tick = 1 plant second) does not trip, and a paced bench
  that catches up on plant steps in a burst does not trip early;
* the robot cell (S13; on a map with the robot_*, vision_* and station_loaded_id tags): the
  bench's batteries (`HilBench(..., batteries=BenchCells)`, a whole cells file or the batch; default
  the plant's own rows) not on a station at the start wait behind the robot and are fed, in
  order, into the inbox slots (`tools/hil/robot_cell.py` `InboxCamera`, which publishes a frame
  per slot with seeded noise); the single robot (`PlcRobot`, cycle `robot_cycle_s`, 8 s of plant
  time, 0 = instant) moves them slot -> station, station -> out lane, slot -> reject lane on the
  supervisor's orders, loading the battery's row (its truth) into the plant or unloading it; it
  refuses an unsafe station (fault 4) and holds a station it works in off. `placement_faults`
  (tools/hil/faults.py) make batteries reversed or low-confidence and the robot misbehave.
  `self.world` is the truth of who is where (`BenchWorld`: slots, stations, lanes, parts lost).

`discharge-edge hil serve --map FILE` runs it. Tests: tests/tools/hil/test_server_bench.py,
test_plc_watchdog.py, test_bench_robot.py, test_bench_any_map.py, test_bench_map.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace

import numpy as np

from edge.batterymodel.plc import (COMMANDS, HEARTBEAT, NO_BATTERY, ROBOT_CYCLE_S, STATION_LOADED,  # noqa: F401
                                   WATCHDOG_S, CoreWatchdog, PlcProgram, PlcRobot, command_from_tags,
                                   observation_tags)
from edge.placement.robot import ROBOT_WRITES
from edge.tagmap import Protocol, TagMap
from tools.hil.bench_map import ABSENT_DEFAULTS, PLC_HEARTBEAT, ROBOT_CELL, TEMPS, bench_layout
from tools.hil.cells import BenchCells
from tools.hil.faults import PlacementFault
from tools.hil.robot_cell import BenchWorld, CameraConfig, InboxCamera, mishaps_from
from tools.hil.plant import Command, Plant, PlantConfig
from tools.hil.server_common import BenchPlcServer

log = logging.getLogger(__name__)


def open_server(tag_map: TagMap, port: int = 0) -> BenchPlcServer:
    """The bench PLC for the map's protocol on 127.0.0.1:port (0 = any free port)."""
    if tag_map.protocol is Protocol.MODBUS:
        from tools.hil.server_modbus import ModbusPlcServer

        return ModbusPlcServer(tag_map, port=port)
    from tools.hil.server_logix import LogixPlcServer

    return LogixPlcServer(tag_map, port=port)


ROBOT_CELL_TAGS = ROBOT_CELL


def bench_plant_config(tag_map: TagMap, config: PlantConfig | None = None) -> PlantConfig:
    """`config` (default PlantConfig()) with the map's zones a station and marker positions
    (tools/hil/bench_map.py: the map's fixture, or the even split). ValueError names the map."""
    config = config or PlantConfig()
    layout = bench_layout(tag_map, config.cells_per_module)
    return replace(config, n_zones=layout.zones_per_station,
                   thermal=replace(config.thermal, marker_positions=layout.marker_positions))


class HilBench:
    """A plant whose stations are the map's stations; `step(dt_s)` is one PLC scan and plant step.

    `batteries`: what the robot can bring (a cells table; default the plant's rows); the map's
    robot-cell tags turn the robot and the camera on (`self.robot`, `self.camera`, `self.world`;
    None on a map without them)."""

    def __init__(self, plant: Plant, server: BenchPlcServer, watchdog_s: float = WATCHDOG_S,
                 batteries: BenchCells | None = None, robot_cycle_s: float = ROBOT_CYCLE_S,
                 camera: CameraConfig = CameraConfig(), placement_faults: tuple[PlacementFault, ...] = ()):
        self.plant = plant
        self.server = server
        served = server.served_map
        self.layout = layout = bench_layout(served, plant.cfg.cells_per_module)
        self.n_stations = layout.n_stations
        if (plant.n_modules != self.n_stations or plant.cfg.n_zones != layout.zones_per_station
                or plant.markers.n_markers != layout.markers_per_station):
            raise ValueError(f"{served.source}: the map has {self.n_stations} stations x {layout.zones_per_station} "
                             f"zones x {layout.markers_per_station} markers; the plant has {plant.n_modules} modules "
                             f"x {plant.cfg.n_zones} zones x {plant.markers.n_markers} markers "
                             "(build it with bench_plant_config)")
        self.program = PlcProgram(plant.cfg.n_zones, watchdog_s, n_stations=self.n_stations)
        self._commands = [k for k in (*COMMANDS, HEARTBEAT) if layout.has(k)]
        self._absent = {k: v for k, v in ABSENT_DEFAULTS.items() if not layout.has(k)}
        self.heartbeat = 0
        self.time_scale = 1.0
        self._paced = False
        self._last_scan_s = 0.0
        temp_tag = served.tag(layout.served[TEMPS])
        # a NaN sensor on a float tag stays NaN; an integer analog card shows a broken wire as overrange
        self._broken_wire = (np.nan if temp_tag.data_type.value in ("REAL", "LREAL")
                             else temp_tag.scaling.to_eu(temp_tag.data_type.raw_range[1]))
        self.command = Command.idle(plant.n_modules, plant.cfg.n_zones)
        self.batteries = batteries if batteries is not None else getattr(plant, "cells", None)
        self._row_of = ({} if self.batteries is None else
                        {int(c): i for i, c in enumerate(self.batteries["cell_id"])})
        self.robot: PlcRobot | None = None
        self.camera: InboxCamera | None = None
        self.world: BenchWorld | None = None
        if self.batteries is not None and all(layout.has(key) for key in ROBOT_CELL_TAGS):
            loaded_tag = served.tag(layout.served[STATION_LOADED])
            if loaded_tag.count != self.n_stations:
                raise ValueError(f"{served.source}: {loaded_tag.name} has {loaded_tag.count} "
                                 f"elements for {self.n_stations} stations")
            n_slots = served.tag(layout.served["vision_battery_id"]).count
            start = np.where(plant.loaded, np.asarray(plant.cells["cell_id"], float), NO_BATTERY).astype(np.int64)
            on_station = {int(b) for b in start if b != NO_BATTERY}
            feed = [int(c) for c in self.batteries["cell_id"] if int(c) not in on_station]
            self.camera = InboxCamera(feed, n_slots, camera, placement_faults)
            self.world = BenchWorld(self.camera, start, self._load, self.plant.unload_module,
                                    clock=lambda: self.plant.t_s)
            self.robot = PlcRobot(self.world, self.n_stations, n_slots, robot_cycle_s, mishaps_from(placement_faults))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None  # what ended the paced plant thread (the server is closed)
        self.steps = 0
        self.observers: list = []  # called as f(bench, dt_s) after each step, on the stepping thread
        self.publish()

    @property
    def loader(self) -> BenchWorld | None:
        """The bench's truth of the stations (`loaded_id`): the name tools/demo.py reads."""
        return self.world

    @property
    def watchdog(self) -> CoreWatchdog:
        return self.program.watchdog

    @property
    def watchdog_trips(self) -> int:
        return self.program.watchdog.trips

    def read_command(self, plc_dt_s: float | None) -> Command:
        """Read the controller's tags and scan them; PLC time since the last scan is `plc_dt_s`,
        or, paced, the wall clock from the last scan's read to this one's."""
        return self._scan(plc_dt_s, None)

    def _scan(self, plc_dt_s: float | None, plant_dt_s: float | None) -> Command:
        extra = list(ROBOT_WRITES) if self.robot is not None and plant_dt_s is not None else []
        served = self.layout.served
        values = {**self._absent,
                  **self.layout.from_served(self.server.get_many([served[k] for k in (*self._commands, *extra)]))}
        if plc_dt_s is None:
            now = time.monotonic()
            plc_dt_s, self._last_scan_s = now - self._last_scan_s, now
        command = self.program.scan(values, plc_dt_s)
        if extra:
            busy = np.asarray(command.discharge_on, bool) | (np.abs(np.asarray(self.plant.current_a, float)) > 0)
            hold = self.robot.scan(values, busy, plant_dt_s)
            command.discharge_on[hold] = False
            command.current_a[hold] = 0.0
        return command

    def _load(self, station: int, cell_id: int) -> None:
        """A battery onto a station: its row (truth) into the plant."""
        self.plant.load_row(station, self.batteries.select([self._row_of[cell_id]]))

    def publish(self) -> None:
        self.heartbeat = (self.heartbeat + 1) % 2_147_483_647
        values = observation_tags(self.plant.observe(), self._broken_wire)
        if self.robot is not None:  # the stations before the robot's done: a reader that sees done sees them
            values.update(station_loaded_id=tuple(int(v) for v in self.world.loaded_id), **self.camera.tags(),
                          **self.robot.status_tags())
        self.server.set_many(self.layout.to_served({**values, PLC_HEARTBEAT: self.heartbeat}))

    def step(self, dt_s: float) -> None:
        """One PLC scan and plant step of dt_s (PLC time: see the module docstring)."""
        self.command = self._scan(None if self._paced else dt_s / self.time_scale, dt_s)
        self.plant.step(self.command, dt_s)
        if self.camera is not None:
            self.camera.step(dt_s)
        self.publish()
        self.steps += 1
        for observe in self.observers:
            observe(self, dt_s)

    # -- paced in a thread ----------------------------------------------------------------------
    def start(self, dt_s: float = 0.05, time_scale: float = 1.0, on_failure=None, priority: int = 0) -> None:
        """Step every dt_s of plant time, `time_scale` plant seconds per wall second; `priority`
        1..99: the plant thread at SCHED_FIFO (a bench beside other load; refused: logged, run on).

        If a step raises, the plant is dead: the bench closes its PLC server (connections drop,
        new ones are refused: no live server over a dead plant), keeps the exception in
        `self.failure`, logs it and calls `on_failure(exc)` (the command line's cue to exit)."""
        self.time_scale = time_scale

        self._paced, self._last_scan_s = True, time.monotonic()

        def run():
            if priority:
                try:
                    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # this thread only
                except OSError as exc:
                    log.warning("HIL bench: SCHED_FIFO %d refused for the plant thread: %s", priority, exc)
            next_s = time.monotonic()
            try:
                while not self._stop.is_set():
                    self.step(dt_s)
                    next_s += dt_s / time_scale
                    self._stop.wait(max(0.0, next_s - time.monotonic()))
            except BaseException as exc:  # noqa: BLE001 -- any death of the plant takes the PLC down
                self.failure = exc
                log.error("HIL bench: the plant thread died at step %d (%.2f s of plant time): %s: %s; "
                          "closing the PLC server", self.steps, self.plant.t_s, type(exc).__name__, exc,
                          exc_info=exc)
                try:
                    self.server.close()
                finally:
                    if on_failure is not None:
                        on_failure(exc)

        self._thread = threading.Thread(target=run, name="hil-plant", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

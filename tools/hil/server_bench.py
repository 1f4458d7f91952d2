"""The HIL bench: the battery plant behind a bench PLC server, stepped in real or scaled time.

Each step the bench's PLC program scans what the controller wrote (per-station discharge permit
and current limit from the real-time core, current and clamping-pressure setpoints from the
supervisor, relief per zone, coolant per station, the core's heartbeat), steps the plant, and
publishes what the line's sensors show (marker temperatures, applied pressure per zone, station
voltages and currents) and the PLC's own heartbeat. Tag names and roles are those of
plc_tags/hil_*.yaml (8 stations x 2 zones x 4 markers; plc_tags/README.md has the same program
as Structured Text). The PLC program is edge/batterymodel/plc.py's (`PlcProgram`, also run by
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
test_plc_watchdog.py, test_bench_robot.py.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from edge.batterymodel.plc import (COMMANDS, HEARTBEAT, NO_BATTERY, ROBOT_CYCLE_S, STATION_LOADED,  # noqa: F401
                                   WATCHDOG_S, CoreWatchdog, PlcProgram, PlcRobot, command_from_tags,
                                   observation_tags)
from edge.placement.robot import ROBOT_READS, ROBOT_WRITES
from edge.placement.vision import VISION_TAGS
from edge.tagmap import Protocol, TagMap
from tools.hil.cells import BenchCells
from tools.hil.faults import PlacementFault
from tools.hil.robot_cell import BenchWorld, CameraConfig, InboxCamera, mishaps_from
from tools.hil.plant import Command, Plant
from tools.hil.server_common import BenchPlcServer

log = logging.getLogger(__name__)


def open_server(tag_map: TagMap, port: int = 0) -> BenchPlcServer:
    """The bench PLC for the map's protocol on 127.0.0.1:port (0 = any free port)."""
    if tag_map.protocol is Protocol.MODBUS:
        from tools.hil.server_modbus import ModbusPlcServer

        return ModbusPlcServer(tag_map, port=port)
    from tools.hil.server_logix import LogixPlcServer

    return LogixPlcServer(tag_map, port=port)


ROBOT_CELL_TAGS = (*ROBOT_WRITES, *ROBOT_READS, *VISION_TAGS, STATION_LOADED)


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
        n_markers = served.tag("marker_temp_degc").count
        n_zones = served.tag("zone_pressure_kpa").count
        self.n_stations = served.tag("discharge_permit").count
        if (plant.n_modules != self.n_stations or plant.n_modules * plant.cfg.n_zones != n_zones
                or plant.markers.n_markers * plant.n_modules != n_markers):
            raise ValueError(f"{served.source}: the map has {self.n_stations} stations, {n_zones} zones and "
                             f"{n_markers} markers; the plant has {plant.n_modules} modules x {plant.cfg.n_zones} "
                             f"zones x {plant.markers.n_markers} markers")
        self.program = PlcProgram(plant.cfg.n_zones, watchdog_s)
        self.heartbeat = 0
        self.time_scale = 1.0
        self._paced = False
        self._last_scan_s = 0.0
        temp_tag = served.tag("marker_temp_degc")
        # a NaN sensor on a REAL tag stays NaN; an INT analog card shows a broken wire as overrange
        self._broken_wire = np.nan if temp_tag.data_type.value == "REAL" else temp_tag.scaling.to_eu(temp_tag.data_type.raw_range[1])
        self.command = Command.idle(plant.n_modules, plant.cfg.n_zones)
        self.batteries = batteries if batteries is not None else getattr(plant, "cells", None)
        self._row_of = ({} if self.batteries is None else
                        {int(c): i for i, c in enumerate(self.batteries["cell_id"])})
        self.robot: PlcRobot | None = None
        self.camera: InboxCamera | None = None
        self.world: BenchWorld | None = None
        names = {t.name for t in served.tags}
        if self.batteries is not None and all(name in names for name in ROBOT_CELL_TAGS):
            if served.tag(STATION_LOADED).count != self.n_stations:
                raise ValueError(f"{served.source}: {STATION_LOADED} has {served.tag(STATION_LOADED).count} "
                                 f"elements for {self.n_stations} stations")
            n_slots = served.tag("vision_battery_id").count
            start = np.where(plant.loaded, np.asarray(plant.cells["cell_id"], float), NO_BATTERY).astype(np.int64)
            on_station = {int(b) for b in start if b != NO_BATTERY}
            feed = [int(c) for c in self.batteries["cell_id"] if int(c) not in on_station]
            self.camera = InboxCamera(feed, n_slots, camera, placement_faults)
            self.world = BenchWorld(self.camera, start, self._load, self.plant.unload_module,
                                    clock=lambda: self.plant.t_s)
            self.robot = PlcRobot(self.world, self.n_stations, n_slots, robot_cycle_s, mishaps_from(placement_faults))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
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
        values = self.server.get_many([*COMMANDS, HEARTBEAT, *extra])
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
        self.server.set_many({**values, "plc_heartbeat": self.heartbeat})

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
    def start(self, dt_s: float = 0.05, time_scale: float = 1.0) -> None:
        """Step every dt_s of plant time, `time_scale` plant seconds per wall second."""
        self.time_scale = time_scale

        self._paced, self._last_scan_s = True, time.monotonic()

        def run():
            next_s = time.monotonic()
            while not self._stop.is_set():
                self.step(dt_s)
                next_s += dt_s / time_scale
                self._stop.wait(max(0.0, next_s - time.monotonic()))

        self._thread = threading.Thread(target=run, name="hil-plant", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

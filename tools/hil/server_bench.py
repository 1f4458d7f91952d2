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
* the loading handshake (`StationLoader`; on a map with the station_* loading tags): the
  supervisor writes station_battery_id[s] (the cell_id it wants there; `NO_BATTERY` = -1 = none,
  as cell id 0 is a battery) and changes station_load_request[s]; the robot refuses at once with
  station_load_fault[s] = 1 (an id not among the bench's batteries) or 2 (the station
  discharging), else holds the station off for `LOAD_TIME_S` = 5 s of plant time, unloads its
  module, loads that battery's row (its truth) or leaves the station empty, and sets
  station_loaded_id[s] (-1: empty); station_load_done[s] echoes the request when it is handled.
  The bench's batteries (`HilBench(..., batteries=CellTable)`) are a whole cells file, not only
  the rows the stations start with (default: the plant's own rows).

`discharge-edge hil serve --map FILE` runs it. Tests: tests/tools/hil/test_server_bench.py,
test_plc_watchdog.py, test_bench_loading.py.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from edge.batterymodel.plc import (COMMANDS, HEARTBEAT, LOAD_NOT_SAFE, LOAD_OK, LOAD_REQUESTS,  # noqa: F401 (bench API)
                                   LOAD_STATUS, LOAD_TIME_S, LOAD_UNKNOWN_BATTERY, NO_BATTERY, WATCHDOG_S,
                                   CoreWatchdog, PlcProgram, StationLoader, command_from_tags, observation_tags)
from edge.tagmap import Protocol, TagMap
from tools.hil.cells import CellTable
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


class HilBench:
    """A plant whose stations are the map's stations; `step(dt_s)` is one PLC scan and plant step.

    `batteries`: what the robot can load (a cells table; default the plant's rows); the map's
    loading tags turn the robot on (`self.loader`, None on a map without them)."""

    def __init__(self, plant: Plant, server: BenchPlcServer, watchdog_s: float = WATCHDOG_S,
                 batteries: CellTable | None = None, load_time_s: float = LOAD_TIME_S):
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
        self.loader: StationLoader | None = None
        names = {t.name for t in served.tags}
        if self.batteries is not None and all(name in names for name in (*LOAD_REQUESTS, *LOAD_STATUS)):
            for name in (*LOAD_REQUESTS, *LOAD_STATUS):
                if served.tag(name).count != self.n_stations:
                    raise ValueError(f"{served.source}: {name} has {served.tag(name).count} elements "
                                     f"for {self.n_stations} stations")
            start = np.where(plant.loaded, np.asarray(plant.cells["cell_id"], float), NO_BATTERY).astype(np.int64)
            self.loader = StationLoader(start, lambda cell_id: cell_id in self._row_of, self._move, load_time_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.observers: list = []  # called as f(bench, dt_s) after each step, on the stepping thread
        self.publish()

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
        extra = list(LOAD_REQUESTS) if self.loader is not None and plant_dt_s is not None else []
        values = self.server.get_many([*COMMANDS, HEARTBEAT, *extra])
        if plc_dt_s is None:
            now = time.monotonic()
            plc_dt_s, self._last_scan_s = now - self._last_scan_s, now
        command = self.program.scan(values, plc_dt_s)
        if extra:
            command = self.loader.scan(values, command, self.plant.current_a, plant_dt_s)
        return command

    def _move(self, station: int, cell_id: int) -> None:
        """The robot: the station's module out, battery cell_id's in (`NO_BATTERY`: none)."""
        if cell_id == NO_BATTERY:
            self.plant.unload_module(station)
        else:
            self.plant.load_row(station, self.batteries.select([self._row_of[cell_id]]))

    def publish(self) -> None:
        self.heartbeat = (self.heartbeat + 1) % 2_147_483_647
        values = observation_tags(self.plant.observe(), self._broken_wire)
        if self.loader is not None:
            values.update(self.loader.status_tags())
        self.server.set_many({**values, "plc_heartbeat": self.heartbeat})

    def step(self, dt_s: float) -> None:
        """One PLC scan and plant step of dt_s (PLC time: see the module docstring)."""
        self.command = self._scan(None if self._paced else dt_s / self.time_scale, dt_s)
        self.plant.step(self.command, dt_s)
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

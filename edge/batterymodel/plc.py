"""The line PLC's program for the discharge stations, as the plant's command: one scan at a time.

Owns `PlcProgram`, `CoreWatchdog`, `command_from_tags`, `observation_tags` and the tag names they
read (tests: tests/tools/hil/test_plc_watchdog.py, test_server_bench.py,
test_bench_loading.py). The same program runs on
the HIL bench's PLC server (tools/hil/server_bench.py) and on the in-memory PLC of the planner's
SIL rollouts (edge/strategy/loop_controller.py); plc_tags/README.md has it as Structured Text:

* station s discharges while discharge_permit[s] and the core's watchdog is healthy, at
  discharge_current_setpoint_a[s] x current_limit_pct[s] / 100 (the core's envelope);
* zone z of station z // (Z/S) is clamped at fixture_pressure_setpoint_kpa[s] minus the
  second relief (S15, the corrected one) of that zone, as a share of the setpoint;
* the watchdog (`CoreWatchdog`): the core's rtcore_heartbeat must change at least every
  `WATCHDOG_S` = 0.5 s of PLC time, or every permit drops and every current goes to 0 until it
  moves again; each healthy -> stale transition counts as a trip. Before the heartbeat has moved
  once (a core not started yet) every station is off too, without a trip;
* the loading handshake (`StationLoader`, the bench's robot): when the supervisor's
  station_load_request[s] changes, the PLC checks the request (station_battery_id[s] not
  `NO_BATTERY` and not a battery it knows: fault 1; the station discharging, i.e. its permit on
  with a current asked, or current still measured: fault 2; either way station_load_done[s]
  echoes the request at once, nothing moves), else the robot holds the station off for
  `LOAD_TIME_S` (5 s of plant time), unloads its module if any, loads battery
  station_battery_id[s] (`NO_BATTERY` = -1: leaves it empty), and only then sets
  station_loaded_id[s] (-1: empty) and echoes the request in station_load_done[s] with
  station_load_fault[s] = 0. A request that changes during a move is taken when the move ends.
  Every cell id 0..2**31-1 is a battery: -1, not 0, is the handshake's "none".
"""

from __future__ import annotations

import logging

import numpy as np

from edge.batterymodel.plant import Command

log = logging.getLogger(__name__)

WATCHDOG_S = 0.5
"""PLC seconds the core's heartbeat may stand still before the PLC stops every station (5 core
ticks of 100 ms; above the core's own link blind time of 0.25 s)."""

COMMANDS = ("discharge_permit", "discharge_current_setpoint_a", "current_limit_pct", "fixture_pressure_setpoint_kpa",
            "relief_second_kpa", "coolant_flow_lpm")
HEARTBEAT = "rtcore_heartbeat"

NO_BATTERY = -1
"""station_battery_id / station_loaded_id: no battery (unload / empty). Not 0: cell id 0 is a battery."""
LOAD_TIME_S = 5.0
"""Plant seconds the bench's robot takes to unload a station and load the next battery."""
LOAD_REQUESTS = ("station_battery_id", "station_load_request")
"""Written by the supervisor: the battery wanted at each station (cell_id, NO_BATTERY = none) and
a counter whose change asks for it."""
LOAD_STATUS = ("station_loaded_id", "station_load_done", "station_load_fault")
"""Written by the PLC: the battery at each station (NO_BATTERY = empty), the last request handled, its fault."""
LOAD_OK, LOAD_UNKNOWN_BATTERY, LOAD_NOT_SAFE = 0, 1, 2


def _floats(value) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


def command_from_tags(values: dict, zones_per_station: int | None = None) -> Command:
    """What the controller wrote to the PLC, as the plant's command (the PLC program without its
    watchdog). Stations S = the supervisor's setpoint count; zones Z = the relief count, Z/S per
    station (`zones_per_station`, when given, must agree). A scalar permit applies to every station."""
    setpoint = _floats(values["fixture_pressure_setpoint_kpa"])
    s = setpoint.size
    relief_kpa = _floats(values["relief_second_kpa"])
    if relief_kpa.size % s or (zones_per_station is not None and relief_kpa.size != s * zones_per_station):
        raise ValueError(f"relief_second_kpa has {relief_kpa.size} zones for {s} stations"
                         + (f" x {zones_per_station} zones" if zones_per_station is not None else ""))
    z = relief_kpa.size // s
    asked = np.nan_to_num(_floats(values["discharge_current_setpoint_a"]), nan=0.0)
    limit = np.nan_to_num(_floats(values["current_limit_pct"]), nan=0.0)
    current = np.clip(asked * np.clip(limit, 0.0, 100.0) / 100.0, 0.0, None)
    permit = np.broadcast_to(np.atleast_1d(np.asarray(values["discharge_permit"], dtype=bool)), (s,))
    zone_setpoint = np.repeat(setpoint, z)
    relief = np.clip(relief_kpa / np.maximum(zone_setpoint, 1.0), 0.0, 1.0)
    return Command(
        discharge_on=permit & (current > 0),
        current_a=current, load_ohm=np.full(s, 1.0),
        pressure_kpa=zone_setpoint.reshape(s, z), relief=relief.reshape(s, z),
        coolant_lpm=_floats(values["coolant_flow_lpm"]),
    )


class CoreWatchdog:
    """The PLC's watch on the core's heartbeat (module docstring); `update` once a PLC scan."""

    def __init__(self, timeout_s: float = WATCHDOG_S):
        if not timeout_s > 0:
            raise ValueError(f"watchdog timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.healthy = False
        self.trips = 0
        self.stale_s = 0.0
        self._last = None

    def update(self, heartbeat, dt_s: float) -> bool:
        """Feed this scan's heartbeat after dt_s of PLC time; True while the core may discharge."""
        if self._last is not None and heartbeat != self._last:
            self.stale_s = 0.0
            self.healthy = True
        else:
            self.stale_s += dt_s
            if self.healthy and self.stale_s > self.timeout_s:
                self.healthy = False
                self.trips += 1
                log.warning("bench PLC: core heartbeat %s stale for %.2f s: every permit and current dropped",
                            heartbeat, self.stale_s)
        self._last = heartbeat
        return self.healthy


class PlcProgram:
    """One PLC scan: the watchdog, then the tags as the plant's command (stopped while stale)."""

    def __init__(self, zones_per_station: int | None = None, watchdog_s: float = WATCHDOG_S):
        self.zones_per_station = zones_per_station
        self.watchdog = CoreWatchdog(watchdog_s)

    def scan(self, values: dict, dt_s: float) -> Command:
        ok = self.watchdog.update(values[HEARTBEAT], dt_s)
        command = command_from_tags(values, self.zones_per_station)
        if not ok:
            command.discharge_on[:] = False
            command.current_a[:] = 0.0
        return command


def _ints(value, n: int, missing: int = 0) -> np.ndarray:
    a = np.nan_to_num(np.atleast_1d(np.asarray(value, dtype=float)), nan=missing)
    return np.broadcast_to(a, (n,)).astype(np.int64)


class StationLoader:
    """The loading handshake and the robot behind it (module docstring); `scan` once a PLC scan.

    `loaded_ids`: the battery at each station at the start (`NO_BATTERY` = empty);
    `is_known(cell_id)`: the robot can fetch that battery; `move(station, cell_id)`: the robot's
    work at the end of a move (unload, then load cell_id unless it is `NO_BATTERY`)."""

    def __init__(self, loaded_ids, is_known, move, load_time_s: float = LOAD_TIME_S):
        if not load_time_s >= 0:
            raise ValueError(f"load_time_s must be >= 0, got {load_time_s}")
        self.loaded_id = np.array(loaded_ids, dtype=np.int64)
        n = self.loaded_id.size
        self.is_known, self.move, self.load_time_s = is_known, move, float(load_time_s)
        self.done = np.zeros(n, np.int64)
        self.fault = np.zeros(n, np.int64)
        self.taken = np.zeros(n, np.int64)  # the last request taken (the tags start at 0)
        self.target = np.zeros(n, np.int64)
        self.remaining_s = np.full(n, np.nan)  # NaN: no move under way

    @property
    def moving(self) -> np.ndarray:
        return np.isfinite(self.remaining_s)

    def scan(self, values: dict, command: Command, current_a: np.ndarray, dt_s: float) -> Command:
        """Advance the moves by dt_s (plant time), take new requests, and hold moving stations off."""
        n = self.loaded_id.size
        for s in np.flatnonzero(self.moving):
            self.remaining_s[s] -= dt_s
            if self.remaining_s[s] <= 1e-9:
                self.move(int(s), int(self.target[s]))
                self.loaded_id[s] = self.target[s]
                self.remaining_s[s] = np.nan
                self.fault[s] = LOAD_OK
                self.done[s] = self.taken[s]
                if self.target[s] == NO_BATTERY:
                    log.info("bench robot: station %d left empty", s)
                else:
                    log.info("bench robot: station %d holds battery %d", s, self.target[s])
        request = _ints(values["station_load_request"], n)
        wanted = _ints(values["station_battery_id"], n, missing=NO_BATTERY)
        busy = np.asarray(command.discharge_on, bool) | (np.abs(np.asarray(current_a, float)) > 0)
        for s in np.flatnonzero((request != self.taken) & ~self.moving):
            self.taken[s] = request[s]
            if wanted[s] != NO_BATTERY and not self.is_known(int(wanted[s])):
                self.fault[s], self.done[s] = LOAD_UNKNOWN_BATTERY, request[s]
                log.warning("bench PLC: station %d asked for battery %d, which the robot does not know", s, wanted[s])
            elif busy[s]:
                self.fault[s], self.done[s] = LOAD_NOT_SAFE, request[s]
                log.warning("bench PLC: station %d asked to load while discharging: refused", s)
            else:
                self.target[s] = wanted[s]
                self.remaining_s[s] = self.load_time_s
        moving = self.moving
        command.discharge_on[moving] = False
        command.current_a[moving] = 0.0
        return command

    def status_tags(self) -> dict:
        return {"station_loaded_id": tuple(int(v) for v in self.loaded_id),
                "station_load_done": tuple(int(v) for v in self.done),
                "station_load_fault": tuple(int(v) for v in self.fault)}


def observation_tags(obs, broken_wire: float) -> dict:
    """What the line's sensors show, as the PLC's input tags (zones station by station)."""
    temps = obs.marker_temp_degc.ravel()
    return {
        "marker_temp_degc": tuple(np.where(np.isfinite(temps), temps, broken_wire)),
        "zone_pressure_kpa": tuple(obs.pressure_kpa.ravel()),
        "station_voltage_v": tuple(obs.module_voltage_v),
        "station_current_a": tuple(obs.current_a),
    }

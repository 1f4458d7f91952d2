"""The line PLC's program for the discharge stations, as the plant's command: one scan at a time.

Owns `PlcProgram`, `CoreWatchdog`, `command_from_tags`, `observation_tags` and the tag names they
read (tests: tests/tools/hil/test_plc_watchdog.py, test_server_bench.py). The same program runs on
the HIL bench's PLC server (tools/hil/server_bench.py) and on the in-memory PLC of the planner's
SIL rollouts (edge/strategy/loop_controller.py); plc_tags/README.md has it as Structured Text:

* station s discharges while discharge_permit[s] and the core's watchdog is healthy, at
  discharge_current_setpoint_a[s] x current_limit_pct[s] / 100 (the core's envelope);
* zone z of station z // (Z/S) is clamped at fixture_pressure_setpoint_kpa[s] minus the
  second relief (S15, the corrected one) of that zone, as a share of the setpoint;
* the watchdog (`CoreWatchdog`): the core's rtcore_heartbeat must change at least every
  `WATCHDOG_S` = 0.5 s of PLC time, or every permit drops and every current goes to 0 until it
  moves again; each healthy -> stale transition counts as a trip. Before the heartbeat has moved
  once (a core not started yet) every station is off too, without a trip.
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


def observation_tags(obs, broken_wire: float) -> dict:
    """What the line's sensors show, as the PLC's input tags (zones station by station)."""
    temps = obs.marker_temp_degc.ravel()
    return {
        "marker_temp_degc": tuple(np.where(np.isfinite(temps), temps, broken_wire)),
        "zone_pressure_kpa": tuple(obs.pressure_kpa.ravel()),
        "station_voltage_v": tuple(obs.module_voltage_v),
        "station_current_a": tuple(obs.current_a),
    }

"""The line PLC's program for the discharge stations, as the plant's command: one scan at a time.

Owns `PlcProgram`, `CoreWatchdog`, `PlcRobot` (with `RobotMishap`, `RobotWorld`), `command_from_tags`,
`observation_tags` and the tag names they
read (tests: tests/tools/hil/test_plc_watchdog.py, test_server_bench.py,
test_bench_robot.py). The same program runs on
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
* the robot (`PlcRobot`, contract /work/contract/S13.md and plc_tags/README.md): the line's single
  robot takes a change of robot_order_seq as a new order (pick, place, battery id) while it is
  idle or done, checks it (fault 1 a bad location, 2 the pick place empty or another battery, 3
  the place occupied, 4 a station of the move not safe: its permit on with current, or current
  measured), acknowledges it (robot_ack_seq) and moves for `ROBOT_CYCLE_S` (8 s of plant time;
  0 = instant), the part in its gripper from `PICK_AT` of the cycle; done or fault,
  robot_done_seq echoes the order. A station the robot works in carries no current. A change of
  robot_reset_seq clears a fault, puts a part still in the gripper into the reject lane and
  abandons an open order (robot_done_seq := the order). Every cell id 0..2**31-1 is a battery:
  -1 (`NO_BATTERY`), not 0, is "none". The bench's faults (`RobotMishap`): an order never
  acknowledged, a move never finished, a part dropped (fault 5), a drive fault mid-move (6).
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from edge.batterymodel.plant import Command
from edge.placement.robot import (NO_BATTERY, REJECT_LANE, RobotFault, RobotState, describe_location,  # noqa: F401
                                  location_kind)

log = logging.getLogger(__name__)

WATCHDOG_S = 0.5
"""PLC seconds the core's heartbeat may stand still before the PLC stops every station (5 core
ticks of 100 ms; above the core's own link blind time of 0.25 s)."""

COMMANDS = ("discharge_permit", "discharge_current_setpoint_a", "current_limit_pct", "fixture_pressure_setpoint_kpa",
            "relief_second_kpa", "coolant_flow_lpm")
HEARTBEAT = "rtcore_heartbeat"

ROBOT_CYCLE_S = 8.0
"""Plant seconds of the bench robot's pick + place cycle (contract S13.md; 0 = instant)."""
PICK_AT = 0.5
"""Share of the cycle at which the gripper has taken the part from its pick place."""
STATION_LOADED = "station_loaded_id"
"""Written by the PLC: the battery at each station (NO_BATTERY = empty)."""


def _floats(value) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


def command_from_tags(values: dict, zones_per_station: int | None = None, n_stations: int | None = None) -> Command:
    """What the controller wrote to the PLC, as the plant's command (the PLC program without its
    watchdog). Stations S = `n_stations`, or the supervisor's setpoint count; zones Z = the relief
    count, Z/S per station (`zones_per_station`, when given, must agree). A scalar (a permit, a
    line's one coolant valve, a default for a tag the map lacks) applies to every station (zone)."""
    setpoint = _floats(values["fixture_pressure_setpoint_kpa"])
    s = setpoint.size if n_stations is None else n_stations
    relief_kpa = _floats(values["relief_second_kpa"])
    if relief_kpa.size == 1 and zones_per_station is not None:
        relief_kpa = np.repeat(relief_kpa, s * zones_per_station)
    if relief_kpa.size % s or (zones_per_station is not None and relief_kpa.size != s * zones_per_station):
        raise ValueError(f"relief_second_kpa has {relief_kpa.size} zones for {s} stations"
                         + (f" x {zones_per_station} zones" if zones_per_station is not None else ""))
    z = relief_kpa.size // s

    def per_station(name: str, array: np.ndarray) -> np.ndarray:
        if array.size not in (1, s):
            raise ValueError(f"{name} has {array.size} elements for {s} stations")
        return np.broadcast_to(array, (s,)).copy()

    setpoint = per_station("fixture_pressure_setpoint_kpa", setpoint)
    asked = np.nan_to_num(per_station("discharge_current_setpoint_a", _floats(values["discharge_current_setpoint_a"])),
                          nan=0.0)
    limit = np.nan_to_num(per_station("current_limit_pct", _floats(values["current_limit_pct"])), nan=0.0)
    current = np.clip(asked * np.clip(limit, 0.0, 100.0) / 100.0, 0.0, None)
    permit = per_station("discharge_permit", np.atleast_1d(np.asarray(values["discharge_permit"], dtype=bool)))
    zone_setpoint = np.repeat(setpoint, z)
    relief = np.clip(relief_kpa / np.maximum(zone_setpoint, 1.0), 0.0, 1.0)
    return Command(
        discharge_on=permit & (current > 0),
        current_a=current, load_ohm=np.full(s, 1.0),
        pressure_kpa=zone_setpoint.reshape(s, z), relief=relief.reshape(s, z),
        coolant_lpm=per_station("coolant_flow_lpm", _floats(values["coolant_flow_lpm"])),
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

    def __init__(self, zones_per_station: int | None = None, watchdog_s: float = WATCHDOG_S,
                 n_stations: int | None = None):
        self.zones_per_station = zones_per_station
        self.n_stations = n_stations
        self.watchdog = CoreWatchdog(watchdog_s)

    def scan(self, values: dict, dt_s: float) -> Command:
        ok = self.watchdog.update(values[HEARTBEAT], dt_s)
        command = command_from_tags(values, self.zones_per_station, self.n_stations)
        if not ok:
            command.discharge_on[:] = False
            command.current_a[:] = 0.0
        return command


class RobotMishap(enum.Enum):
    """What the bench's robot does wrong on an order (its faults; NONE on a real robot's good day)."""

    NONE = "none"
    NO_ACK = "no_ack"  # never acknowledges the order
    NO_FINISH = "no_finish"  # acknowledges, moves, never finishes
    DROP = "drop"  # loses the part after the pick: fault 5
    DRIVE_FAULT = "drive_fault"  # a drive fault at `at_frac` of the cycle: fault 6


class RobotWorld(Protocol):
    """The places the robot reaches: who is where (location codes of edge/placement/robot.py)."""

    def holds(self, location: int) -> int:
        """The battery at `location` (NO_BATTERY: none; a lane always takes one more)."""

    def take(self, location: int) -> int:
        """Remove and return the battery at `location`."""

    def put(self, location: int, battery_id: int) -> None:
        """Put `battery_id` at `location`."""


class PlcRobot:
    """The line's single robot behind the order handshake (module docstring); `scan` once a PLC scan.

    `world`: the places (slots, stations, lanes); `cycle_s`: plant seconds from acknowledge to
    done (0 = instant: acknowledged, picked and placed in one scan); the gripper has the part at
    `PICK_AT` of the cycle. `mishap_of(battery_id, n)` says what goes wrong on that battery's n-th
    order (n = 1, 2, ...) as (RobotMishap, at_frac)."""

    def __init__(self, world: RobotWorld, n_stations: int, n_slots: int, cycle_s: float = ROBOT_CYCLE_S,
                 mishap_of: Callable[[int, int], tuple[RobotMishap, float]] | None = None):
        if not (math.isfinite(cycle_s) and cycle_s >= 0):
            raise ValueError(f"robot cycle_s must be a finite number >= 0, got {cycle_s}")
        self.world, self.n_stations, self.n_slots, self.cycle_s = world, n_stations, n_slots, float(cycle_s)
        self.mishap_of = mishap_of or (lambda battery_id, n: (RobotMishap.NONE, 0.0))
        self.ack_seq = self.done_seq = 0
        self.state, self.fault = RobotState.IDLE, RobotFault.NONE
        self.holding = NO_BATTERY
        self.taken_order = self.taken_reset = 0  # the supervisor's tags start at 0
        self.order: tuple[int, int, int] | None = None  # pick, place, battery_id of the open order
        self.ignored = False  # an order taken and never acknowledged (NO_ACK)
        self.elapsed_s = 0.0
        self.picked = False
        self.mishap, self.at_frac = RobotMishap.NONE, 0.0
        self.orders_of: dict[int, int] = {}
        self.lost: list[int] = []  # parts dropped on the floor
        self.moves: list[dict] = []  # every order taken: seq, pick, place, battery_id, outcome

    def _kind(self, code: int):
        return location_kind(code, self.n_stations, self.n_slots)

    def _stations_of(self) -> list[int]:
        if self.order is None:
            return []
        return [k[1] for k in map(self._kind, self.order[:2]) if k is not None and k[0] == "station"]

    def _fail(self, code: RobotFault) -> None:
        self.state, self.fault, self.done_seq = RobotState.FAULT, code, self.taken_order
        self.moves[-1]["outcome"] = f"fault {int(code)}"
        log.warning("bench robot: order %d (%s): fault %d, %s", self.taken_order, self.moves[-1], code, code.text)

    def scan(self, values: dict, station_busy: np.ndarray, dt_s: float) -> np.ndarray:
        """Take a reset, then a new order, advance the move by dt_s; returns the stations to hold
        off (a station the robot works in carries no current)."""
        reset = int(np.nan_to_num(float(values.get("robot_reset_seq", self.taken_reset)), nan=self.taken_reset))
        if reset != self.taken_reset:
            self.taken_reset = reset
            if self.holding != NO_BATTERY:  # recovery: the part in the gripper to the reject lane
                self.world.put(REJECT_LANE, self.holding)
                log.warning("bench robot: reset; battery %d from the gripper to the reject lane", self.holding)
            if self.order is not None and self.done_seq != self.taken_order:
                self.moves[-1]["outcome"] = "abandoned"
            self.done_seq = self.taken_order  # an open order is abandoned
            self.holding, self.state, self.fault = NO_BATTERY, RobotState.IDLE, RobotFault.NONE
            self.order, self.ignored = None, False
        order = int(np.nan_to_num(float(values.get("robot_order_seq", self.taken_order)), nan=self.taken_order))
        if (order != self.taken_order and not self.ignored
                and self.state in (RobotState.IDLE, RobotState.DONE)):
            self._take(order, values, station_busy)
        if self.state is RobotState.ACKNOWLEDGED and self.cycle_s > 0:
            self.state = RobotState.IN_MOTION  # the scan after the acknowledge
        elif self.state is RobotState.IN_MOTION or (self.state is RobotState.ACKNOWLEDGED and self.cycle_s == 0):
            self.state = RobotState.IN_MOTION
            self._advance(station_busy, dt_s)
        hold = np.zeros(self.n_stations, bool)
        if self.state in (RobotState.ACKNOWLEDGED, RobotState.IN_MOTION):
            hold[self._stations_of()] = True
        return hold

    def _take(self, seq: int, values: dict, station_busy: np.ndarray) -> None:
        self.taken_order = seq
        pick, place, battery = (int(np.nan_to_num(float(values.get(k, -1)), nan=-1)) for k in
                                ("robot_order_pick", "robot_order_place", "robot_order_battery_id"))
        self.order = (pick, place, battery)
        n = self.orders_of[battery] = self.orders_of.get(battery, 0) + 1
        self.mishap, self.at_frac = self.mishap_of(battery, n)
        self.moves.append({"seq": seq, "pick": pick, "place": place, "battery_id": battery, "outcome": None})
        if self.mishap is RobotMishap.NO_ACK:
            self.ignored = True
            self.moves[-1]["outcome"] = "ignored"
            log.warning("bench robot: order %d ignored (fault scenario: no acknowledge)", seq)
            return
        kp, kq = self._kind(pick), self._kind(place)
        self.ack_seq = seq
        if kp is None or kp[0] not in ("slot", "station") or kq is None or kq == kp or kq[0] == "slot":
            return self._fail(RobotFault.BAD_LOCATION)
        if battery == NO_BATTERY or self.world.holds(pick) != battery:
            return self._fail(RobotFault.PICK_MISMATCH)
        if kq[0] == "station" and self.world.holds(place) != NO_BATTERY:
            return self._fail(RobotFault.PLACE_OCCUPIED)
        if any(station_busy[s] for s in self._stations_of()):
            return self._fail(RobotFault.STATION_NOT_SAFE)
        self.state, self.elapsed_s, self.picked = RobotState.ACKNOWLEDGED, 0.0, False

    def _advance(self, station_busy: np.ndarray, dt_s: float) -> None:
        pick, place, battery = self.order
        self.elapsed_s += dt_s
        frac = self.elapsed_s / self.cycle_s if self.cycle_s > 0 else 1.0
        drive = self.mishap is RobotMishap.DRIVE_FAULT
        if not self.picked and frac >= PICK_AT and not (drive and self.at_frac < PICK_AT):
            if self.world.holds(pick) != battery:
                return self._fail(RobotFault.PICK_MISMATCH)
            self.holding, self.picked = self.world.take(pick), True
        if drive and frac >= self.at_frac:
            return self._fail(RobotFault.DRIVE_FAULT)
        if self.mishap is RobotMishap.DROP and self.picked and frac >= max(self.at_frac, PICK_AT):
            self.lost.append(self.holding)
            log.warning("bench robot: battery %d dropped (fault scenario)", self.holding)
            self.holding = NO_BATTERY
            return self._fail(RobotFault.PART_DROPPED)
        if self.mishap is RobotMishap.NO_FINISH or frac < 1.0:
            return
        kq = self._kind(place)
        if kq[0] == "station" and station_busy[kq[1]]:
            return self._fail(RobotFault.STATION_NOT_SAFE)
        if kq[0] == "station" and self.world.holds(place) != NO_BATTERY:
            return self._fail(RobotFault.PLACE_OCCUPIED)
        self.world.put(place, self.holding)
        log.info("bench robot: order %d done: battery %d %s -> %s", self.taken_order, self.holding,
                 describe_location(pick), describe_location(place))
        self.holding, self.state, self.done_seq = NO_BATTERY, RobotState.DONE, self.taken_order
        self.moves[-1]["outcome"] = "done"

    def status_tags(self) -> dict:
        return {"robot_ack_seq": self.ack_seq, "robot_done_seq": self.done_seq, "robot_state": int(self.state),
                "robot_fault_code": int(self.fault), "robot_holding_id": self.holding}


def observation_tags(obs, broken_wire: float) -> dict:
    """What the line's sensors show, as the PLC's input tags (zones station by station)."""
    temps = obs.marker_temp_degc.ravel()
    return {
        "marker_temp_degc": tuple(np.where(np.isfinite(temps), temps, broken_wire)),
        "zone_pressure_kpa": tuple(obs.pressure_kpa.ravel()),
        "station_voltage_v": tuple(obs.module_voltage_v),
        "station_current_a": tuple(obs.current_a),
    }

"""The robot through tags: location codes and the supervisor's side of the order handshake.

Owns the location codes (`station_location`, `slot_location`, `REJECT_LANE`, `OUT_LANE`,
`describe_location`), `NO_BATTERY`, the robot's states and fault codes (`RobotState`,
`RobotFault`), the robot's role names (`ROBOT_WRITES`, `ROBOT_READS`: roles of edge/tagmap/roles.py;
values are keyed by role, the flow maps each to the map's own tag) and `RobotHandshake`, a pure
state machine over those tags (contract: S13.md section 1; the bench's robot: edge/batterymodel/plc.py
`PlcRobot`). Tests: tests/edge/placement/test_robot.py.

One move at a time:

    IDLE --start(move)--> ORDERED --ack_seq = seq--> MOVING --done_seq = seq, state done--> IDLE (result ok)
    ORDERED --done_seq = seq--> (an instant robot, or one that refused at once: done or fault)
    ORDERED --no ack within ack_timeout_s--> RESETTING      MOVING --not done within motion_timeout_s--> RESETTING
    (a step times out only once `min_scans` scans, 2, have read the robot since it began: a
    supervisor whose scan came late, on a loaded host or a scaled clock, does not call a robot
    slow that it has not yet read)
    ORDERED/MOVING --done_seq = seq, state fault--> RESETTING
    RESETTING --robot idle, done_seq = seq--> ORDERED (a retry: the part still at the pick place and
              attempts <= 1 + retries) or IDLE (result not ok, with the reason)

A reset (a change of robot_reset_seq) clears the robot's fault; its recovery puts a part still in
the gripper into the reject lane and abandons an open order (done_seq := order_seq). The machine
changes robot_order_seq only when robot_done_seq equals it (never two orders at once) and is fed
the tag values and the time each scan; `writes()` is what to write (the same values every scan:
idempotent). `snapshot()` is a JSON dict; `RobotHandshake(timeouts, snapshot)` rebuilds it after
a supervisor restart, and a machine without one adopts the sequence numbers it reads back from the
tags (it never writes a counter it has not seen, which the robot would take as a new order).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

NO_BATTERY = -1
"""No battery / empty (station_loaded_id, vision_battery_id, robot_holding_id): cell id 0 is a battery."""
STATION_BASE = 0
SLOT_BASE = 1000
REJECT_LANE = 2000
OUT_LANE = 2001
"""Location codes: 0..S-1 station s; 1000 + k inbox slot k; 2000 the reject lane; 2001 the out
lane (a discharged battery leaves the line)."""

ROBOT_WRITES = ("robot_order_seq", "robot_order_pick", "robot_order_place", "robot_order_battery_id",
                "robot_reset_seq")
"""Written by the supervisor (role names; the map's tags may be named otherwise)."""
ROBOT_READS = ("robot_ack_seq", "robot_done_seq", "robot_state", "robot_fault_code", "robot_holding_id")
"""Written by the PLC's robot."""


def station_location(station: int) -> int:
    return STATION_BASE + int(station)


def slot_location(slot: int) -> int:
    return SLOT_BASE + int(slot)


def location_kind(code: int, n_stations: int, n_slots: int) -> tuple[str, int] | None:
    """('station', s), ('slot', k), ('reject', 0) or ('out', 0); None when the code is no location."""
    code = int(code)
    if STATION_BASE <= code < STATION_BASE + n_stations:
        return "station", code - STATION_BASE
    if SLOT_BASE <= code < SLOT_BASE + n_slots:
        return "slot", code - SLOT_BASE
    if code == REJECT_LANE:
        return "reject", 0
    if code == OUT_LANE:
        return "out", 0
    return None


def describe_location(code: int) -> str:
    code = int(code)
    if code == REJECT_LANE:
        return "reject lane"
    if code == OUT_LANE:
        return "out lane"
    if code >= SLOT_BASE:
        return f"slot {code - SLOT_BASE}"
    return f"station {code - STATION_BASE}"


class RobotState(enum.IntEnum):
    IDLE = 0
    ACKNOWLEDGED = 1
    IN_MOTION = 2
    DONE = 3
    FAULT = 4


class RobotFault(enum.IntEnum):
    NONE = 0
    BAD_LOCATION = 1
    PICK_MISMATCH = 2  # the pick place is empty or holds another battery
    PLACE_OCCUPIED = 3
    STATION_NOT_SAFE = 4  # permit on with current, or current measured
    PART_DROPPED = 5  # the gripper lost it
    DRIVE_FAULT = 6  # mid-move

    @property
    def text(self) -> str:
        return FAULT_TEXT[self]


FAULT_TEXT = {
    RobotFault.NONE: "no fault", RobotFault.BAD_LOCATION: "bad location code",
    RobotFault.PICK_MISMATCH: "pick place empty or battery id mismatch",
    RobotFault.PLACE_OCCUPIED: "place occupied", RobotFault.STATION_NOT_SAFE: "station not safe (current)",
    RobotFault.PART_DROPPED: "part dropped (gripper lost it)", RobotFault.DRIVE_FAULT: "drive fault mid-move",
}


def fault_text(code: int) -> str:
    try:
        return RobotFault(int(code)).text
    except ValueError:
        return f"unknown robot fault {code}"


@dataclass(frozen=True)
class HandshakeTimeouts:
    """The line file's `placement:` timing (supervisor seconds)."""

    ack_timeout_s: float = 2.0
    motion_timeout_s: float = 30.0
    retries: int = 1
    reset_timeout_s: float = 10.0  # the robot back to idle after a reset; else reset again
    min_scans: int = 2  # a step times out only after this many scans have read the robot since it began

    def __post_init__(self) -> None:
        for name in ("ack_timeout_s", "motion_timeout_s", "reset_timeout_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"robot {name} must be a finite number > 0, got {v}")
        if not 0 <= self.retries <= 10:
            raise ValueError(f"robot retries must be in 0..10, got {self.retries}")
        if not 1 <= self.min_scans <= 100:
            raise ValueError(f"robot min_scans must be in 1..100, got {self.min_scans}")


@dataclass(frozen=True)
class RobotTags:
    """One scan's robot tags, as read (the order and reset counters read back too)."""

    ack_seq: int
    done_seq: int
    state: int
    fault_code: int
    holding_id: int
    order_seq: int
    reset_seq: int

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RobotTags | None:
        """From tag values by name (scalars); None when one is missing or not a finite number."""
        out = {}
        for field_name, tag in (("ack_seq", "robot_ack_seq"), ("done_seq", "robot_done_seq"),
                                ("state", "robot_state"), ("fault_code", "robot_fault_code"),
                                ("holding_id", "robot_holding_id"), ("order_seq", "robot_order_seq"),
                                ("reset_seq", "robot_reset_seq")):
            try:
                v = float(values[tag])
            except (KeyError, TypeError, ValueError):
                return None
            if not math.isfinite(v):
                return None
            out[field_name] = int(v)
        return cls(**out)


@dataclass(frozen=True)
class Move:
    pick: int
    place: int
    battery_id: int

    def describe(self) -> str:
        return f"battery {self.battery_id}: {describe_location(self.pick)} -> {describe_location(self.place)}"


class Phase(enum.Enum):
    IDLE = "idle"
    ORDERED = "ordered"
    MOVING = "moving"
    RESETTING = "resetting"


class Outcome(enum.Enum):
    DONE = "done"
    FAULT = "fault"
    ACK_TIMEOUT = "ack_timeout"
    MOTION_TIMEOUT = "motion_timeout"


@dataclass(frozen=True)
class Attempt:
    """One order of a move: its seq, the times (supervisor clock) and how it ended."""

    seq: int
    ordered_s: float
    acked_s: float | None = None
    done_s: float | None = None
    outcome: str | None = None
    fault_code: int = 0
    holding_id: int = NO_BATTERY  # what the gripper held when it ended

    def reason(self, timeouts: HandshakeTimeouts) -> str:
        if self.outcome == Outcome.ACK_TIMEOUT.value:
            return f"no acknowledge within {timeouts.ack_timeout_s:g} s (order {self.seq})"
        if self.outcome == Outcome.MOTION_TIMEOUT.value:
            return f"not done within {timeouts.motion_timeout_s:g} s of the acknowledge (order {self.seq})"
        if self.outcome == Outcome.FAULT.value:
            return f"robot fault {self.fault_code}: {fault_text(self.fault_code)} (order {self.seq})"
        return ""


@dataclass(frozen=True)
class MoveResult:
    """A move that ended: `ok` (the part is at its place) or not, with every attempt."""

    move: Move
    ok: bool
    attempts: tuple[Attempt, ...]
    reason: str = ""

    @property
    def ordered_s(self) -> float:
        return self.attempts[0].ordered_s

    @property
    def acked_s(self) -> float | None:
        return self.attempts[-1].acked_s

    @property
    def done_s(self) -> float | None:
        return self.attempts[-1].done_s

    @property
    def fault_code(self) -> int:
        return self.attempts[-1].fault_code

    def to_dict(self) -> dict:
        return {"pick": self.move.pick, "place": self.move.place, "battery_id": self.move.battery_id,
                "ok": self.ok, "reason": self.reason, "ordered_s": self.ordered_s, "acked_s": self.acked_s,
                "done_s": self.done_s, "attempts": [asdict(a) for a in self.attempts]}


class HandshakeBusy(RuntimeError):
    """start() while a move is open: never two orders at once."""


@dataclass
class _Snapshot:
    phase: str = Phase.IDLE.value
    move: dict | None = None
    seq: int | None = None
    reset_seq: int | None = None
    attempts: list = field(default_factory=list)
    reset_started_s: float | None = None


class RobotHandshake:
    """The supervisor's side of one robot's handshake (module docstring)."""

    def __init__(self, timeouts: HandshakeTimeouts = HandshakeTimeouts(), snapshot: Mapping | None = None):
        self.timeouts = timeouts
        snap = _Snapshot(**dict(snapshot)) if snapshot else _Snapshot()
        self.phase = Phase(snap.phase)
        self.move = Move(**snap.move) if snap.move else None
        self.seq, self.reset_seq = snap.seq, snap.reset_seq
        self.attempts = [Attempt(**a) for a in snap.attempts]
        self.reset_started_s = snap.reset_started_s
        self.resets = 0
        self.scans = 0  # scans that read the robot since the current step began (not kept: a restart waits anew)

    @property
    def busy(self) -> bool:
        return self.phase is not Phase.IDLE

    @property
    def ready(self) -> bool:
        """A move may start (idle, and the sequence numbers known from the tags)."""
        return self.phase is Phase.IDLE and self.seq is not None and self.reset_seq is not None

    def snapshot(self) -> dict:
        return asdict(_Snapshot(self.phase.value, asdict(self.move) if self.move else None, self.seq,
                                self.reset_seq, [asdict(a) for a in self.attempts], self.reset_started_s))

    def writes(self) -> dict[str, int]:
        """The robot tags to write this scan; {} until the counters are known (never a blind write)."""
        if self.seq is None or self.reset_seq is None:
            return {}
        m = self.move  # the order's fields before its seq: a PLC that sees the new seq sees them too
        return {"robot_order_pick": m.pick if m else -1, "robot_order_place": m.place if m else -1,
                "robot_order_battery_id": m.battery_id if m else NO_BATTERY, "robot_order_seq": self.seq,
                "robot_reset_seq": self.reset_seq}

    def start(self, move: Move, now_s: float) -> None:
        """Order `move` (written by the next `writes()`). HandshakeBusy while one is open."""
        if not self.ready:
            raise HandshakeBusy(f"the robot handshake is {self.phase.value}: {self.move.describe() if self.move else ''}")
        self.move, self.attempts = move, []
        self._order(now_s)

    def _order(self, now_s: float) -> None:
        self.seq = (self.seq or 0) % 2_147_483_647 + 1
        self.attempts.append(Attempt(self.seq, now_s))
        self.phase, self.scans = Phase.ORDERED, 0

    def _end_attempt(self, now_s: float, outcome: Outcome, tags: RobotTags) -> None:
        self.attempts[-1] = replace(self.attempts[-1], done_s=now_s, outcome=outcome.value,
                                    fault_code=tags.fault_code if outcome is Outcome.FAULT else 0,
                                    holding_id=tags.holding_id)

    def _reset(self, now_s: float) -> None:
        self.reset_seq = (self.reset_seq or 0) % 2_147_483_647 + 1
        self.reset_started_s = now_s
        self.resets += 1
        self.phase, self.scans = Phase.RESETTING, 0

    def scan(self, tags: RobotTags | None, now_s: float, part_at_pick: bool = False) -> MoveResult | None:
        """Feed one scan's tags (None: not readable) at `now_s`; `part_at_pick`: the move's battery
        is still where the move picks it (a retry is possible). Returns the result of a move that
        ended at this scan."""
        if tags is None:
            return None
        self.scans += 1
        late = self.scans >= self.timeouts.min_scans  # a slow scan alone never times a step out
        if self.seq is None:  # a fresh machine: adopt what the tags carry
            self.seq = tags.order_seq
        if self.reset_seq is None:
            self.reset_seq = tags.reset_seq
        if self.phase is Phase.IDLE:
            if tags.done_seq != self.seq or tags.state == RobotState.FAULT:
                self._reset(now_s)  # an order we do not track is open, or a fault stands: clear it
            return None
        attempt = self.attempts[-1] if self.attempts else None
        if self.phase in (Phase.ORDERED, Phase.MOVING):
            if tags.done_seq == self.seq:
                if self.phase is Phase.ORDERED or attempt.acked_s is None:
                    self.attempts[-1] = replace(attempt, acked_s=now_s)
                if tags.state == RobotState.FAULT or tags.fault_code != RobotFault.NONE:
                    self._end_attempt(now_s, Outcome.FAULT, tags)
                    self._reset(now_s)
                    return None
                self._end_attempt(now_s, Outcome.DONE, tags)
                return self._finish(ok=True)
            if self.phase is Phase.ORDERED:
                if tags.ack_seq == self.seq:
                    self.attempts[-1] = replace(attempt, acked_s=now_s)
                    self.phase, self.scans = Phase.MOVING, 0
                elif late and now_s - attempt.ordered_s > self.timeouts.ack_timeout_s:
                    self._end_attempt(now_s, Outcome.ACK_TIMEOUT, tags)
                    self._reset(now_s)
            elif late and now_s - attempt.acked_s > self.timeouts.motion_timeout_s:
                self._end_attempt(now_s, Outcome.MOTION_TIMEOUT, tags)
                self._reset(now_s)
            return None
        # RESETTING
        if tags.state == RobotState.IDLE and tags.done_seq == self.seq and tags.fault_code == RobotFault.NONE:
            self.reset_started_s = None
            if self.move is None:
                self.phase = Phase.IDLE
                return None
            if part_at_pick and len(self.attempts) <= self.timeouts.retries:
                self._order(now_s)  # the same move again, a new order
                return None
            return self._finish(ok=False)
        if late and now_s - (self.reset_started_s if self.reset_started_s is not None else now_s) > self.timeouts.reset_timeout_s:
            self._reset(now_s)  # the robot did not come back: ask again
        return None

    def _finish(self, ok: bool) -> MoveResult:
        failed = [a.reason(self.timeouts) for a in self.attempts if a.outcome != Outcome.DONE.value]
        reason = "" if ok else "; ".join(failed)
        result = MoveResult(self.move, ok, tuple(self.attempts), reason)
        self.phase, self.move, self.attempts = Phase.IDLE, None, []
        return result

"""The flow's robot cell: what the inbox slots hold, what vision says of each, and the one robot.

Owns `RobotCell`: each scan it reads the slots' frames (edge/placement/vision.py: fresh frames
only, `vision_frames` refused in a row refuse the battery) and feeds the robot handshake
(edge/placement/robot.py) the robot's tags; it keeps the handshake's snapshot in the store
(events `robot_handshake`, written before the tags that act on it) and every finished move
(events `robot_move`: pick, place, battery, ordered/acked/done times, attempts, reason: the
demo's Gantt reads them), and the batteries refused (events `battery_refused`, with the reason and
the vision figures), so that a restarted supervisor resumes the open move and remembers its
refusals. The flow (flow.py) decides which move comes next. Tests: tests/edge/supervisor/test_flow.py.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from edge.placement.robot import (NO_BATTERY, Move, MoveResult, RobotHandshake, RobotTags, location_kind)
from edge.placement.vision import FrameWatch, SlotFrame, VisionVerdict, check_frame
from edge.supervisor.line import Placement
from edge.supervisor.store import Store

log = logging.getLogger(__name__)


@dataclass
class SlotView:
    """One slot this scan: its battery (NO_BATTERY: empty) and the verdict of its frame."""

    slot: int
    battery_id: int
    verdict: VisionVerdict


class RobotCell:
    def __init__(self, placement: Placement, n_stations: int, store: Store):
        self.placement, self.n_stations, self.store = placement, n_stations, store
        self.rules = placement.vision_rules()
        self.watch = FrameWatch(placement.slots)
        snapshot, self.refused = None, {}
        for e in store.events():
            if e.kind == "robot_handshake":
                snapshot = e.data
            elif e.kind == "battery_refused":
                self.refused[e.battery_id] = e.data
        self.handshake = RobotHandshake(placement.timeouts(), snapshot)
        self._saved = self.handshake.snapshot()
        self._streak: dict[int, tuple[int, int, int]] = {}  # slot -> (battery, last frame counted, refusals)
        self.slots: list[SlotView] = []
        self.frames_refused = 0  # fresh frames refused since this engine started (a figure for the bench)

    # -- vision ------------------------------------------------------------------------------------
    def look(self, values: dict, now_s: float) -> list[SlotView]:
        """This scan's slots; counts refused fresh frames per battery (a new frame counts once)."""
        self.slots = []
        for k in range(self.placement.slots):
            frame = SlotFrame.from_tags(values, k)
            age = self.watch.update(k, frame.frame, now_s)
            verdict = check_frame(frame, age, self.rules)
            self.slots.append(SlotView(k, frame.battery_id, verdict))
            battery, counted, refusals = self._streak.get(k, (NO_BATTERY, -1, 0))
            if frame.battery_id != battery:
                battery, counted, refusals = frame.battery_id, -1, 0
            if frame.battery_id != NO_BATTERY and math.isfinite(age) and age <= self.rules.max_frame_age_s \
                    and frame.frame != counted:
                refusals = 0 if verdict.ok else refusals + 1
                self.frames_refused += not verdict.ok
                counted = frame.frame
            self._streak[k] = (battery, counted, refusals)
        return self.slots

    def vision_refused(self, slot: int) -> bool:
        """The battery in `slot` had `vision_frames` fresh frames refused in a row."""
        return self._streak.get(slot, (NO_BATTERY, -1, 0))[2] >= self.placement.vision_frames

    def slot_of(self, plc_id: int) -> int | None:
        return next((v.slot for v in self.slots if v.battery_id == plc_id), None)

    def refuse(self, cell: str, reason: str, verdict: VisionVerdict | None, station: int | None = None) -> None:
        """Remember (in the store first) that `cell` goes to the reject lane, and why."""
        data = {"reason": reason, "vision": verdict.to_dict() if verdict is not None else None}
        self.store.add_event("battery_refused", f"battery {cell}: {reason}", station=station, battery_id=cell,
                             data=data)
        self.refused[cell] = data
        log.warning("battery %s refused: %s", cell, reason)

    # -- the robot ---------------------------------------------------------------------------------
    def part_at_pick(self, values: dict) -> bool:
        """The open move's battery is still where it is picked (a retry may go again)."""
        move = self.handshake.move
        if move is None:
            return False
        kind = location_kind(move.pick, self.n_stations, self.placement.slots)
        if kind is None:
            return False
        if kind[0] == "slot":
            ids = values.get("vision_battery_id")
        else:
            ids = values.get("station_loaded_id")
        try:
            held = float(np.asarray(ids, float)[kind[1]])
        except (TypeError, IndexError, ValueError):
            return False
        return math.isfinite(held) and int(held) == move.battery_id

    def scan_robot(self, values: dict, now_s: float) -> MoveResult | None:
        tags = RobotTags.from_values({k: _scalar(values.get(k)) for k in (
            "robot_ack_seq", "robot_done_seq", "robot_state", "robot_fault_code", "robot_holding_id",
            "robot_order_seq", "robot_reset_seq")})
        result = self.handshake.scan(tags, now_s, self.part_at_pick(values))
        if result is not None:
            kind = "done" if result.ok else "failed"
            self.store.add_event("robot_move", f"robot: {result.move.describe()}: {kind}"
                                 + (f" ({result.reason})" if result.reason else ""),
                                 battery_id=None, data=result.to_dict())
        self.save()
        return result

    def start(self, move: Move, now_s: float) -> None:
        self.handshake.start(move, now_s)
        self.save()
        log.info("robot: order %d: %s", self.handshake.seq, move.describe())

    def save(self) -> None:
        """The handshake's state into the store when it changed (before the tags are written)."""
        snap = self.handshake.snapshot()
        if snap != self._saved:
            self.store.add_event("robot_handshake", f"robot handshake {snap['phase']} (order {snap['seq']})",
                                 data=snap)
            self._saved = snap

    def writes(self) -> dict:
        return self.handshake.writes()


def _scalar(value):
    if value is None:
        return None
    a = np.atleast_1d(np.asarray(value, float))
    return float(a[0]) if a.size else None

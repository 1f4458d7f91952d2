"""The bench's robot cell (S13): the inbox slots fed from the batch behind the robot, their camera,
and the places the robot reaches.

Owns `CameraConfig`, `InboxCamera` (the slots and the vision_* tags: a frame per slot every
`frame_period_s` of plant time, seeded noise on the terminal positions and the confidence, each
battery seated a little off the fixture's expected position, reversed batteries and
low-confidence ones from the scenario's faults) and `BenchWorld` (slots, stations through the
plant, the reject and out lanes, the parts lost: the bench's truth of who is where; the robot of
edge/batterymodel/plc.py `PlcRobot` moves through it). Tests: tests/tools/hil/test_bench_robot.py.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from edge.batterymodel.plc import RobotMishap
from edge.placement.robot import NO_BATTERY, location_kind
from tools.hil.faults import LowConfidence, PlacementFault, ReversedBattery, RobotMishapFault

log = logging.getLogger(__name__)

SLOTS = 4


@dataclass(frozen=True)
class CameraConfig:
    """The bench camera. Positions in the gripper's frame of the slot, mm; times plant seconds."""

    frame_period_s: float = 0.5
    noise_mm: float = 0.3  # per frame and coordinate (sd)
    seat_sd_mm: float = 0.5  # how far off each battery sits, fixed per battery (sd per coordinate)
    confidence_pct: float = 95.0
    confidence_sd_pct: float = 1.5
    positive_mm: tuple[float, float] = (-40.0, 0.0)
    negative_mm: tuple[float, float] = (40.0, 0.0)
    feed_s: float = 1.0  # a slot emptied by the robot gets the next battery of the batch after this
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("frame_period_s", "feed_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"camera {name} must be > 0, got {getattr(self, name)}")
        for name in ("noise_mm", "seat_sd_mm", "confidence_sd_pct"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"camera {name} must be >= 0, got {getattr(self, name)}")


class InboxCamera:
    """The inbox slots and their camera (module docstring); `step(dt_s)` once a plant step."""

    def __init__(self, feed: Iterable[int], n_slots: int = SLOTS, cfg: CameraConfig = CameraConfig(),
                 faults: Iterable[PlacementFault] = ()):
        self.cfg, self.n_slots = cfg, n_slots
        self.feed = deque(int(b) for b in feed)
        self.slot_id = np.full(n_slots, NO_BATTERY, np.int64)
        self.frame = np.zeros(n_slots, np.int64)
        self.polarity = np.zeros(n_slots, np.int64)
        self.confidence_pct = np.zeros(n_slots)
        self.x_mm = np.zeros(2 * n_slots)
        self.y_mm = np.zeros(2 * n_slots)
        self._to_frame_s = np.full(n_slots, cfg.frame_period_s)
        self._to_feed_s = np.zeros(n_slots)  # 0: fill at the next step
        self._rng = np.random.default_rng(cfg.seed)
        faults = tuple(faults)
        self.reversed = {f.battery_id for f in faults if isinstance(f, ReversedBattery)}
        self.low_confidence = {f.battery_id: f.confidence_pct for f in faults if isinstance(f, LowConfidence)}
        self.fed: list[int] = []  # every battery put into a slot, in order

    def seat_mm(self, battery_id: int) -> np.ndarray:
        """How far off its expected position battery `battery_id` sits (x, y), fixed per battery."""
        return np.random.default_rng([self.cfg.seed, int(battery_id) & 0x7FFFFFFF]).normal(0.0, self.cfg.seat_sd_mm, 2)

    def step(self, dt_s: float) -> None:
        for k in range(self.n_slots):
            if self.slot_id[k] == NO_BATTERY and self.feed:
                self._to_feed_s[k] -= dt_s
                if self._to_feed_s[k] <= 1e-9:
                    self.slot_id[k] = self.feed.popleft()
                    self.fed.append(int(self.slot_id[k]))
                    self._to_frame_s[k] = 0.0  # the camera sees a new part at once
            self._to_frame_s[k] -= dt_s
            if self._to_frame_s[k] <= 1e-9:
                self._to_frame_s[k] += self.cfg.frame_period_s
                self._shoot(k)

    def _shoot(self, k: int) -> None:
        cfg, b = self.cfg, int(self.slot_id[k])
        self.frame[k] = (self.frame[k] + 1) % 2_147_483_647
        if b == NO_BATTERY:
            self.polarity[k], self.confidence_pct[k] = 0, 0.0
            self.x_mm[2 * k:2 * k + 2] = self.y_mm[2 * k:2 * k + 2] = 0.0
            return
        pos, neg = np.array(cfg.positive_mm, float), np.array(cfg.negative_mm, float)
        if b in self.reversed:
            pos, neg = neg, pos
        seat = self.seat_mm(b)
        noise = self._rng.normal(0.0, cfg.noise_mm, (2, 2))
        (px, py), (nx, ny) = pos + seat + noise[0], neg + seat + noise[1]
        self.x_mm[2 * k], self.y_mm[2 * k], self.x_mm[2 * k + 1], self.y_mm[2 * k + 1] = px, py, nx, ny
        self.polarity[k] = -1 if b in self.reversed else 1
        base = self.low_confidence.get(b, cfg.confidence_pct)
        self.confidence_pct[k] = float(np.clip(base + self._rng.normal(0.0, cfg.confidence_sd_pct), 0.0, 100.0))

    def take(self, slot: int) -> int:
        b, self.slot_id[slot] = int(self.slot_id[slot]), NO_BATTERY
        self._to_feed_s[slot] = self.cfg.feed_s
        return b

    def tags(self) -> dict:
        return {"vision_battery_id": tuple(int(v) for v in self.slot_id),
                "vision_frame": tuple(int(v) for v in self.frame),
                "vision_polarity": tuple(int(v) for v in self.polarity),
                "vision_confidence_pct": tuple(float(v) for v in self.confidence_pct),
                "vision_terminal_x_mm": tuple(float(v) for v in self.x_mm),
                "vision_terminal_y_mm": tuple(float(v) for v in self.y_mm)}


class BenchWorld:
    """Who is where on the bench (the robot's `RobotWorld`): slots (the camera's), stations (the
    plant: `load(station, battery_id)`, `unload(station)`), the lanes and the parts lost."""

    def __init__(self, camera: InboxCamera, loaded_ids, load: Callable[[int, int], None],
                 unload: Callable[[int], None], clock: Callable[[], float] = lambda: 0.0):
        self.camera = camera
        self.loaded_id = np.array(loaded_ids, dtype=np.int64)
        self._load, self._unload, self._clock = load, unload, clock
        self.reject_lane: list[int] = []
        self.out_lane: list[int] = []
        self.placed: list[tuple[float, int, int]] = []  # (plant s, station, battery) every placement

    def _where(self, location: int):
        return location_kind(location, self.loaded_id.size, self.camera.n_slots)

    def holds(self, location: int) -> int:
        kind = self._where(location)
        if kind is None or kind[0] in ("reject", "out"):
            return NO_BATTERY
        return int(self.camera.slot_id[kind[1]] if kind[0] == "slot" else self.loaded_id[kind[1]])

    def take(self, location: int) -> int:
        kind, index = self._where(location)
        if kind == "slot":
            return self.camera.take(index)
        b, self.loaded_id[index] = int(self.loaded_id[index]), NO_BATTERY
        self._unload(index)
        return b

    def put(self, location: int, battery_id: int) -> None:
        kind, index = self._where(location)
        if kind == "reject":
            self.reject_lane.append(int(battery_id))
        elif kind == "out":
            self.out_lane.append(int(battery_id))
        elif kind == "station":
            self.loaded_id[index] = battery_id
            self._load(index, int(battery_id))
            self.placed.append((self._clock(), index, int(battery_id)))
        else:
            raise ValueError(f"the robot cannot put a part at location {location}")


def mishaps_from(faults: Iterable[PlacementFault]) -> Callable[[int, int], tuple[RobotMishap, float]]:
    """The robot's `mishap_of(battery_id, n)` for the scenario's RobotMishapFaults."""
    table = {f.battery_id: f for f in faults if isinstance(f, RobotMishapFault)}

    def mishap_of(battery_id: int, n: int) -> tuple[RobotMishap, float]:
        f = table.get(int(battery_id))
        if f is None or n > f.orders:
            return RobotMishap.NONE, 0.0
        return RobotMishap(f.mishap), f.at_frac

    return mishap_of


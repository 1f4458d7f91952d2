"""Vision through tags: one inbox slot's frame and the plausibility checks before anything moves.

Owns `VisionRules` (what the fixture expects: terminal positions, tolerance, confidence, frame
age), `SlotFrame` (one slot's frame as read from the vision_* roles' tags, keyed by role name,
contract S13.md section 1),
`FrameWatch` (when each slot's frame counter last moved: a fresh frame is one the supervisor saw
arrive), `check_frame` and the typed `VisionVerdict` it returns: every figure (polarity,
confidence, each terminal's offset from where the fixture expects it, the frame's age) and, when
refused, the first failing check as `reason` with every failing check in `failures`.

A battery is moved only on a verdict with `ok`: polarity as expected (+1), both terminals within
`tolerance_mm` of their expected positions, confidence >= `min_confidence_pct`, and a frame
that arrived no more than `max_frame_age_s` ago. Tests: tests/edge/placement/test_vision.py.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from edge.placement.robot import NO_BATTERY

VISION_TAGS = ("vision_battery_id", "vision_frame", "vision_polarity", "vision_confidence_pct",
               "vision_terminal_x_mm", "vision_terminal_y_mm")
"""Written by the PLC (its camera), read by the supervisor; per slot (the terminals 2 per slot)."""
POSITIVE, NEGATIVE = 0, 1
"""Terminal t of slot k is element 2k + t of vision_terminal_x_mm / _y_mm."""


class Refusal(enum.Enum):
    """Why a frame does not let its battery move, in the order they are checked."""

    EMPTY = "empty slot"
    STALE = "no fresh frame"
    POLARITY = "polarity not as the fixture expects"
    LOW_CONFIDENCE = "confidence below the minimum"
    TERMINAL_OFFSET = "terminal outside the fixture's tolerance"
    NOT_FINITE = "a figure that is not a finite number"


@dataclass(frozen=True)
class VisionRules:
    """What the fixture expects of a battery in a slot (the line file's `placement:`)."""

    positive_mm: tuple[float, float] = (-40.0, 0.0)
    negative_mm: tuple[float, float] = (40.0, 0.0)
    tolerance_mm: float = 3.0
    min_confidence_pct: float = 80.0
    max_frame_age_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("tolerance_mm", "max_frame_age_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"vision {name} must be a finite number > 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_confidence_pct <= 100.0:
            raise ValueError(f"vision min_confidence_pct must be in 0..100, got {self.min_confidence_pct}")


@dataclass(frozen=True)
class SlotFrame:
    """One slot's frame as the camera reports it."""

    slot: int
    battery_id: int
    frame: int
    polarity: int
    confidence_pct: float
    positive_mm: tuple[float, float]
    negative_mm: tuple[float, float]

    @classmethod
    def from_tags(cls, values: Mapping[str, Sequence[float]], slot: int) -> SlotFrame:
        """Slot `slot`'s frame from the vision_* tag values (arrays, as read); a value that is
        missing or not finite reads as NaN (refused as NOT_FINITE), an id as NO_BATTERY."""

        def at(name: str, i: int) -> float:
            try:
                v = float(values[name][i])
            except (KeyError, IndexError, TypeError, ValueError):
                return math.nan
            return v

        def whole(name: str, missing: int) -> int:
            v = at(name, slot)
            return int(v) if math.isfinite(v) else missing

        x, y = "vision_terminal_x_mm", "vision_terminal_y_mm"
        return cls(slot, whole("vision_battery_id", NO_BATTERY), whole("vision_frame", -1),
                   whole("vision_polarity", 0), at("vision_confidence_pct", slot),
                   (at(x, 2 * slot + POSITIVE), at(y, 2 * slot + POSITIVE)),
                   (at(x, 2 * slot + NEGATIVE), at(y, 2 * slot + NEGATIVE)))


@dataclass(frozen=True)
class VisionVerdict:
    """The checks of one frame, with every figure; `reason` is '' when `ok`."""

    ok: bool
    reason: str
    failures: tuple[str, ...]
    slot: int
    battery_id: int
    frame: int
    frame_age_s: float
    polarity: int
    confidence_pct: float
    positive_mm: tuple[float, float]
    negative_mm: tuple[float, float]
    positive_offset_mm: float
    negative_offset_mm: float
    tolerance_mm: float
    min_confidence_pct: float

    def to_dict(self) -> dict:
        """JSON-ready (NaN and infinity as None: the store refuses them)."""

        def clean(v):
            if isinstance(v, float):
                return round(v, 4) if math.isfinite(v) else None
            if isinstance(v, (tuple, list)):
                return [clean(x) for x in v]
            return v

        return {k: clean(v) for k, v in asdict(self).items()}


class FrameWatch:
    """When each slot's frame counter last moved, on the supervisor's clock.

    A counter seen for the first time (a supervisor just started) is not a fresh frame: the
    supervisor did not see it arrive. Its age is infinite until the counter moves."""

    def __init__(self, n_slots: int):
        self._last: list[int | None] = [None] * n_slots
        self._moved_at: list[float] = [math.inf] * n_slots

    def update(self, slot: int, frame: int, now_s: float) -> float:
        """Feed slot `slot`'s counter at `now_s`; returns its frame's age in seconds (inf: unknown)."""
        if self._last[slot] is not None and frame != self._last[slot]:
            self._moved_at[slot] = now_s
        self._last[slot] = frame
        return now_s - self._moved_at[slot] if math.isfinite(self._moved_at[slot]) else math.inf


def _offset(seen: tuple[float, float], expected: tuple[float, float]) -> float:
    return math.hypot(seen[0] - expected[0], seen[1] - expected[1])


def check_frame(frame: SlotFrame, frame_age_s: float, rules: VisionRules) -> VisionVerdict:
    """The plausibility checks of one slot's frame (module docstring)."""
    pos_off = _offset(frame.positive_mm, rules.positive_mm)
    neg_off = _offset(frame.negative_mm, rules.negative_mm)
    failures: list[str] = []
    if frame.battery_id == NO_BATTERY:
        failures.append(Refusal.EMPTY.value)
    if not frame_age_s <= rules.max_frame_age_s:
        age = "never seen to arrive" if not math.isfinite(frame_age_s) else f"{frame_age_s:.2f} s old"
        failures.append(f"{Refusal.STALE.value}: frame {frame.frame} {age} (max {rules.max_frame_age_s:g} s)")
    if frame.polarity != 1:
        seen = {-1: "reversed", 0: "not seen"}.get(frame.polarity, str(frame.polarity))
        failures.append(f"{Refusal.POLARITY.value}: {seen} (polarity {frame.polarity}, expected +1)")
    if not math.isfinite(frame.confidence_pct):
        failures.append(f"{Refusal.NOT_FINITE.value}: confidence {frame.confidence_pct}")
    elif frame.confidence_pct < rules.min_confidence_pct:
        failures.append(f"{Refusal.LOW_CONFIDENCE.value}: {frame.confidence_pct:.1f} % "
                        f"(min {rules.min_confidence_pct:g} %)")
    for name, off, seen in (("positive", pos_off, frame.positive_mm), ("negative", neg_off, frame.negative_mm)):
        if not math.isfinite(off):
            failures.append(f"{Refusal.NOT_FINITE.value}: {name} terminal at {seen}")
        elif off > rules.tolerance_mm:
            failures.append(f"{Refusal.TERMINAL_OFFSET.value}: {name} terminal {off:.2f} mm from its "
                            f"expected position (tolerance {rules.tolerance_mm:g} mm)")
    return VisionVerdict(
        ok=not failures, reason=failures[0] if failures else "", failures=tuple(failures), slot=frame.slot,
        battery_id=frame.battery_id, frame=frame.frame, frame_age_s=frame_age_s, polarity=frame.polarity,
        confidence_pct=frame.confidence_pct, positive_mm=frame.positive_mm, negative_mm=frame.negative_mm,
        positive_offset_mm=pos_off, negative_offset_mm=neg_off, tolerance_mm=rules.tolerance_mm,
        min_confidence_pct=rules.min_confidence_pct)

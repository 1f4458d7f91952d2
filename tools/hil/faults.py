"""Fault models of the plant: physics faults (internal short, weak cell) and sensor faults.

Owns the fault descriptions and how they act (tests: tests/tools/hil/test_hil_plant.py):

* `InternalShort`: a resistance across one cell from `onset_s`; it drains that cell and heats it
  by V²/R (the hot-cell scenario).
* `BatteryShort`: the same short in one battery (by cell_id), on whichever station holds it,
  from `onset_s` after it was loaded (a batch whose batteries come and go through the robot).
* `WeakCell`: one cell with a capacity factor < 1 and a resistance factor > 1 from the start.
* Placement faults (S13, the bench's camera and robot, by battery id): `ReversedBattery` (seen
  with polarity -1, its terminals at the other ends), `LowConfidence` (every frame of it at that
  confidence), `RobotMishapFault` (on that battery's first `orders` orders the robot never
  acknowledges, never finishes, drops the part, or has a drive fault at `at_frac` of its cycle).
* `SensorFault`: acts on the observation only, never on the physics: a marker reading that is
  stuck at its value at onset, NaN, or a fixed out-of-range value, from `onset_s` for
  `duration_s` (None = for good).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class SensorFaultMode(enum.Enum):
    STUCK = "stuck"
    NAN = "nan"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True)
class InternalShort:
    module: int
    cell: int
    r_short_ohm: float
    onset_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.r_short_ohm > 0:
            raise ValueError(f"internal_short.r_short_ohm must be > 0, got {self.r_short_ohm}")
        if self.onset_s < 0:
            raise ValueError(f"internal_short.onset_s must be >= 0, got {self.onset_s}")


@dataclass(frozen=True)
class BatteryShort:
    battery_id: int
    cell: int
    r_short_ohm: float
    onset_s: float = 0.0  # after the battery is loaded

    def __post_init__(self) -> None:
        if not self.r_short_ohm > 0:
            raise ValueError(f"battery_short.r_short_ohm must be > 0, got {self.r_short_ohm}")
        if self.onset_s < 0:
            raise ValueError(f"battery_short.onset_s must be >= 0, got {self.onset_s}")


@dataclass(frozen=True)
class WeakCell:
    module: int
    cell: int
    cap_factor: float = 0.7
    r_factor: float = 1.8

    def __post_init__(self) -> None:
        if not 0.1 <= self.cap_factor <= 1.0:
            raise ValueError(f"weak_cell.cap_factor must be in [0.1, 1], got {self.cap_factor}")
        if not self.r_factor >= 1.0:
            raise ValueError(f"weak_cell.r_factor must be >= 1, got {self.r_factor}")


@dataclass(frozen=True)
class SensorFault:
    module: int
    marker: int
    mode: SensorFaultMode
    onset_s: float = 0.0
    duration_s: float | None = None
    value_degc: float = 250.0
    """The reading while OUT_OF_RANGE."""

    def active(self, t_s: float) -> bool:
        if t_s < self.onset_s:
            return False
        return self.duration_s is None or t_s < self.onset_s + self.duration_s


@dataclass(frozen=True)
class ReversedBattery:
    battery_id: int


@dataclass(frozen=True)
class LowConfidence:
    battery_id: int
    confidence_pct: float = 55.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence_pct <= 100.0:
            raise ValueError(f"low_confidence.confidence_pct must be in 0..100, got {self.confidence_pct}")


ROBOT_MISHAPS = ("no_ack", "no_finish", "drop", "drive_fault")


@dataclass(frozen=True)
class RobotMishapFault:
    battery_id: int
    mishap: str  # one of ROBOT_MISHAPS (edge.batterymodel.plc.RobotMishap values)
    orders: int = 1  # the battery's first `orders` orders go wrong
    at_frac: float = 0.75  # share of the cycle at which a drop or drive fault happens

    def __post_init__(self) -> None:
        if self.mishap not in ROBOT_MISHAPS:
            raise ValueError(f"robot mishap must be one of {ROBOT_MISHAPS}, got {self.mishap!r}")
        if self.orders < 1:
            raise ValueError(f"robot mishap orders must be >= 1, got {self.orders}")
        if not 0.0 <= self.at_frac <= 1.0:
            raise ValueError(f"robot mishap at_frac must be in 0..1, got {self.at_frac}")


PlacementFault = ReversedBattery | LowConfidence | RobotMishapFault
Fault = InternalShort | BatteryShort | WeakCell | SensorFault


def check_indices(faults: tuple[Fault, ...], n_modules: int, n_cells: int, n_markers: int) -> None:
    """Raise ValueError naming the fault whose module/cell/marker is outside the batch."""
    for k, f in enumerate(faults):
        if isinstance(f, BatteryShort):
            if not 0 <= f.cell < n_cells:
                raise ValueError(f"fault {k} (BatteryShort): cell {f.cell} outside 0..{n_cells - 1}")
            continue
        if not 0 <= f.module < n_modules:
            raise ValueError(f"fault {k} ({type(f).__name__}): module {f.module} outside 0..{n_modules - 1}")
        if isinstance(f, (InternalShort, WeakCell)) and not 0 <= f.cell < n_cells:
            raise ValueError(f"fault {k} ({type(f).__name__}): cell {f.cell} outside 0..{n_cells - 1}")
        if isinstance(f, SensorFault) and not 0 <= f.marker < n_markers:
            raise ValueError(f"fault {k} (SensorFault): marker {f.marker} outside 0..{n_markers - 1}")


class SensorFaultInjector:
    """Applies the sensor faults to marker readings; remembers the value a stuck sensor holds."""

    def __init__(self, faults: tuple[Fault, ...]) -> None:
        self.faults = tuple(f for f in faults if isinstance(f, SensorFault))
        self._held: dict[int, float] = {}

    def latch(self, read_markers, t_s: float) -> None:
        """Hold the reading of each stuck sensor at its onset (`read_markers()` gives them)."""
        pending = [k for k, f in enumerate(self.faults)
                   if f.mode is SensorFaultMode.STUCK and k not in self._held and f.active(t_s)]
        if pending:
            values = read_markers()
            for k in pending:
                self._held[k] = float(values[self.faults[k].module, self.faults[k].marker])

    def apply(self, marker_degc: np.ndarray, t_s: float) -> np.ndarray:
        if not self.faults:
            return marker_degc
        out = marker_degc.copy()
        for k, f in enumerate(self.faults):
            if not f.active(t_s):
                continue
            if f.mode is SensorFaultMode.STUCK:
                held = self._held.setdefault(k, float(marker_degc[f.module, f.marker]))
                out[f.module, f.marker] = held
            elif f.mode is SensorFaultMode.NAN:
                out[f.module, f.marker] = math.nan
            else:
                out[f.module, f.marker] = f.value_degc
        return out

"""The data types the compiled tick and the reference twin share: config, fixture, setpoints,
flags, fault codes, status codes, the diagnostics table and the real-time grant.

Both implementations (`rtcore._tick`, `rtcore.twin`) take and return exactly these types, so a
caller never knows which one runs. Everything is validated here, in Python, before it reaches
the `nogil` tick. The meaning of every field is in rtcore/README.md. Tests: tests/rtcore/.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

MAX_LAGS = 32  # the C state keeps the lag-decay table in a fixed array of this size


class Status(enum.IntEnum):
    """Return codes of the C functions (and of the twin's methods of the same name)."""

    OK = 0
    BAD_FAULT_CODE = 1
    BAD_SETPOINT = 2
    BAD_STATION = 3


class Flag(enum.IntFlag):
    """Bits of `Kernel.flags` after a tick (README.md, "Outputs")."""

    NONE = 0
    RELIEF_ACTIVE = 1 << 0  # some marker has ΔT ≥ threshold: relief and coolant are on
    SAFE_STATE = 1 << 1  # latched: outputs are the safe values until reset()
    DTDT_ALARM = 1 << 2  # GB 38031-2025: dT/dt ≥ 1 °C/s for more than 3 s (confirmed)
    SENSOR_NONFINITE = 1 << 3  # a temperature is NaN/±inf (confirmed after debounce)
    SENSOR_OUT_OF_RANGE = 1 << 4  # a temperature is outside the plausible range (confirmed)
    SENSOR_STUCK = 1 << 5  # a temperature repeated bit for bit too long (confirmed)
    PRESSURE_NONFINITE = 1 << 6  # an applied pressure is NaN/±inf (confirmed)
    LINK_LOST = 1 << 7  # raised by the process (raise_fault)
    OVERRUN_STREAK = 1 << 8  # raised by the process (raise_fault)
    EXCEPTION = 1 << 9  # raised by the process (raise_fault)
    DTDT_PENDING = 1 << 10  # dT/dt ≥ 1 °C/s now, not yet for more than 3 s
    SENSOR_SUSPECT = 1 << 11  # some sensor is bad but not yet confirmed (debouncing)
    OVER_TEMP = 1 << 12  # a valid reading at or above its station's temp limit (confirmed)
    STATION_ISOLATED = 1 << 13  # some station is latched (isolated) until reset()/reset_station()


#: Faults the process may raise through `Kernel.raise_fault(code)`.
EXTERNAL_FAULTS = Flag.LINK_LOST | Flag.OVERRUN_STREAK | Flag.EXCEPTION
#: Conditions that latch when confirmed: the station-local ones isolate their station, the
#: external ones latch the whole line (SAFE_STATE).
LATCHING = (
    Flag.DTDT_ALARM
    | Flag.OVER_TEMP
    | Flag.SENSOR_NONFINITE
    | Flag.SENSOR_OUT_OF_RANGE
    | Flag.SENSOR_STUCK
    | Flag.PRESSURE_NONFINITE
    | EXTERNAL_FAULTS
)
#: Causes that belong to one station (its markers, its zones): they isolate that station only;
#: also the causes `Kernel.isolate_station` accepts.
STATION_FAULTS = LATCHING & ~EXTERNAL_FAULTS


class Severity(enum.Enum):
    WARNING = "warning"  # reported, no reaction
    FAULT = "fault"  # latches: its station (station-local) or the line (external)
    ALARM = "alarm"  # latches its station; a safety standard's hard limit


@dataclass(frozen=True)
class Diagnostic:
    """One row of the diagnostics table: debounce is in ticks (a Config field names it)."""

    flag: Flag
    debounce_field: str | None  # Config field holding the debounce count; None: immediate
    severity: Severity
    reaction: str


DIAGNOSTICS: tuple[Diagnostic, ...] = (
    Diagnostic(Flag.SENSOR_NONFINITE, "nonfinite_debounce_ticks", Severity.FAULT,
               "hold last good value while debouncing; then isolate the marker's station"),
    Diagnostic(Flag.SENSOR_OUT_OF_RANGE, "out_of_range_debounce_ticks", Severity.FAULT,
               "hold last good value while debouncing; then isolate the marker's station"),
    Diagnostic(Flag.SENSOR_STUCK, "stuck_debounce_ticks", Severity.FAULT,
               "isolate the marker's station (a stale sensor cannot see a hot spot)"),
    Diagnostic(Flag.PRESSURE_NONFINITE, "nonfinite_debounce_ticks", Severity.FAULT,
               "hold last good pressure while debouncing; then isolate the zone's station"),
    Diagnostic(Flag.OVER_TEMP, "over_temp_debounce_ticks", Severity.ALARM,
               "isolate the marker's station (its maximum-safety temperature)"),
    Diagnostic(Flag.DTDT_ALARM, "alarm_debounce_ticks", Severity.ALARM,
               "isolate the marker's station (GB 38031-2025 thermal-runaway warning)"),
    Diagnostic(Flag.LINK_LOST, None, Severity.FAULT, "latch the line's safe state at once"),
    Diagnostic(Flag.OVERRUN_STREAK, None, Severity.FAULT, "latch the line's safe state at once"),
    Diagnostic(Flag.EXCEPTION, None, Severity.FAULT, "latch the line's safe state at once"),
)


def _require(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{where}: {message}")


def _check_limits(where: str, theta: float, check_s: float, warning: float, limit: float,
                  config) -> None:
    """The four thresholds of a station (or the line-wide defaults), fields named under `where`."""
    _require(theta > 0, f"{where}.delta_t_threshold_degc", f"must be > 0, got {theta}")
    _require(config.ambient_degc < limit <= config.temp_max_degc, f"{where}.temp_limit_degc",
             f"must be in ({config.ambient_degc}, {config.temp_max_degc}] (above ambient, inside "
             f"the plausible range), got {limit}")
    _require(config.temp_min_degc <= warning < limit, f"{where}.warning_degc",
             f"must be in [{config.temp_min_degc}, temp_limit_degc = {limit}), got {warning}")
    ticks = round(check_s / config.period_s)
    _require(1 <= ticks <= config.history_ticks - 1, f"{where}.check_interval_s",
             f"gives {ticks} ticks; must be in [1, {config.history_ticks - 1}] "
             f"at period {config.period_s} s")


@dataclass(frozen=True)
class Config:
    """Structural settings, fixed for the life of a Kernel."""

    n_markers: int
    n_zones: int
    period_s: float = 0.1
    history_ticks: int = 64
    corr_window_ticks: int = 32
    corr_lags: int = 8
    temp_min_degc: float = -40.0
    temp_max_degc: float = 150.0
    pressure_max_kpa: float = 2000.0
    ambient_degc: float = 25.0
    nonfinite_debounce_ticks: int = 3
    out_of_range_debounce_ticks: int = 5
    over_temp_debounce_ticks: int = 3
    stuck_debounce_ticks: int = 300
    alarm_rate_degc_per_s: float = 1.0
    alarm_hold_s: float = 3.0
    alarm_window_s: float = 1.0

    def __post_init__(self) -> None:
        w = "Config"
        _require(self.n_markers >= 1, f"{w}.n_markers", f"must be >= 1, got {self.n_markers}")
        _require(self.n_zones >= 1, f"{w}.n_zones", f"must be >= 1, got {self.n_zones}")
        _require(math.isfinite(self.period_s) and self.period_s > 0, f"{w}.period_s",
                 f"must be finite and > 0, got {self.period_s}")
        _require(1 <= self.corr_lags <= MAX_LAGS, f"{w}.corr_lags",
                 f"must be in [1, {MAX_LAGS}], got {self.corr_lags}")
        _require(self.corr_window_ticks >= 2, f"{w}.corr_window_ticks",
                 f"must be >= 2, got {self.corr_window_ticks}")
        need = max(self.corr_window_ticks + self.corr_lags, self.alarm_window_ticks + 1, 3)
        _require(self.history_ticks >= need, f"{w}.history_ticks",
                 f"must be >= {need} (corr window + lags, alarm window + 1), got {self.history_ticks}")
        _require(self.temp_min_degc < self.temp_max_degc, f"{w}.temp_min_degc",
                 f"must be < temp_max_degc ({self.temp_max_degc}), got {self.temp_min_degc}")
        _require(self.temp_min_degc <= self.ambient_degc <= self.temp_max_degc, f"{w}.ambient_degc",
                 f"must lie in [temp_min_degc, temp_max_degc], got {self.ambient_degc}")
        _require(math.isfinite(self.pressure_max_kpa) and self.pressure_max_kpa > 0,
                 f"{w}.pressure_max_kpa", f"must be finite and > 0, got {self.pressure_max_kpa}")
        for name in ("nonfinite_debounce_ticks", "out_of_range_debounce_ticks", "stuck_debounce_ticks",
                     "over_temp_debounce_ticks"):
            value = getattr(self, name)
            _require(1 <= value <= 1_000_000, f"{w}.{name}", f"must be in [1, 1e6], got {value}")
        _require(self.alarm_rate_degc_per_s > 0, f"{w}.alarm_rate_degc_per_s",
                 f"must be > 0, got {self.alarm_rate_degc_per_s}")
        _require(self.alarm_hold_s >= 0 and self.alarm_window_s > 0, f"{w}.alarm_hold_s",
                 "alarm_hold_s must be >= 0 and alarm_window_s > 0")

    @property
    def alarm_window_ticks(self) -> int:
        """Ticks over which dT/dt is measured for the GB 38031 rule (1 s at 100 ms: 10)."""
        return max(1, round(self.alarm_window_s / self.period_s))

    @property
    def alarm_debounce_ticks(self) -> int:
        """Consecutive ticks with dT/dt over the limit that make "more than alarm_hold_s"."""
        return math.floor(self.alarm_hold_s / self.period_s + 1e-9) + 1


@dataclass(frozen=True)
class Fixture:
    """Where the marker points are, which pressure zone each belongs to, and which station
    (module) each zone belongs to. Stations are the unit of isolation."""

    marker_xy_mm: np.ndarray  # (N, 2) fixture coordinates
    marker_zone: np.ndarray  # (N,) zone index of each marker, 0..Z-1
    zone_area_mm2: np.ndarray  # (Z,) pressed area of each zone
    zone_station: np.ndarray | None = None  # (Z,) station of each zone, 0..S-1; None: np.arange(Z)

    def __post_init__(self) -> None:
        xy = np.ascontiguousarray(self.marker_xy_mm, dtype=np.float64)
        zone = np.ascontiguousarray(self.marker_zone, dtype=np.int32)
        area = np.ascontiguousarray(self.zone_area_mm2, dtype=np.float64)
        _require(xy.ndim == 2 and xy.shape[1] == 2, "Fixture.marker_xy_mm",
                 f"must have shape (N, 2), got {xy.shape}")
        _require(bool(np.all(np.isfinite(xy))), "Fixture.marker_xy_mm", "must be finite")
        _require(zone.shape == (xy.shape[0],), "Fixture.marker_zone",
                 f"must have shape ({xy.shape[0]},), got {zone.shape}")
        _require(area.ndim == 1 and area.size >= 1, "Fixture.zone_area_mm2",
                 f"must be 1-D and non-empty, got shape {area.shape}")
        _require(bool(np.all(np.isfinite(area) & (area > 0))), "Fixture.zone_area_mm2",
                 "every zone area must be finite and > 0")
        _require(bool(np.all((zone >= 0) & (zone < area.size))), "Fixture.marker_zone",
                 f"every index must lie in [0, {area.size - 1}]")
        if self.zone_station is None:
            station = np.arange(area.size, dtype=np.int32)
        else:
            raw = np.asarray(self.zone_station)
            _require(raw.shape == (area.size,) and raw.dtype.kind in "iu", "Fixture.zone_station",
                     f"must be integers of shape ({area.size},), got {raw.dtype} {raw.shape}")
            station = np.ascontiguousarray(raw, dtype=np.int32)
            _require(bool(np.all(station >= 0)), "Fixture.zone_station", "every index must be >= 0")
            used = np.bincount(station, minlength=int(station.max()) + 1)
            _require(bool(np.all(used > 0)), "Fixture.zone_station",
                     f"stations must be numbered 0..S-1 with a zone each; "
                     f"station(s) {np.flatnonzero(used == 0).tolist()} have none")
        for name, arr in (("marker_xy_mm", xy), ("marker_zone", zone), ("zone_area_mm2", area),
                          ("zone_station", station)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def n_markers(self) -> int:
        return int(self.marker_zone.size)

    @property
    def n_zones(self) -> int:
        return int(self.zone_area_mm2.size)

    @property
    def n_stations(self) -> int:
        return int(self.zone_station.max()) + 1

    @property
    def marker_station(self) -> np.ndarray:
        """(N,) int32 station of each marker (read-only)."""
        out = self.zone_station[self.marker_zone]
        out.setflags(write=False)
        return out


@dataclass(frozen=True)
class StationLimits:
    """One station's thresholds (the tier of the module it holds): ΔT threshold θ, check
    interval K·Δt, warning (the envelope reaches its floor) and maximum safety (OVER_TEMP)."""

    delta_t_threshold_degc: float
    check_interval_s: float
    warning_degc: float
    temp_limit_degc: float


@dataclass(frozen=True)
class Setpoints:
    """What the supervisor sends down; may change between any two ticks."""

    delta_t_threshold_degc: float = 2.0
    check_interval_s: float = 2.0
    hotspot_ratio: tuple[float, ...] = field(default_factory=tuple)  # per zone, [0, 1]; () = all 0.5
    cooling_efficiency: float = 0.6
    relief_max_kpa: float = 200.0
    coolant_max_lpm: float = 20.0
    radius_min_mm: float = 10.0
    radius_ref_mm: float = 40.0
    radius_max_mm: float = 120.0
    relief_gain_kpa_per_degc_per_s: float = 400.0
    mutation_jump_degc_per_s: float = 0.2
    coupling_decay_per_tick: float = 0.3
    correction_gain: float = 0.5
    coolant_gain_lpm_per_cm2_degc_per_s: float = 0.05
    temp_limit_degc: float = 60.0  # maximum safety: a marker at or above it isolates its station
    warning_degc: float = 45.0  # the envelope's current limit reaches its floor here
    current_floor_frac: float = 0.1  # the envelope's current limit from warning_degc up (I² heat 1 %)
    envelope_hysteresis_degc: float = 1.0  # the limit rises only after this fall from its level
    envelope_margin_degc: float = 5.0  # the envelope starts derating this far below the warning
    relief_hold_s: float = 3.0  # relief holds until ΔT < θ for this long ...
    relief_release_degc: float = 40.0  # ... and the zone's hottest marker is below this
    station_limits: tuple[StationLimits, ...] = ()  # () = every station uses the fields above

    def check(self, config: Config, n_stations: int | None = None) -> None:
        """Raise ValueError naming the field when these setpoints do not fit `config` (and a
        fixture of `n_stations` stations; None skips the count of `station_limits`)."""
        w = "Setpoints"
        for name in ("delta_t_threshold_degc", "check_interval_s", "cooling_efficiency",
                     "relief_max_kpa", "coolant_max_lpm", "radius_min_mm", "radius_ref_mm",
                     "radius_max_mm", "relief_gain_kpa_per_degc_per_s", "mutation_jump_degc_per_s",
                     "coupling_decay_per_tick", "correction_gain",
                     "coolant_gain_lpm_per_cm2_degc_per_s", "temp_limit_degc", "warning_degc",
                     "current_floor_frac", "envelope_hysteresis_degc", "envelope_margin_degc",
                     "relief_hold_s", "relief_release_degc"):
            value = getattr(self, name)
            _require(isinstance(value, (int, float)) and math.isfinite(value), f"{w}.{name}",
                     f"must be a finite number, got {value!r}")
        _check_limits(w, self.delta_t_threshold_degc, self.check_interval_s, self.warning_degc,
                      self.temp_limit_degc, config)
        _require(0 <= self.current_floor_frac <= 1, f"{w}.current_floor_frac", "must be in [0, 1]")
        _require(self.envelope_hysteresis_degc >= 0, f"{w}.envelope_hysteresis_degc", "must be >= 0")
        margin = self.envelope_margin_degc
        _require(margin >= 0, f"{w}.envelope_margin_degc", f"must be >= 0, got {margin}")
        _require(self.warning_degc - margin >= config.temp_min_degc, f"{w}.envelope_margin_degc",
                 f"warning_degc - envelope_margin_degc = {self.warning_degc - margin} must be >= "
                 f"temp_min_degc = {config.temp_min_degc}")
        _require(0 <= self.relief_hold_s <= 1e5, f"{w}.relief_hold_s", "must be in [0, 1e5]")
        limits = self.station_limits
        _require(isinstance(limits, tuple), f"{w}.station_limits",
                 f"must be a tuple of StationLimits, got {type(limits).__name__}")
        _require(n_stations is None or len(limits) in (0, n_stations), f"{w}.station_limits",
                 f"must have {n_stations} entries (one per station) or none, got {len(limits)}")
        for s, lim in enumerate(limits):
            where = f"{w}.station_limits[{s}]"
            _require(isinstance(lim, StationLimits), where, f"must be a StationLimits, got {lim!r}")
            for name in ("delta_t_threshold_degc", "check_interval_s", "warning_degc", "temp_limit_degc"):
                value = getattr(lim, name)
                _require(isinstance(value, (int, float)) and math.isfinite(value), f"{where}.{name}",
                         f"must be a finite number, got {value!r}")
            _check_limits(where, lim.delta_t_threshold_degc, lim.check_interval_s, lim.warning_degc,
                          lim.temp_limit_degc, config)
            _require(lim.warning_degc - margin >= config.temp_min_degc, f"{w}.envelope_margin_degc",
                     f"{where}.warning_degc - envelope_margin_degc = {lim.warning_degc - margin} "
                     f"must be >= temp_min_degc = {config.temp_min_degc}")
        _require(0 < self.cooling_efficiency <= 1, f"{w}.cooling_efficiency", "must be in (0, 1]")
        _require(0 < self.relief_max_kpa <= config.pressure_max_kpa, f"{w}.relief_max_kpa",
                 f"must be in (0, {config.pressure_max_kpa}]")
        _require(self.coolant_max_lpm > 0, f"{w}.coolant_max_lpm", "must be > 0")
        _require(0 <= self.radius_min_mm <= self.radius_max_mm, f"{w}.radius_min_mm",
                 "must be in [0, radius_max_mm]")
        _require(self.radius_max_mm > 0 and self.radius_ref_mm >= 0, f"{w}.radius_max_mm",
                 "radius_max_mm must be > 0 and radius_ref_mm >= 0")
        _require(self.relief_gain_kpa_per_degc_per_s >= 0, f"{w}.relief_gain_kpa_per_degc_per_s",
                 "must be >= 0")
        _require(self.mutation_jump_degc_per_s > 0, f"{w}.mutation_jump_degc_per_s", "must be > 0")
        _require(self.coupling_decay_per_tick >= 0, f"{w}.coupling_decay_per_tick", "must be >= 0")
        _require(0 <= self.correction_gain <= 1, f"{w}.correction_gain", "must be in [0, 1]")
        _require(self.coolant_gain_lpm_per_cm2_degc_per_s >= 0,
                 f"{w}.coolant_gain_lpm_per_cm2_degc_per_s", "must be >= 0")
        ratio = self.hotspot_ratio
        _require(len(ratio) in (0, config.n_zones), f"{w}.hotspot_ratio",
                 f"must have {config.n_zones} entries (one per zone) or none, got {len(ratio)}")
        _require(all(isinstance(r, (int, float)) and 0 <= r <= 1 for r in ratio),
                 f"{w}.hotspot_ratio", "every entry must be in [0, 1]")

    def check_interval_ticks(self, config: Config) -> int:
        return round(self.check_interval_s / config.period_s)

    def relief_hold_ticks(self, config: Config) -> int:
        """Ticks in a row with ΔT < θ (zone inactive) before a held relief may release."""
        return round(self.relief_hold_s / config.period_s)

    def station_limit_arrays(self, config: Config, n_stations: int):
        """Per station (S,): θ [°C], K [ticks] (int32), warning [°C], temp limit [°C]."""
        if self.station_limits:
            rows = [(x.delta_t_threshold_degc, x.check_interval_s, x.warning_degc, x.temp_limit_degc)
                    for x in self.station_limits]
        else:
            rows = [(self.delta_t_threshold_degc, self.check_interval_s, self.warning_degc,
                     self.temp_limit_degc)] * n_stations
        theta = np.array([r[0] for r in rows], dtype=np.float64)
        ticks = np.array([round(r[1] / config.period_s) for r in rows], dtype=np.int32)
        warning = np.array([r[2] for r in rows], dtype=np.float64)
        limit = np.array([r[3] for r in rows], dtype=np.float64)
        return theta, ticks, warning, limit

    def hotspot_ratio_array(self, config: Config) -> np.ndarray:
        if not self.hotspot_ratio:
            return np.full(config.n_zones, 0.5)
        return np.asarray(self.hotspot_ratio, dtype=np.float64)

    def lag_decay(self, config: Config) -> np.ndarray:
        """exp(-λ·d) for lag distance d = 0..M-1: the weights of the distance matrix."""
        return np.array([math.exp(-self.coupling_decay_per_tick * d) for d in range(config.corr_lags)])


@dataclass(frozen=True)
class RealtimeGrant:
    """What `request_realtime(priority)` obtained; `message` is for the caller's log."""

    fifo_granted: bool
    priority: int
    mlock_granted: bool
    message: str


def snapshot(kernel) -> dict:
    """Plain-Python copy of a kernel's status and outputs (for the supervisor link, logs)."""
    return {
        "tick_count": int(kernel.tick_count),
        "flags": int(kernel.flags),
        "flag_names": [f.name for f in Flag if f and int(kernel.flags) & int(f)],
        "safe_state": bool(kernel.safe_state),
        "safe_cause": int(kernel.safe_cause),
        "fault_marker": int(kernel.fault_marker),
        "relief1_kpa": [float(v) for v in kernel.relief1_kpa],
        "relief2_kpa": [float(v) for v in kernel.relief2_kpa],
        "coolant_area_mm2": [float(v) for v in kernel.coolant_area_mm2],
        "coolant_flow_lpm": float(kernel.coolant_flow_lpm),
        "max_delta_t_degc": float(np.max(kernel.delta_t_degc)),
        "n_stations": int(kernel.fixture.n_stations),
        "station_safe": [bool(v) for v in kernel.station_safe],
        "station_cause": [int(v) for v in kernel.station_cause],
        "station_cause_names": [[f.name for f in Flag if f and int(v) & int(f)]
                                for v in kernel.station_cause],
        "station_fault_marker": [int(v) for v in kernel.station_fault_marker],
        "station_hot_degc": [float(v) for v in kernel.station_hot_degc],
        "current_limit_frac": [float(v) for v in kernel.current_limit_frac],
        "station_coolant_lpm": [float(v) for v in kernel.station_coolant_lpm],
    }

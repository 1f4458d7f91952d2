"""Strategy of one tier (S12) and its limits in three tiers (operating, recommended, maximum safety).

Owns `Strategy` (the C-rate profile against estimated SOC, the voltage taper near empty, the
temperature derating, fixture pressure, base coolant and the rtcore thresholds), `LimitSet` and
`TierLimits`, and `check_strategy`, which refuses a strategy outside the maximum-safety limits with
an error naming the field. Tests: tests/edge/strategy/test_model.py.

A C-rate is relative to the nominal capacity `NOMINAL_CAPACITY_AH` (5 Ah, the cell of the data):
1C = 5 A. A module is `cells_per_module` cells in series, so the station current is the cell current.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from edge.limits import MAXIMUM_SAFETY_DEGC, WARNING_DEGC
from edge.strategy import calibration
from rtcore.spec import Config, Setpoints, StationLimits

NOMINAL_CAPACITY_AH = 5.0


class StrategyError(ValueError):
    """A strategy that is malformed or outside the maximum-safety limits (the message names the field)."""


@dataclass(frozen=True)
class LimitSet:
    """One level of limits (as a BMS has: operating, recommended safety, maximum safety)."""

    max_c_rate: float
    max_temp_degc: float
    min_pressure_kpa: float
    max_pressure_kpa: float
    max_coolant_lpm: float

    def __post_init__(self) -> None:
        if not (0 < self.max_c_rate and 0 < self.min_pressure_kpa <= self.max_pressure_kpa
                and self.max_coolant_lpm > 0 and math.isfinite(self.max_temp_degc)):
            raise StrategyError(f"LimitSet: inconsistent limits {self}")


@dataclass(frozen=True)
class TierLimits:
    """Operating ⊆ recommended safety ⊆ maximum safety. A strategy must stay inside maximum safety
    (`check_strategy`); the score penalises leaving the operating set and refuses outcomes beyond
    maximum safety (edge/strategy/score.py)."""

    operating: LimitSet = LimitSet(2.5, 42.0, 100.0, 250.0, 16.0)
    recommended: LimitSet = LimitSet(2.8, WARNING_DEGC, 80.0, 300.0, 20.0)
    maximum: LimitSet = LimitSet(3.0, MAXIMUM_SAFETY_DEGC, 50.0, 400.0, 20.0)
    residual_target_pct: float = 15.0
    residual_plan_pct: float = 12.0
    """What planning aims at: the target less the model plant's under-prediction of the residual
    (built from estimates, it predicted 3-4 points too little on rows 0-39 of cells_train.csv)."""

    def __post_init__(self) -> None:
        o, r, m = self.operating, self.recommended, self.maximum
        for name in ("max_c_rate", "max_temp_degc", "max_pressure_kpa", "max_coolant_lpm"):
            if not getattr(o, name) <= getattr(r, name) <= getattr(m, name):
                raise StrategyError(f"TierLimits.{name}: must grow from operating to maximum safety")
        if not 0 <= self.residual_plan_pct <= self.residual_target_pct:
            raise StrategyError("TierLimits.residual_plan_pct: must be in [0, residual_target_pct]")
        if not o.min_pressure_kpa >= r.min_pressure_kpa >= m.min_pressure_kpa:
            raise StrategyError("TierLimits.min_pressure_kpa: must shrink from operating to maximum safety")


@dataclass(frozen=True)
class Strategy:
    """One tier's discharge strategy.

    `segments`: ((soc_from_pct, c_rate), ...) with soc_from_pct strictly decreasing and the last
    at 0: while the estimated SOC is >= soc_from_pct the C-rate applies (first match).
    `taper_v_per_cell`: below this loaded cell voltage the current falls linearly towards
    `end_c_rate` at the cut-off (so a module ends at a small current and leaves little charge).
    `derate_start_degc` .. `derate_stop_degc`: the hottest marker of a station scales its current
    from 100 % down to `derate_floor` (the supervisor's guard below the warning temperature).
    `ramp_c_rate_per_s`: the setpoint starts at `end_c_rate` and rises at most this fast (a soft
    start: a nearly empty module meets the taper before a full-rate step trips it).
    The rtcore thresholds are handed down as `rtcore.spec.Setpoints` (`setpoints()`): the ΔT
    threshold and check interval (calibrated per C-rate: `edge.strategy.calibration.
    threshold_for_c_rate`, defaults for the default 2C profile; `with_calibrated_thresholds()`
    re-derives them from the highest C-rate of the profile), and S14-S15 as parameters the planner
    can trade (rtcore/README.md): the first relief gain g₁ `relief_gain_kpa_per_degc_per_s`, the
    coolant gain g_c `coolant_gain_lpm_per_cm2_degc_per_s`, the S15 correction gain κ
    `correction_gain`, the coupling decay λ `coupling_decay_per_tick`, and the relief hold
    (`relief_hold_s`, `relief_release_degc`). Defaults: the calibrated values
    (docs/calibration.md). A record written before a field existed loads with its default.
    """

    segments: tuple[tuple[float, float], ...] = ((60.0, 2.0), (0.0, 2.0))
    taper_v_per_cell: float = 3.0
    end_c_rate: float = 0.3
    derate_start_degc: float = 40.0
    derate_stop_degc: float = 44.0
    derate_floor: float = 0.1
    ramp_c_rate_per_s: float = 0.05
    pressure_kpa: float = 150.0
    coolant_base_lpm: float = 16.0
    delta_t_threshold_degc: float = calibration.threshold_for_c_rate(2.0)[0]
    check_interval_s: float = calibration.threshold_for_c_rate(2.0)[1]
    correction_gain: float = calibration.CORRECTION_GAIN
    relief_gain_kpa_per_degc_per_s: float = calibration.RELIEF_GAIN_KPA_PER_DEGC_PER_S
    coolant_gain_lpm_per_cm2_degc_per_s: float = calibration.COOLANT_GAIN_LPM_PER_CM2_DEGC_PER_S
    coupling_decay_per_tick: float = calibration.COUPLING_DECAY_PER_TICK
    relief_hold_s: float = calibration.RELIEF_HOLD_S
    relief_release_degc: float = calibration.RELIEF_RELEASE_DEGC

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple((float(s), float(c)) for s, c in self.segments))

    def setpoints(self, limits: TierLimits = TierLimits(), **overrides) -> Setpoints:
        """What the real-time core uses (rtcore/README.md): this strategy's ΔT threshold, check
        interval, S14-S15 gains and relief hold, and the tier's warning and maximum-safety
        temperature line-wide (so a station without its own `station_limits` is held to the tier's
        limits, not the core's default 60 °C); other fields at their defaults; `overrides` last."""
        fields = dict(delta_t_threshold_degc=self.delta_t_threshold_degc, check_interval_s=self.check_interval_s,
                      correction_gain=self.correction_gain,
                      relief_gain_kpa_per_degc_per_s=self.relief_gain_kpa_per_degc_per_s,
                      coolant_gain_lpm_per_cm2_degc_per_s=self.coolant_gain_lpm_per_cm2_degc_per_s,
                      coupling_decay_per_tick=self.coupling_decay_per_tick,
                      relief_hold_s=self.relief_hold_s, relief_release_degc=self.relief_release_degc,
                      warning_degc=limits.recommended.max_temp_degc,
                      temp_limit_degc=limits.maximum.max_temp_degc)
        fields.update(overrides)
        return Setpoints(**fields)

    def with_calibrated_thresholds(self) -> Strategy:
        """This strategy with θ and the check interval of its highest C-rate
        (`calibration.threshold_for_c_rate`)."""
        theta, interval = calibration.threshold_for_c_rate(self.max_c_rate())
        return self.replace(delta_t_threshold_degc=theta, check_interval_s=interval)

    def station_limits(self, limits: TierLimits = TierLimits()) -> StationLimits:
        """What the real-time core enforces for a station of this tier: its ΔT threshold and check
        interval, the warning (recommended safety: the core's current envelope reaches its floor there) and the
        maximum-safety temperature (where the station is isolated)."""
        return StationLimits(delta_t_threshold_degc=self.delta_t_threshold_degc,
                             check_interval_s=self.check_interval_s,
                             warning_degc=limits.recommended.max_temp_degc,
                             temp_limit_degc=limits.maximum.max_temp_degc)

    def c_rate_at(self, soc_pct: float) -> float:
        for soc_from, c_rate in self.segments:
            if soc_pct >= soc_from:
                return c_rate
        return self.segments[-1][1]

    def max_c_rate(self) -> float:
        return max(c for _, c in self.segments)

    def replace(self, **changes) -> Strategy:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["segments"] = [{"soc_from_pct": s, "c_rate": c} for s, c in self.segments]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "strategy") -> Strategy:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise StrategyError(f"{where}: unknown fields {sorted(unknown)}")
        d = dict(d)
        if "segments" in d:
            try:
                d["segments"] = tuple((float(s["soc_from_pct"]), float(s["c_rate"])) for s in d["segments"])
            except (KeyError, TypeError, ValueError) as exc:
                raise StrategyError(f"{where}.segments: each needs soc_from_pct and c_rate ({exc})") from exc
        return cls(**d)


def check_strategy(s: Strategy, limits: TierLimits = TierLimits(), where: str = "strategy") -> Strategy:
    """Return `s` when it is well formed and inside the maximum-safety limits (the derating stop inside
    recommended safety); else StrategyError."""
    m = limits.maximum
    for f in dataclasses.fields(s):
        if f.name != "segments" and not math.isfinite(getattr(s, f.name)):
            raise StrategyError(f"{where}.{f.name}: must be finite, got {getattr(s, f.name)}")
    if not s.segments:
        raise StrategyError(f"{where}.segments: needs at least one segment")
    socs = [soc for soc, _ in s.segments]
    if any(b >= a for a, b in zip(socs, socs[1:])) or socs[-1] != 0.0 or socs[0] > 100.0:
        raise StrategyError(f"{where}.segments: soc_from_pct must fall strictly from <= 100 to 0, got {socs}")
    for i, (_, c) in enumerate(s.segments):
        if not 0 < c <= m.max_c_rate:
            raise StrategyError(f"{where}.segments[{i}].c_rate: must be in (0, {m.max_c_rate}] (maximum safety), got {c}")
    if not 0 < s.end_c_rate <= s.max_c_rate():
        raise StrategyError(f"{where}.end_c_rate: must be in (0, highest segment C-rate], got {s.end_c_rate}")
    if not 2.5 < s.taper_v_per_cell <= 4.2:
        raise StrategyError(f"{where}.taper_v_per_cell: must be in (2.5, 4.2] V, got {s.taper_v_per_cell}")
    warn = limits.recommended.max_temp_degc  # the derating is the guard below the warning temperature
    if not s.derate_start_degc < s.derate_stop_degc <= warn:
        raise StrategyError(f"{where}.derate_stop_degc: need derate_start < derate_stop <= {warn} °C "
                            f"(recommended safety), got {s.derate_start_degc}..{s.derate_stop_degc}")
    if not 0 < s.ramp_c_rate_per_s <= 1.0:
        raise StrategyError(f"{where}.ramp_c_rate_per_s: must be in (0, 1] C/s, got {s.ramp_c_rate_per_s}")
    if not 0 <= s.derate_floor < 1:
        raise StrategyError(f"{where}.derate_floor: must be in [0, 1), got {s.derate_floor}")
    if not m.min_pressure_kpa <= s.pressure_kpa <= m.max_pressure_kpa:
        raise StrategyError(f"{where}.pressure_kpa: must be in [{m.min_pressure_kpa}, {m.max_pressure_kpa}] kPa "
                            f"(maximum safety), got {s.pressure_kpa}")
    if not 0 <= s.coolant_base_lpm <= m.max_coolant_lpm:
        raise StrategyError(f"{where}.coolant_base_lpm: must be in [0, {m.max_coolant_lpm}] L/min, got {s.coolant_base_lpm}")
    try:
        s.setpoints().check(Config(n_markers=1, n_zones=1))  # the real-time core's own validation at 100 ms
    except ValueError as exc:
        raise StrategyError(f"{where}: rtcore setpoints refused: {exc}") from exc
    if not 0 <= s.correction_gain <= 1 or s.delta_t_threshold_degc <= 0:
        raise StrategyError(f"{where}.correction_gain/delta_t_threshold_degc: out of range")
    for name, hi in (("relief_gain_kpa_per_degc_per_s", 1e5), ("coolant_gain_lpm_per_cm2_degc_per_s", 1e3),
                     ("coupling_decay_per_tick", 100.0), ("relief_hold_s", 3600.0)):
        if not 0 <= getattr(s, name) <= hi:
            raise StrategyError(f"{where}.{name}: must be in [0, {hi:g}], got {getattr(s, name)}")
    if not 20.0 <= s.relief_release_degc <= m.max_temp_degc:
        raise StrategyError(f"{where}.relief_release_degc: must be in [20, {m.max_temp_degc:g}] °C (maximum "
                            f"safety), got {s.relief_release_degc}")
    return s


def clamp_to_limits(s: Strategy, limits: LimitSet) -> Strategy:
    """The nearest strategy inside `limits` (C-rates, derating stop, pressure, coolant clipped)."""
    segs = tuple((soc, min(c, limits.max_c_rate)) for soc, c in s.segments)
    stop = min(s.derate_stop_degc, limits.max_temp_degc)
    start = min(s.derate_start_degc, stop - 0.5)
    return s.replace(segments=segs, end_c_rate=min(s.end_c_rate, max(c for _, c in segs)),
                     derate_stop_degc=stop, derate_start_degc=start,
                     pressure_kpa=min(max(s.pressure_kpa, limits.min_pressure_kpa), limits.max_pressure_kpa),
                     coolant_base_lpm=min(max(s.coolant_base_lpm, 0.0), limits.max_coolant_lpm))

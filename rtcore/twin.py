"""Reference twin of the compiled S14-S15 tick, in plain Python/NumPy, with the same names.

Owns: the readable statement of the tick (`Kernel.tick`, in the order of rtcore/README.md) and
the clock twin (re-exported from `rtcore.twin_clock`). Every sum runs in the same order as in
`_tick.pyx` (time loops explicit, sums over markers with `np.bincount`, which adds in index
order), so both give the same numbers. Tests: tests/rtcore/ (run over both implementations).
"""

from __future__ import annotations

import math

import numpy as np

from rtcore.spec import (
    EXTERNAL_FAULTS,
    LATCHING,
    STATION_FAULTS,
    Config,
    Fixture,
    Flag,
    Setpoints,
)
from rtcore.twin_clock import Periodic, monotonic_ns, request_realtime, sleep_until_ns

__all__ = ["Kernel", "Periodic", "monotonic_ns", "request_realtime", "sleep_until_ns"]

PI = math.pi
COUNT_CAP = 1 << 30
TREND_EPS_DEGC_PER_S = 1e-6  # below this spread a trend series counts as flat
PRESSURE_EPS_KPA_PER_S = 1e-6  # below this spread a pressure series counts as flat


def _checked(values, size: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype != np.float64 or arr.shape != (size,) or not arr.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous float64 array of shape ({size},), "
                         f"got {arr.dtype} {arr.shape}")
    return arr


class Kernel:
    """The S14-S15 tick over N marker points, Z pressure zones and S stations (README.md)."""

    def __init__(self, config: Config, fixture: Fixture, setpoints: Setpoints | None = None):
        if fixture.n_markers != config.n_markers or fixture.n_zones != config.n_zones:
            raise ValueError(
                f"Fixture: has {fixture.n_markers} markers / {fixture.n_zones} zones, "
                f"Config says {config.n_markers} / {config.n_zones}")
        self.config = config
        self.fixture = fixture
        n, z, h = config.n_markers, config.n_zones, config.history_ticks
        ns = fixture.n_stations
        self._zone = fixture.marker_zone.astype(np.intp)
        self._zst = fixture.zone_station.astype(np.intp)  # station of each zone
        self._mst = self._zst[self._zone]  # station of each marker
        self._x = fixture.marker_xy_mm[:, 0].copy()
        self._y = fixture.marker_xy_mm[:, 1].copy()
        self._area = fixture.zone_area_mm2
        self._zone_count = np.bincount(self._zone, minlength=z).astype(np.float64)
        # ring buffers: row = slot (tick index mod H)
        self._temp_ring = np.zeros((h, n))
        self._rate_ring = np.zeros((h, n))
        self._press_ring = np.zeros((h, z))
        self._trend_ring = np.zeros((h, z))
        self._last_good = np.full(n, config.ambient_degc)
        self._last_raw = np.full(n, np.nan)
        self._last_good_p = np.zeros(z)
        self._cnt_nonfinite = np.zeros(n, np.int32)
        self._cnt_oor = np.zeros(n, np.int32)
        self._cnt_stuck = np.zeros(n, np.int32)
        self._cnt_alarm = np.zeros(n, np.int32)
        self._cnt_hot = np.zeros(n, np.int32)
        self._cnt_pnan = np.zeros(z, np.int32)
        # relief hold per zone (README.md, step 15) and the envelope's held level per station
        self._cnt_quiet = np.zeros(z, np.int32)
        self._holding = np.zeros(z, np.uint8)
        self._held = np.zeros((4, z))  # relief1, relief2, coolant area, coolant demand
        self._zone_q = np.zeros(z)  # coolant demand per zone after the hold, L/min
        self._env_degc = np.full(ns, config.temp_min_degc)
        self._primed = False
        self._new_module = np.zeros(ns, bool)  # stations whose history restarts at the next tick
        self._tick_count = 0
        self._safe = False
        self._safe_cause = 0
        self._fault_marker = -1
        self._st_safe = np.zeros(ns, np.uint8)
        self._st_cause = np.zeros(ns, np.uint32)
        self._st_marker = np.full(ns, -1, np.int32)
        self._flags = 0
        self._coolant_flow = 0.0
        self._out = {name: np.zeros(z) for name in
                     ("relief1_kpa", "relief2_kpa", "coolant_area_mm2", "radius_mm",
                      "correction", "zone_trend_degc_per_s")}
        self._diag = {name: np.zeros(n) for name in
                      ("delta_t_degc", "rate_degc_per_s", "severity_degc_per_s",
                       "mutation_slope_degc_per_s2")}
        self._st_out = {"station_hot_degc": np.full(ns, config.ambient_degc),
                        "current_limit_frac": np.ones(ns), "station_coolant_lpm": np.zeros(ns)}
        self.set_setpoints(setpoints if setpoints is not None else Setpoints())

    # ---- the supervisor's side -------------------------------------------------------------
    def set_setpoints(self, setpoints: Setpoints) -> None:
        """Validate (ValueError naming the field) and take new setpoints from the next tick."""
        cfg = self.config
        setpoints.check(cfg, self.fixture.n_stations)
        self.setpoints = setpoints
        theta, ticks, warning, limit = setpoints.station_limit_arrays(cfg, self.fixture.n_stations)
        self._st_theta, self._st_k, self._st_warning, self._st_limit = theta, ticks, warning, limit
        self._theta_m = theta[self._mst]
        self._k_m = ticks[self._mst].astype(np.intp)
        self._limit_m = limit[self._mst]
        self._rtheta_m = self._theta_m / (ticks[self._mst] * cfg.period_s)
        self._rtheta_z = theta[self._zst] / (ticks[self._zst] * cfg.period_s)
        self._kmax = int(ticks.max())
        self._hold_ticks = setpoints.relief_hold_ticks(cfg)
        self._ratio = setpoints.hotspot_ratio_array(cfg)
        self._decay = setpoints.lag_decay(cfg)

    def raise_fault(self, code: int) -> None:
        """Latch the line's safe state for an external fault (LINK_LOST, OVERRUN_STREAK, EXCEPTION)."""
        code = int(code)
        if code <= 0 or code & ~int(EXTERNAL_FAULTS):
            raise ValueError(f"raise_fault: code {code:#x} is not a subset of {EXTERNAL_FAULTS!r}")
        if not self._safe:
            self._fault_marker = -1
        self._safe = True
        self._safe_cause |= code
        self._flags |= code | int(Flag.SAFE_STATE)
        self._apply_station_outputs()

    def isolate_station(self, station: int, cause_bits: int, marker: int = -1) -> None:
        """Latch one station for station-local causes (e.g. restoring latches after a restart)."""
        station, cause, marker = int(station), int(cause_bits), int(marker)
        ns, n = self.fixture.n_stations, self.config.n_markers
        if not 0 <= station < ns:
            raise ValueError(f"isolate_station: station {station} is not in [0, {ns - 1}]")
        if cause <= 0 or cause & ~int(STATION_FAULTS):
            raise ValueError(f"isolate_station: cause {cause:#x} is not a subset of {STATION_FAULTS!r}")
        if not (marker == -1 or (0 <= marker < n and self._mst[marker] == station)):
            raise ValueError(f"isolate_station: marker {marker} is not -1 or a marker of station {station}")
        self._latch_station(station, cause, marker)
        self._flags |= cause | int(Flag.STATION_ISOLATED)
        self._apply_station_outputs()

    def reset(self) -> None:
        """Clear the line latch and every station latch. A fault that persists latches again at
        the next tick; the outputs stay as they are until then."""
        self._safe = False
        self._safe_cause = 0
        self._fault_marker = -1
        self._st_safe[:] = 0
        self._st_cause[:] = 0
        self._st_marker[:] = -1
        self._flags = 0

    def reset_station(self, station: int) -> None:
        """Clear one station's latch; `flags` keep only the latches still held until the next tick."""
        station, ns = int(station), self.fixture.n_stations
        if not 0 <= station < ns:
            raise ValueError(f"reset_station: station {station} is not in [0, {ns - 1}]")
        self._st_safe[station] = 0
        self._st_cause[station] = 0
        self._st_marker[station] = -1
        self._flags = self._latched_flags()

    def restart_station_history(self, station: int) -> None:
        """A new module is on the station: at the next tick its markers' and zones' history is
        primed with that tick's readings (ΔT 0, no trend), and its zones' relief hold, its rate
        alarm counts and its envelope level start afresh. The temperature step from one module to
        the next is not heat. Latches stay: an isolated station stays isolated until reset_station."""
        station, ns = int(station), self.fixture.n_stations
        if not 0 <= station < ns:
            raise ValueError(f"restart_station_history: station {station} is not in [0, {ns - 1}]")
        self._new_module[station] = True

    def _reprime_stations(self, ts: np.ndarray, ps: np.ndarray) -> None:
        markers, zones = self._new_module[self._mst], self._new_module[self._zst]
        self._temp_ring[:, markers] = ts[markers]
        self._rate_ring[:, markers] = 0.0
        self._press_ring[:, zones] = ps[zones]
        self._trend_ring[:, zones] = 0.0
        self._cnt_alarm[markers] = 0
        self._cnt_quiet[zones] = 0
        self._holding[zones] = 0
        self._held[:, zones] = 0.0
        self._env_degc[self._new_module] = self.config.temp_min_degc
        self._new_module[:] = False

    # ---- the tick ------------------------------------------------------------------------
    def tick(self, temp_degc, pressure_kpa) -> int:
        """Run one tick on N temperatures and Z pressures; return the flags (also `.flags`)."""
        cfg, sp = self.config, self.setpoints
        temp = _checked(temp_degc, cfg.n_markers, "temp_degc")
        press = _checked(pressure_kpa, cfg.n_zones, "pressure_kpa")
        with np.errstate(all="ignore"):
            ts, ps = self._sanitize(temp, press)
            h = cfg.history_ticks
            j = self._tick_count % h
            if not self._primed:
                self._temp_ring[:] = ts
                self._press_ring[:] = ps
                self._primed = True
            if self._new_module.any():
                self._reprime_stations(ts, ps)
            self._temp_ring[j] = ts
            self._press_ring[j] = ps
            hot, dt_k, rate = self._rates(j, ts)
            sev = self._mutation(j, hot, rate)
            active, radius, cover, zmax, relief1 = self._relief1(hot, dt_k, sev)
            phi = self._correction(j)
            relief2 = np.where(active, np.minimum(relief1 * phi, sp.relief_max_kpa), 0.0)
            area_c = np.where(active, cover * (relief2 / sp.relief_max_kpa), 0.0)  # ≤ cover exactly
            demand = (sp.coolant_gain_lpm_per_cm2_degc_per_s * (area_c / 100.0)) * zmax \
                / sp.cooling_efficiency
            zone_hot = np.full(cfg.n_zones, cfg.temp_min_degc)
            np.maximum.at(zone_hot, self._zone, ts)
            self._hold(active, zone_hot, relief1, relief2, area_c, demand)
            st_hot = np.full(self.fixture.n_stations, cfg.temp_min_degc)
            np.maximum.at(st_hot, self._zst, zone_hot)
            self._st_out["station_hot_degc"][:] = st_hot
            self._env_degc[:] = np.maximum(st_hot, np.minimum(self._env_degc,
                                                              st_hot + sp.envelope_hysteresis_degc))
        out = self._out
        out["radius_mm"][:] = np.where(active, radius, 0.0)
        out["correction"][:] = np.where(active, phi, 1.0)
        self._diagnose(bool(self._holding.any()))
        self._apply_station_outputs()
        self._tick_count += 1
        return self._flags

    def _hold(self, active, zone_hot, relief1, relief2, area_c, demand) -> None:
        """Relief hysteresis: an active zone holds the running maximum of its outputs until it
        has been inactive for relief_hold_ticks and its hottest marker is under the release level."""
        sp = self.setpoints
        self._cnt_quiet[:] = np.where(active, 0, np.minimum(self._cnt_quiet + 1, COUNT_CAP))
        release = (~active & (self._cnt_quiet >= self._hold_ticks)
                   & (zone_hot < sp.relief_release_degc))
        holding = active | ((self._holding != 0) & ~release)
        self._holding[:] = holding
        computed = np.stack([relief1, relief2, area_c, demand])
        outs = np.where(holding, np.maximum(computed, self._held), computed)
        outs[:2] = np.minimum(outs[:2], sp.relief_max_kpa)  # R̄ may have been lowered meanwhile
        self._held[:] = np.where(holding, outs, 0.0)
        self._out["relief1_kpa"][:] = outs[0]
        self._out["relief2_kpa"][:] = outs[1]
        self._out["coolant_area_mm2"][:] = outs[2]
        self._zone_q[:] = outs[3]

    def _sanitize(self, temp: np.ndarray, press: np.ndarray):
        cfg = self.config
        finite = np.isfinite(temp)
        valid = finite & (temp >= cfg.temp_min_degc) & (temp <= cfg.temp_max_degc)
        oor = finite & ~valid
        self._cnt_nonfinite[:] = np.where(~finite, np.minimum(self._cnt_nonfinite + 1, COUNT_CAP), 0)
        self._cnt_oor[:] = np.where(oor, np.minimum(self._cnt_oor + 1, COUNT_CAP), 0)
        same = valid & (temp == self._last_raw)
        self._cnt_stuck[:] = np.where(same, np.minimum(self._cnt_stuck + 1, COUNT_CAP), 0)
        hot = valid & (temp >= self._limit_m)
        self._cnt_hot[:] = np.where(hot, np.minimum(self._cnt_hot + 1, COUNT_CAP), 0)
        self._last_raw[:] = np.where(valid, temp, self._last_raw)
        ts = np.where(valid, temp, self._last_good)
        self._last_good[:] = ts
        pfinite = np.isfinite(press)
        self._cnt_pnan[:] = np.where(~pfinite, np.minimum(self._cnt_pnan + 1, COUNT_CAP), 0)
        clipped = np.minimum(np.maximum(press, 0.0), cfg.pressure_max_kpa)
        ps = np.where(pfinite, clipped, self._last_good_p)
        self._last_good_p[:] = ps
        return ts, ps

    def _age(self, j: int, a: int) -> int:
        return (j - a) % self.config.history_ticks

    def _rates(self, j: int, ts: np.ndarray):
        """ΔT over each marker's check interval, its rate, the GB 38031 rate and the zone trend."""
        cfg = self.config
        k, dt, h = self._k_m, cfg.period_s, cfg.history_ticks
        dt_k = ts - self._temp_ring[(j - k) % h, np.arange(cfg.n_markers)]
        rate = dt_k / (k * dt)
        self._rate_ring[j] = rate
        m = cfg.alarm_window_ticks
        rate_1s = (ts - self._temp_ring[self._age(j, m)]) / (m * dt)
        over = rate_1s >= cfg.alarm_rate_degc_per_s
        self._cnt_alarm[:] = np.where(over, np.minimum(self._cnt_alarm + 1, COUNT_CAP), 0)
        step_rate = (ts - self._temp_ring[self._age(j, 1)]) / dt
        zsum = np.bincount(self._zone, weights=step_rate, minlength=cfg.n_zones)
        trend = np.where(self._zone_count > 0, zsum / np.maximum(self._zone_count, 1.0), 0.0)
        self._trend_ring[j] = trend
        self._out["zone_trend_degc_per_s"][:] = trend
        self._diag["delta_t_degc"][:] = dt_k
        self._diag["rate_degc_per_s"][:] = rate
        return dt_k >= self._theta_m, dt_k, rate

    def _mutation(self, j: int, hot: np.ndarray, rate: np.ndarray) -> np.ndarray:
        """Mutation line: least-squares line through the abnormal points of the rate curve
        (the last K ticks of each marker, K of its station)."""
        sp, k = self.setpoints, self._k_m
        r_theta = self._rtheta_m
        n = self.config.n_markers
        s0, s1, s2, sr, str_ = (np.zeros(n) for _ in range(5))
        for a in range(self._kmax):
            ra = self._rate_ring[self._age(j, a)]
            rb = self._rate_ring[self._age(j, a + 1)]
            abnormal = (a < k) & ((ra >= r_theta) | (ra - rb >= sp.mutation_jump_degc_per_s))
            tau = float(-a)
            s0 += np.where(abnormal, 1.0, 0.0)
            s1 += np.where(abnormal, tau, 0.0)
            s2 += np.where(abnormal, tau * tau, 0.0)
            sr += np.where(abnormal, ra, 0.0)
            str_ += np.where(abnormal, tau * ra, 0.0)
        det = s0 * s2 - s1 * s1
        slope = np.where(s0 >= 2.0, (s0 * str_ - s1 * sr) / det, 0.0)
        intercept = np.where(s0 >= 2.0, (sr - slope * s1) / s0, sr)
        projected = np.where(s0 >= 2.0, intercept + slope * k, np.where(s0 >= 1.0, sr, rate))
        sev = np.where(hot, np.maximum(rate, projected), 0.0)
        self._diag["severity_degc_per_s"][:] = sev
        self._diag["mutation_slope_degc_per_s2"][:] = np.where(hot, slope / self.config.period_s, 0.0)
        return sev

    def _relief1(self, hot: np.ndarray, dt_k: np.ndarray, sev: np.ndarray):
        """Relief radius from hotspot ratio and position map; first relief per zone."""
        cfg, sp = self.config, self.setpoints
        zc = cfg.n_zones
        w = np.where(hot, dt_k / self._theta_m, 0.0)
        wsum = np.bincount(self._zone, weights=w, minlength=zc)
        xsum = np.bincount(self._zone, weights=w * self._x, minlength=zc)
        ysum = np.bincount(self._zone, weights=w * self._y, minlength=zc)
        active = wsum > 0.0
        cx = np.where(active, xsum / wsum, 0.0)
        cy = np.where(active, ysum / wsum, 0.0)
        dx = self._x - cx[self._zone]
        dy = self._y - cy[self._zone]
        dsum = np.bincount(self._zone, weights=w * (dx * dx + dy * dy), minlength=zc)
        spread = np.where(active, np.sqrt(dsum / wsum), 0.0)
        radius = np.minimum(sp.radius_min_mm + self._ratio * sp.radius_ref_mm + spread,
                            sp.radius_max_mm)
        circle = PI * radius * radius
        frac = np.minimum(circle / self._area, 1.0)
        cover = np.minimum(circle, self._area)
        zmax = np.zeros(zc)
        np.maximum.at(zmax, self._zone, sev)
        relief1 = np.where(
            active, np.minimum(sp.relief_gain_kpa_per_degc_per_s * frac * zmax, sp.relief_max_kpa), 0.0)
        return active, radius, cover, zmax, relief1

    def _features(self, j: int):
        """Trend vector f1 and pressure-temperature coefficient vector f2, shape (M, Z)."""
        cfg = self.config
        win, lags, dt = cfg.corr_window_ticks, cfg.corr_lags, cfg.period_s
        r_theta = self._rtheta_z
        u = [self._trend_ring[self._age(j, a)] for a in range(win + lags)]
        p = [self._press_ring[self._age(j, a)] for a in range(win + lags + 1)]
        q = [(p[a] - p[a + 1]) / dt for a in range(win + lags)]
        mu = np.zeros(cfg.n_zones)
        for k in range(win):
            mu += u[k]
        mu = mu / win
        suu = np.zeros(cfg.n_zones)
        for k in range(win):
            suu += (u[k] - mu) * (u[k] - mu)
        f1 = np.zeros((lags, cfg.n_zones))
        f2 = np.zeros((lags, cfg.n_zones))
        for lag in range(lags):
            ubar = np.zeros(cfg.n_zones)
            mq = np.zeros(cfg.n_zones)
            for k in range(win):
                ubar += u[k + lag]
                mq += q[k + lag]
            ubar, mq = ubar / win, mq / win
            sqq = np.zeros(cfg.n_zones)
            squ = np.zeros(cfg.n_zones)
            for k in range(win):
                dq = q[k + lag] - mq
                sqq += dq * dq
                squ += dq * (u[k] - mu)
            flat = ((suu <= win * (TREND_EPS_DEGC_PER_S * TREND_EPS_DEGC_PER_S))
                    | (sqq <= win * (PRESSURE_EPS_KPA_PER_S * PRESSURE_EPS_KPA_PER_S)))
            coeff = np.where(flat, 0.0, squ / np.sqrt(suu * sqq))
            f2[lag] = np.minimum(np.maximum(coeff, -1.0), 1.0)
            f1[lag] = np.tanh(ubar / r_theta)
        return f1, f2

    def _correction(self, j: int) -> np.ndarray:
        """FT = I + (f1 f2ᵀ ∘ exp(-λ D))/M; PS = I + κ(FT - I); factor φ = 1ᵀ PS 1 / M."""
        lags = self.config.corr_lags
        f1, f2 = self._features(j)
        dist = np.abs(np.subtract.outer(np.arange(lags), np.arange(lags)))
        decay = self._decay[dist]  # exp(-λ·D), D the lag-position distance matrix
        eye = np.eye(lags)
        kappa = self.setpoints.correction_gain
        phi = np.empty(self.config.n_zones)
        for z in range(self.config.n_zones):
            ft = eye + np.outer(f1[:, z], f2[:, z]) * decay / lags
            ps = eye + kappa * (ft - eye)
            phi[z] = ps.sum() / lags
        return phi

    def _diagnose(self, relief_active: bool) -> None:
        """Current conditions per marker and zone, gathered per station; station-local causes
        latch their station (first bad marker of the station, or -1 for a zone cause)."""
        cfg = self.config
        by_marker = (
            (self._cnt_nonfinite >= cfg.nonfinite_debounce_ticks, Flag.SENSOR_NONFINITE),
            (self._cnt_oor >= cfg.out_of_range_debounce_ticks, Flag.SENSOR_OUT_OF_RANGE),
            (self._cnt_stuck >= cfg.stuck_debounce_ticks, Flag.SENSOR_STUCK),
            (self._cnt_alarm >= cfg.alarm_debounce_ticks, Flag.DTDT_ALARM),
            (self._cnt_hot >= cfg.over_temp_debounce_ticks, Flag.OVER_TEMP),
        )
        ns = self.fixture.n_stations
        marker_cause = np.zeros(cfg.n_markers, np.int64)
        for mask, flag in by_marker:
            marker_cause |= np.where(mask, int(flag), 0)
        zone_cause = np.where(self._cnt_pnan >= cfg.nonfinite_debounce_ticks,
                              int(Flag.PRESSURE_NONFINITE), 0).astype(np.int64)
        now = np.zeros(ns, np.int64)
        np.bitwise_or.at(now, self._mst, marker_cause)
        np.bitwise_or.at(now, self._zst, zone_cause)
        bad = marker_cause != 0
        first = np.full(ns, cfg.n_markers, np.int64)
        np.minimum.at(first, self._mst[bad], np.flatnonzero(bad))
        first[first == cfg.n_markers] = -1
        cause = int(np.bitwise_or.reduce(now)) if ns else 0
        flags = cause
        if relief_active:
            flags |= int(Flag.RELIEF_ACTIVE)
        if (self._cnt_alarm > 0).any() and not cause & int(Flag.DTDT_ALARM):
            flags |= int(Flag.DTDT_PENDING)
        if (self._cnt_nonfinite > 0).any() or (self._cnt_oor > 0).any() or (self._cnt_pnan > 0).any():
            flags |= int(Flag.SENSOR_SUSPECT)
        for st in np.flatnonzero(now & int(LATCHING)):
            self._latch_station(int(st), int(now[st]), int(first[st]))
        self._flags = flags | self._latched_flags()

    def _latch_station(self, station: int, cause: int, marker: int) -> None:
        if not self._st_safe[station]:
            self._st_marker[station] = marker
        self._st_safe[station] = 1
        self._st_cause[station] |= cause

    def _latched_flags(self) -> int:
        """The flag bits the latches hold: line cause + SAFE_STATE, station causes + STATION_ISOLATED."""
        flags = 0
        if self._safe:
            flags |= self._safe_cause | int(Flag.SAFE_STATE)
        if self._st_safe.any():
            flags |= int(np.bitwise_or.reduce(self._st_cause)) | int(Flag.STATION_ISOLATED)
        return flags

    def _apply_station_outputs(self) -> None:
        """Per station: coolant, current limit (envelope) and, when isolated or the line is safe,
        the safe outputs on its zones. The total coolant is the sum over stations."""
        sp = self.setpoints
        isolated = (self._st_safe != 0) | self._safe
        demand = np.bincount(self._zst, weights=self._zone_q, minlength=self.fixture.n_stations)
        coolant = np.where(isolated, sp.coolant_max_lpm, np.minimum(demand, sp.coolant_max_lpm))
        env, warn, floor = self._env_degc, self._st_warning, sp.current_floor_frac
        margin = float(sp.envelope_margin_degc)
        start = warn - margin  # derate from m below the warning to the floor at it
        with np.errstate(all="ignore"):  # m = 0: the ramp is never chosen
            ramp = floor + (1.0 - floor) * ((warn - env) / margin)
        # the floor from the warning up to the isolation at the limit (OVER_TEMP)
        limit = np.where(env >= warn, floor, np.where(env <= start, 1.0, ramp))
        self._st_out["current_limit_frac"][:] = np.where(isolated, 0.0, limit)
        self._st_out["station_coolant_lpm"][:] = coolant
        safe_zone = isolated[self._zst]
        out = self._out
        out["relief1_kpa"][:] = np.where(safe_zone, sp.relief_max_kpa, out["relief1_kpa"])
        out["relief2_kpa"][:] = np.where(safe_zone, sp.relief_max_kpa, out["relief2_kpa"])
        out["coolant_area_mm2"][:] = np.where(safe_zone, self._area, out["coolant_area_mm2"])
        total = 0.0
        for value in coolant:  # station order, as in the kernel
            total += float(value)
        self._coolant_flow = total

    # ---- read-only views (overwritten by the next tick) ------------------------------------
    def _view(self, arr: np.ndarray) -> np.ndarray:
        view = arr.view()
        view.setflags(write=False)
        return view

    relief1_kpa = property(lambda self: self._view(self._out["relief1_kpa"]))
    relief2_kpa = property(lambda self: self._view(self._out["relief2_kpa"]))
    coolant_area_mm2 = property(lambda self: self._view(self._out["coolant_area_mm2"]))
    radius_mm = property(lambda self: self._view(self._out["radius_mm"]))
    correction = property(lambda self: self._view(self._out["correction"]))
    zone_trend_degc_per_s = property(lambda self: self._view(self._out["zone_trend_degc_per_s"]))
    delta_t_degc = property(lambda self: self._view(self._diag["delta_t_degc"]))
    rate_degc_per_s = property(lambda self: self._view(self._diag["rate_degc_per_s"]))
    severity_degc_per_s = property(lambda self: self._view(self._diag["severity_degc_per_s"]))
    mutation_slope_degc_per_s2 = property(
        lambda self: self._view(self._diag["mutation_slope_degc_per_s2"]))
    relief_holding = property(lambda self: self._view(self._holding))
    station_safe = property(lambda self: self._view(self._st_safe))
    station_cause = property(lambda self: self._view(self._st_cause))
    station_fault_marker = property(lambda self: self._view(self._st_marker))
    station_hot_degc = property(lambda self: self._view(self._st_out["station_hot_degc"]))
    current_limit_frac = property(lambda self: self._view(self._st_out["current_limit_frac"]))
    station_coolant_lpm = property(lambda self: self._view(self._st_out["station_coolant_lpm"]))
    coolant_flow_lpm = property(lambda self: self._coolant_flow)
    flags = property(lambda self: self._flags)
    safe_state = property(lambda self: self._safe)
    safe_cause = property(lambda self: self._safe_cause)
    fault_marker = property(lambda self: self._fault_marker)
    tick_count = property(lambda self: self._tick_count)

# cython: language_level=3
"""Compiled S14-S15 tick: the C functions of _tick.pxd and the Python wrapper `Kernel`.

Owns the nogil tick (rt_tick) and the state it keeps; `Kernel` checks shapes and dtypes, owns
every buffer (allocated once) and calls the C functions `with nogil`. The statement of the
tick is rtcore/README.md; the reference twin is rtcore/twin.py, with the same names, and the
sums here run in the twin's order. Tests: tests/rtcore/ (run over both implementations).
"""

import numpy as np

from libc.math cimport isfinite, sqrt, tanh

from rtcore._clock import Periodic, monotonic_ns, request_realtime, sleep_until_ns
from rtcore.spec import EXTERNAL_FAULTS, STATION_FAULTS, Config, Fixture, Setpoints

__all__ = ["Kernel", "Periodic", "monotonic_ns", "request_realtime", "sleep_until_ns"]

cdef double PI = 3.141592653589793
cdef int COUNT_CAP = 1 << 30
cdef double TREND_EPS_DEGC_PER_S = 1e-6
cdef double PRESSURE_EPS_KPA_PER_S = 1e-6

C_FLAGS = {
    "STATION_ISOLATED": RT_STATION_ISOLATED,
    "RELIEF_ACTIVE": RT_RELIEF_ACTIVE, "SAFE_STATE": RT_SAFE_STATE, "DTDT_ALARM": RT_DTDT_ALARM,
    "SENSOR_NONFINITE": RT_SENSOR_NONFINITE, "SENSOR_OUT_OF_RANGE": RT_SENSOR_OUT_OF_RANGE,
    "SENSOR_STUCK": RT_SENSOR_STUCK, "PRESSURE_NONFINITE": RT_PRESSURE_NONFINITE,
    "LINK_LOST": RT_LINK_LOST, "OVERRUN_STREAK": RT_OVERRUN_STREAK, "EXCEPTION": RT_EXCEPTION,
    "DTDT_PENDING": RT_DTDT_PENDING, "SENSOR_SUSPECT": RT_SENSOR_SUSPECT, "OVER_TEMP": RT_OVER_TEMP,
}
C_STATUS = {"OK": RT_OK, "BAD_FAULT_CODE": RT_BAD_FAULT_CODE, "BAD_SETPOINT": RT_BAD_SETPOINT,
            "BAD_STATION": RT_BAD_STATION}
cdef unsigned int EXTERNAL = RT_LINK_LOST | RT_OVERRUN_STREAK | RT_EXCEPTION
cdef unsigned int STATION_LOCAL = (RT_DTDT_ALARM | RT_OVER_TEMP | RT_SENSOR_NONFINITE
                                   | RT_SENSOR_OUT_OF_RANGE | RT_SENSOR_STUCK | RT_PRESSURE_NONFINITE)
cdef unsigned int LATCHING = STATION_LOCAL | EXTERNAL


# ---- small inline helpers -------------------------------------------------------------------
cdef inline int bump(int count) noexcept nogil:
    return count + 1 if count < COUNT_CAP else COUNT_CAP


cdef inline int slot(int j, int age, int h) noexcept nogil:
    cdef int s = (j - age) % h
    return s + h if s < 0 else s


cdef inline double dmin(double a, double b) noexcept nogil:
    return a if a < b else b


cdef inline double dmax(double a, double b) noexcept nogil:
    return a if a > b else b


# ---- the C API ---------------------------------------------------------------------------------
cdef int rt_set_setpoints(rt_state* s, const rt_setpoints* sp, const double* hotspot_ratio,
                          const double* st_theta, const int* st_k, const double* st_warning,
                          const double* st_limit) noexcept nogil:
    cdef int zi, i, st, kmax = 1
    if not (0 < sp.cooling_efficiency <= 1 and sp.relief_max_kpa > 0 and sp.coolant_max_lpm > 0
            and 0 <= sp.correction_gain <= 1 and 0 <= sp.current_floor_frac <= 1
            and sp.envelope_hysteresis_degc >= 0 and sp.envelope_margin_degc >= 0
            and sp.relief_hold_ticks >= 0):
        return RT_BAD_SETPOINT
    for st in range(s.ns):  # everything is checked before anything is taken
        if not (st_theta[st] > 0 and 1 <= st_k[st] <= s.h - 1
                and s.temp_min_degc <= st_warning[st] < st_limit[st] <= s.temp_max_degc
                and st_warning[st] - sp.envelope_margin_degc >= s.temp_min_degc):
            return RT_BAD_SETPOINT
        if st_k[st] > kmax:
            kmax = st_k[st]
    s.sp = sp[0]
    s.sp.kmax = kmax
    for zi in range(s.z):
        s.hotspot_ratio[zi] = hotspot_ratio[zi]
    for st in range(s.ns):
        s.st_theta[st] = st_theta[st]
        s.st_k[st] = st_k[st]
        s.st_warning[st] = st_warning[st]
        s.st_limit[st] = st_limit[st]
    for i in range(s.n):
        st = s.marker_station[i]
        s.m_theta[i] = st_theta[st]
        s.m_k[i] = st_k[st]
        s.m_limit[i] = st_limit[st]
        s.m_rtheta[i] = st_theta[st] / (<double>st_k[st] * s.period_s)
    for zi in range(s.z):
        st = s.zone_station[zi]
        s.z_rtheta[zi] = st_theta[st] / (<double>st_k[st] * s.period_s)
    return RT_OK


cdef int rt_raise_fault(rt_state* s, unsigned int code) noexcept nogil:
    if code == 0 or (code & ~EXTERNAL) != 0:
        return RT_BAD_FAULT_CODE
    if not s.safe:
        s.fault_marker = -1
    s.safe = 1
    s.safe_cause |= code
    s.flags |= code | RT_SAFE_STATE
    apply_station_outputs(s)
    return RT_OK


cdef int rt_isolate_station(rt_state* s, int station, unsigned int cause, int marker) noexcept nogil:
    if station < 0 or station >= s.ns:
        return RT_BAD_STATION
    if cause == 0 or (cause & ~STATION_LOCAL) != 0:
        return RT_BAD_FAULT_CODE
    if not (marker == -1 or (0 <= marker < s.n and s.marker_station[marker] == station)):
        return RT_BAD_STATION
    latch_station(s, station, cause, marker)
    s.flags |= cause | RT_STATION_ISOLATED
    apply_station_outputs(s)
    return RT_OK


cdef int rt_reset(rt_state* s) noexcept nogil:
    cdef int st
    s.safe = 0
    s.safe_cause = 0
    s.fault_marker = -1
    for st in range(s.ns):
        s.station_safe[st] = 0
        s.station_cause[st] = 0
        s.station_fault_marker[st] = -1
    s.flags = 0
    return RT_OK


cdef int rt_reset_station(rt_state* s, int station) noexcept nogil:
    if station < 0 or station >= s.ns:
        return RT_BAD_STATION
    s.station_safe[station] = 0
    s.station_cause[station] = 0
    s.station_fault_marker[station] = -1
    s.flags = latched_flags(s)
    return RT_OK


cdef int rt_restart_station_history(rt_state* s, int station) noexcept nogil:
    if station < 0 or station >= s.ns:
        return RT_BAD_STATION
    s.new_module[station] = 1
    return RT_OK


cdef void reprime_stations(rt_state* s) noexcept nogil:
    """The history of each station with a new module, primed with this tick's readings."""
    cdef int i, zi, a, st
    cdef bint any_new = False
    for st in range(s.ns):
        any_new = any_new or s.new_module[st] != 0
    if not any_new:
        return
    for i in range(s.n):
        if s.new_module[s.marker_station[i]]:
            for a in range(s.h):
                s.temp_ring[a * s.n + i] = s.last_good[i]
                s.rate_ring[a * s.n + i] = 0.0
            s.cnt_alarm[i] = 0
    for zi in range(s.z):
        if s.new_module[s.zone_station[zi]]:
            for a in range(s.h):
                s.press_ring[a * s.z + zi] = s.last_good_p[zi]
                s.trend_ring[a * s.z + zi] = 0.0
            s.cnt_quiet[zi] = 0
            s.holding[zi] = 0
            for a in range(4):
                s.held[a * s.z + zi] = 0.0
    for st in range(s.ns):
        if s.new_module[st]:
            s.env_degc[st] = s.temp_min_degc
            s.new_module[st] = 0


cdef int rt_tick(rt_state* s, const double* temp_degc, const double* pressure_kpa) noexcept nogil:
    cdef int j = <int>(s.tick_count % s.h)
    cdef int zi, i, st
    cdef double hot
    for zi in range(s.h):  # ring slot of each age, once per tick
        s.slots[zi] = slot(j, zi, s.h)
    sanitize(s, temp_degc, pressure_kpa, j)
    rates_and_mutation(s, j)
    relief1(s)
    for zi in range(s.z):
        if s.wsum[zi] > 0.0:
            s.correction[zi] = correction(s, j, zi)
            s.relief2_kpa[zi] = dmin(s.relief1_kpa[zi] * s.correction[zi], s.sp.relief_max_kpa)
            s.coolant_area_mm2[zi] = s.cover[zi] * (s.relief2_kpa[zi] / s.sp.relief_max_kpa)
        else:
            s.correction[zi] = 1.0
            s.relief2_kpa[zi] = 0.0
            s.coolant_area_mm2[zi] = 0.0
        s.zone_q[zi] = (s.sp.coolant_gain * (s.coolant_area_mm2[zi] / 100.0)) * s.zmax[zi] \
            / s.sp.cooling_efficiency
        s.zone_hot[zi] = s.temp_min_degc
    for i in range(s.n):
        zi = s.zone[i]
        s.zone_hot[zi] = dmax(s.zone_hot[zi], s.temp_ring[j * s.n + i])
    hold_relief(s)
    for st in range(s.ns):
        s.station_hot[st] = s.temp_min_degc
    for zi in range(s.z):
        st = s.zone_station[zi]
        s.station_hot[st] = dmax(s.station_hot[st], s.zone_hot[zi])
    for st in range(s.ns):  # the envelope's level: a play of width h on the hottest marker
        hot = s.station_hot[st]
        s.env_degc[st] = dmax(hot, dmin(s.env_degc[st], hot + s.sp.envelope_hysteresis_degc))
    diagnose(s)
    apply_station_outputs(s)
    s.tick_count += 1
    return RT_OK


# ---- the steps of the tick -------------------------------------------------------------------
cdef void sanitize(rt_state* s, const double* temp, const double* press, int j) noexcept nogil:
    """Hold-last-good, debounce counters, then write slot j of the temperature/pressure rings."""
    cdef int i, zi, a
    cdef double x, v
    cdef bint finite, valid
    for i in range(s.n):
        x = temp[i]
        finite = isfinite(x)
        valid = finite and x >= s.temp_min_degc and x <= s.temp_max_degc
        s.cnt_nonfinite[i] = 0 if finite else bump(s.cnt_nonfinite[i])
        s.cnt_oor[i] = bump(s.cnt_oor[i]) if (finite and not valid) else 0
        s.cnt_stuck[i] = bump(s.cnt_stuck[i]) if (valid and x == s.last_raw[i]) else 0
        s.cnt_hot[i] = bump(s.cnt_hot[i]) if (valid and x >= s.m_limit[i]) else 0
        if valid:
            s.last_raw[i] = x
            s.last_good[i] = x
    for zi in range(s.z):
        x = press[zi]
        if isfinite(x):
            s.cnt_pnan[zi] = 0
            s.last_good_p[zi] = dmin(dmax(x, 0.0), s.pressure_max_kpa)
        else:
            s.cnt_pnan[zi] = bump(s.cnt_pnan[zi])
    if not s.primed:
        for a in range(s.h):
            for i in range(s.n):
                s.temp_ring[a * s.n + i] = s.last_good[i]
                s.rate_ring[a * s.n + i] = 0.0
            for zi in range(s.z):
                s.press_ring[a * s.z + zi] = s.last_good_p[zi]
                s.trend_ring[a * s.z + zi] = 0.0
        s.primed = 1
    reprime_stations(s)
    for i in range(s.n):
        s.temp_ring[j * s.n + i] = s.last_good[i]
    for zi in range(s.z):
        s.press_ring[j * s.z + zi] = s.last_good_p[zi]


cdef bint rates_and_mutation(rt_state* s, int j) noexcept nogil:
    """ΔT, rate, GB 38031 rate counter, zone trend; mutation line and severity of hot markers.
    θ and K are those of each marker's station."""
    cdef int n = s.n, m = s.alarm_window, i, zi, a, k
    cdef int s1 = s.slots[1], sm = s.slots[m]
    cdef double dt = s.period_s, ts, d, r, r1
    cdef double s0, sx, sxx, sr, sxr, tau, ra, rb, det, slope, proj
    cdef bint any_hot = False
    for zi in range(s.z):
        s.zone_trend[zi] = 0.0
    for i in range(n):
        k = s.m_k[i]
        ts = s.temp_ring[j * n + i]
        d = ts - s.temp_ring[s.slots[k] * n + i]
        r = d / (k * dt)
        s.rate_ring[j * n + i] = r
        s.delta_t[i] = d
        s.rate[i] = r
        r1 = (ts - s.temp_ring[sm * n + i]) / (m * dt)
        s.cnt_alarm[i] = bump(s.cnt_alarm[i]) if r1 >= s.alarm_rate_degc_per_s else 0
        s.zone_trend[s.zone[i]] += (ts - s.temp_ring[s1 * n + i]) / dt
    for zi in range(s.z):
        s.zone_trend[zi] = s.zone_trend[zi] / s.zone_count[zi] if s.zone_count[zi] > 0 else 0.0
        s.trend_ring[j * s.z + zi] = s.zone_trend[zi]
    # the fit sums, time-major (cache-friendly); per marker they add in the order a = 0..K-1
    cdef double* s0v = s.fit
    cdef double* sxv = s.fit + n
    cdef double* sxxv = s.fit + 2 * n
    cdef double* srv = s.fit + 3 * n
    cdef double* sxrv = s.fit + 4 * n
    cdef const double* row_a
    cdef const double* row_b
    for i in range(5 * n):
        s.fit[i] = 0.0
    for i in range(n):
        if s.delta_t[i] >= s.m_theta[i]:
            any_hot = True
    if not any_hot:
        for i in range(n):
            s.severity[i] = 0.0
            s.slope[i] = 0.0
        return False
    for a in range(s.sp.kmax):
        row_a = s.rate_ring + s.slots[a] * n
        row_b = s.rate_ring + s.slots[a + 1] * n
        tau = <double>(-a)
        for i in range(n):
            ra = row_a[i]
            if (a < s.m_k[i] and s.delta_t[i] >= s.m_theta[i]
                    and (ra >= s.m_rtheta[i] or ra - row_b[i] >= s.sp.jump_degc_per_s)):
                s0v[i] += 1.0
                sxv[i] += tau
                sxxv[i] += tau * tau
                srv[i] += ra
                sxrv[i] += tau * ra
    for i in range(n):
        s.severity[i] = 0.0
        s.slope[i] = 0.0
        if not s.delta_t[i] >= s.m_theta[i]:
            continue
        s0, sx, sxx, sr, sxr = s0v[i], sxv[i], sxxv[i], srv[i], sxrv[i]
        r = s.rate[i]
        slope = 0.0
        if s0 >= 2.0:
            det = s0 * sxx - sx * sx
            slope = (s0 * sxr - sx * sr) / det
            proj = (sr - slope * sx) / s0 + slope * s.m_k[i]
        elif s0 >= 1.0:
            proj = sr
        else:
            proj = r
        s.severity[i] = proj if proj > r else r
        s.slope[i] = slope / dt
    return any_hot


cdef void relief1(rt_state* s) noexcept nogil:
    """Relief radius (hotspot ratio + position map) and first relief per zone."""
    cdef int i, zi
    cdef double w, dx, dy, radius, circle, frac
    for zi in range(s.z):
        s.wsum[zi] = 0.0; s.xsum[zi] = 0.0; s.ysum[zi] = 0.0; s.dsum[zi] = 0.0; s.zmax[zi] = 0.0
    for i in range(s.n):
        if s.delta_t[i] >= s.m_theta[i]:
            zi = s.zone[i]
            w = s.delta_t[i] / s.m_theta[i]
            s.wsum[zi] += w
            s.xsum[zi] += w * s.x_mm[i]
            s.ysum[zi] += w * s.y_mm[i]
            if s.severity[i] > s.zmax[zi]:
                s.zmax[zi] = s.severity[i]
    for zi in range(s.z):  # xsum/ysum become the centroid
        if s.wsum[zi] > 0.0:
            s.xsum[zi] = s.xsum[zi] / s.wsum[zi]
            s.ysum[zi] = s.ysum[zi] / s.wsum[zi]
    for i in range(s.n):
        if s.delta_t[i] >= s.m_theta[i]:
            zi = s.zone[i]
            dx = s.x_mm[i] - s.xsum[zi]
            dy = s.y_mm[i] - s.ysum[zi]
            s.dsum[zi] += (s.delta_t[i] / s.m_theta[i]) * (dx * dx + dy * dy)
    for zi in range(s.z):
        if s.wsum[zi] > 0.0:
            radius = dmin(s.sp.radius_min_mm + s.hotspot_ratio[zi] * s.sp.radius_ref_mm
                          + sqrt(s.dsum[zi] / s.wsum[zi]), s.sp.radius_max_mm)
            circle = PI * radius * radius
            frac = dmin(circle / s.area_mm2[zi], 1.0)
            s.cover[zi] = dmin(circle, s.area_mm2[zi])
            s.radius_mm[zi] = radius
            s.relief1_kpa[zi] = dmin(s.sp.relief_gain * frac * s.zmax[zi], s.sp.relief_max_kpa)
        else:
            s.cover[zi] = 0.0
            s.radius_mm[zi] = 0.0
            s.relief1_kpa[zi] = 0.0


cdef void hold_relief(rt_state* s) noexcept nogil:
    """Relief hysteresis (README, step 15): an active zone holds the running maximum of its
    outputs until it has been inactive relief_hold_ticks in a row and its hottest marker is
    under relief_release_degc."""
    cdef int zi, z = s.z
    cdef bint active, hold
    cdef double rmax = s.sp.relief_max_kpa
    for zi in range(z):
        active = s.wsum[zi] > 0.0
        s.cnt_quiet[zi] = 0 if active else bump(s.cnt_quiet[zi])
        hold = active or (s.holding[zi] != 0 and not (s.cnt_quiet[zi] >= s.sp.relief_hold_ticks
                                                      and s.zone_hot[zi] < s.sp.relief_release_degc))
        s.holding[zi] = 1 if hold else 0
        if hold:
            s.relief1_kpa[zi] = dmin(dmax(s.relief1_kpa[zi], s.held[zi]), rmax)
            s.relief2_kpa[zi] = dmin(dmax(s.relief2_kpa[zi], s.held[z + zi]), rmax)
            s.coolant_area_mm2[zi] = dmax(s.coolant_area_mm2[zi], s.held[2 * z + zi])
            s.zone_q[zi] = dmax(s.zone_q[zi], s.held[3 * z + zi])
            s.held[zi] = s.relief1_kpa[zi]
            s.held[z + zi] = s.relief2_kpa[zi]
            s.held[2 * z + zi] = s.coolant_area_mm2[zi]
            s.held[3 * z + zi] = s.zone_q[zi]
        else:
            s.held[zi] = 0.0
            s.held[z + zi] = 0.0
            s.held[2 * z + zi] = 0.0
            s.held[3 * z + zi] = 0.0


cdef double correction(rt_state* s, int j, int zi) noexcept nogil:
    """φ = 1ᵀ PS 1 / M, PS = I + κ(FT − I), FT = I + (f1 f2ᵀ ∘ exp(−λD))/M (README.md)."""
    cdef int win = s.corr_window, lags = s.corr_lags, h = s.h, nz = s.z, k, lag, mm, d
    cdef double dt = s.period_s
    cdef double r_theta = s.z_rtheta[zi]
    cdef double mu = 0.0, suu = 0.0, ubar, mq, sqq, squ, dq, u_k, coeff, total = 0.0
    cdef double f1[RT_MAX_LAGS]
    cdef double f2[RT_MAX_LAGS]
    for k in range(win):
        mu += s.trend_ring[s.slots[k] * nz + zi]
    mu = mu / win
    for k in range(win):
        u_k = s.trend_ring[s.slots[k] * nz + zi] - mu
        suu += u_k * u_k
    for lag in range(lags):
        ubar = 0.0
        mq = 0.0
        for k in range(win):
            ubar += s.trend_ring[s.slots[k + lag] * nz + zi]
            mq += (s.press_ring[s.slots[k + lag] * nz + zi]
                   - s.press_ring[s.slots[k + lag + 1] * nz + zi]) / dt
        ubar = ubar / win
        mq = mq / win
        sqq = 0.0
        squ = 0.0
        for k in range(win):
            dq = (s.press_ring[s.slots[k + lag] * nz + zi]
                  - s.press_ring[s.slots[k + lag + 1] * nz + zi]) / dt - mq
            sqq += dq * dq
            squ += dq * (s.trend_ring[s.slots[k] * nz + zi] - mu)
        if (suu <= win * (TREND_EPS_DEGC_PER_S * TREND_EPS_DEGC_PER_S)
                or sqq <= win * (PRESSURE_EPS_KPA_PER_S * PRESSURE_EPS_KPA_PER_S)):
            coeff = 0.0
        else:
            coeff = dmin(dmax(squ / sqrt(suu * sqq), -1.0), 1.0)
        f2[lag] = coeff
        f1[lag] = tanh(ubar / r_theta)
    for lag in range(lags):
        for mm in range(lags):
            d = lag - mm if lag >= mm else mm - lag
            total += f1[lag] * f2[mm] * s.sp.decay[d]
    return 1.0 + s.sp.correction_gain * (total / (<double>lags * lags))


cdef void diagnose(rt_state* s) noexcept nogil:
    """Conditions per marker and zone, gathered per station; station-local causes latch their
    station (its first bad marker, or -1 for a zone cause)."""
    cdef int i, zi, st
    cdef unsigned int cause = 0, c, flags
    cdef bint pending = False, suspect = False, relief_active = False
    for st in range(s.ns):
        s.st_now[st] = 0
        s.st_first[st] = -1
    for i in range(s.n):
        c = 0
        if s.cnt_nonfinite[i] >= s.nonfinite_debounce:
            c |= RT_SENSOR_NONFINITE
        if s.cnt_oor[i] >= s.oor_debounce:
            c |= RT_SENSOR_OUT_OF_RANGE
        if s.cnt_stuck[i] >= s.stuck_debounce:
            c |= RT_SENSOR_STUCK
        if s.cnt_alarm[i] >= s.alarm_debounce:
            c |= RT_DTDT_ALARM
        if s.cnt_hot[i] >= s.over_temp_debounce:
            c |= RT_OVER_TEMP
        if c:
            st = s.marker_station[i]
            s.st_now[st] |= c
            if s.st_first[st] < 0:
                s.st_first[st] = i
            cause |= c
        if s.cnt_alarm[i] > 0:
            pending = True
        if s.cnt_nonfinite[i] > 0 or s.cnt_oor[i] > 0:
            suspect = True
    for zi in range(s.z):
        if s.cnt_pnan[zi] >= s.nonfinite_debounce:
            s.st_now[s.zone_station[zi]] |= RT_PRESSURE_NONFINITE
            cause |= RT_PRESSURE_NONFINITE
        if s.cnt_pnan[zi] > 0:
            suspect = True
        if s.holding[zi]:
            relief_active = True
    flags = cause
    if relief_active:
        flags |= RT_RELIEF_ACTIVE
    if pending and not (cause & RT_DTDT_ALARM):
        flags |= RT_DTDT_PENDING
    if suspect:
        flags |= RT_SENSOR_SUSPECT
    for st in range(s.ns):
        if s.st_now[st] & LATCHING:
            latch_station(s, st, s.st_now[st], s.st_first[st])
    s.flags = flags | latched_flags(s)


cdef inline void latch_station(rt_state* s, int st, unsigned int cause, int marker) noexcept nogil:
    if not s.station_safe[st]:
        s.station_fault_marker[st] = marker
    s.station_safe[st] = 1
    s.station_cause[st] |= cause


cdef unsigned int latched_flags(rt_state* s) noexcept nogil:
    """Line cause + SAFE_STATE if the line is latched; station causes + STATION_ISOLATED."""
    cdef unsigned int flags = 0
    cdef int st
    if s.safe:
        flags |= s.safe_cause | RT_SAFE_STATE
    for st in range(s.ns):
        if s.station_safe[st]:
            flags |= s.station_cause[st] | RT_STATION_ISOLATED
    return flags


cdef void apply_station_outputs(rt_state* s) noexcept nogil:
    """Per station: coolant, current limit (the envelope) and, when isolated or the line is
    safe, the safe outputs on its zones; the total coolant is the sum over stations."""
    cdef int zi, st
    cdef double total = 0.0, env, start, warn, floor = s.sp.current_floor_frac
    cdef double margin = s.sp.envelope_margin_degc
    for st in range(s.ns):
        s.station_coolant[st] = 0.0
    for zi in range(s.z):
        s.station_coolant[s.zone_station[zi]] += s.zone_q[zi]
    for st in range(s.ns):
        if s.safe or s.station_safe[st]:
            s.station_coolant[st] = s.sp.coolant_max_lpm
            s.current_limit[st] = 0.0
        else:
            s.station_coolant[st] = dmin(s.station_coolant[st], s.sp.coolant_max_lpm)
            env, warn = s.env_degc[st], s.st_warning[st]
            start = warn - margin  # derate from m below the warning to the floor at it
            if env >= warn:  # the floor from the warning up to the isolation at the limit
                s.current_limit[st] = floor
            elif env <= start:  # m = 0: every env below the warning
                s.current_limit[st] = 1.0
            else:  # start < env < warn, so margin > 0 here
                s.current_limit[st] = floor + (1.0 - floor) * ((warn - env) / margin)
        total += s.station_coolant[st]
    for zi in range(s.z):
        if s.safe or s.station_safe[s.zone_station[zi]]:
            s.relief1_kpa[zi] = s.sp.relief_max_kpa
            s.relief2_kpa[zi] = s.sp.relief_max_kpa
            s.coolant_area_mm2[zi] = s.area_mm2[zi]
    s.coolant_flow_lpm = total


# ---- the Python wrapper -------------------------------------------------------------------------
cdef double* dptr(object arr) except NULL:
    cdef double[::1] mv = arr
    return &mv[0]


cdef int* iptr(object arr) except NULL:
    cdef int[::1] mv = arr
    return &mv[0]


cdef unsigned int* uptr(object arr) except NULL:
    cdef unsigned int[::1] mv = arr
    return &mv[0]


cdef unsigned char* bptr(object arr) except NULL:
    cdef unsigned char[::1] mv = arr
    return &mv[0]


def _checked(values, Py_ssize_t size, str name):
    if (not isinstance(values, np.ndarray) or values.dtype != np.float64
            or values.shape != (size,) or not values.flags.c_contiguous):
        arr = np.asarray(values)
        raise ValueError(f"{name}: expected a C-contiguous float64 array of shape ({size},), "
                         f"got {arr.dtype} {arr.shape}")
    return values


cdef class Kernel:
    """The S14-S15 tick over N marker points, Z pressure zones and S stations (README.md)."""

    cdef rt_state s
    cdef readonly dict _buf
    cdef readonly object config
    cdef readonly object fixture
    cdef readonly object setpoints

    def __init__(self, config, fixture, setpoints=None):
        if fixture.n_markers != config.n_markers or fixture.n_zones != config.n_zones:
            raise ValueError(
                f"Fixture: has {fixture.n_markers} markers / {fixture.n_zones} zones, "
                f"Config says {config.n_markers} / {config.n_zones}")
        self.config = config
        self.fixture = fixture
        n, z, h = config.n_markers, config.n_zones, config.history_ticks
        ns = fixture.n_stations
        zone = np.ascontiguousarray(fixture.marker_zone, dtype=np.int32)
        b = {
            "x": np.array(fixture.marker_xy_mm[:, 0], dtype=np.float64),  # writable copies
            "y": np.array(fixture.marker_xy_mm[:, 1], dtype=np.float64),
            "zone": zone.copy(),
            "zone_station": np.array(fixture.zone_station, dtype=np.int32),
            "marker_station": np.array(fixture.marker_station, dtype=np.int32),
            "area": np.ascontiguousarray(fixture.zone_area_mm2, dtype=np.float64).copy(),
            "zone_count": np.bincount(zone, minlength=z).astype(np.float64),
            "ratio": np.zeros(z),
            "temp_ring": np.zeros(h * n), "rate_ring": np.zeros(h * n),
            "press_ring": np.zeros(h * z), "trend_ring": np.zeros(h * z),
            "last_good": np.full(n, float(config.ambient_degc)), "last_raw": np.full(n, np.nan),
            "last_good_p": np.zeros(z),
            "st_theta": np.zeros(ns), "st_k": np.ones(ns, np.int32), "st_warning": np.zeros(ns),
            "st_limit": np.zeros(ns), "m_theta": np.zeros(n), "m_k": np.ones(n, np.int32),
            "m_limit": np.zeros(n), "m_rtheta": np.zeros(n), "z_rtheta": np.zeros(z),
            "held": np.zeros(4 * z), "holding": np.zeros(z, np.uint8),
            "env_degc": np.full(ns, float(config.temp_min_degc)), "new_module": np.zeros(ns, np.uint8),
            "st_now": np.zeros(ns, np.uint32), "st_first": np.full(ns, -1, np.int32),
            "station_hot_degc": np.full(ns, float(config.ambient_degc)),
            "current_limit_frac": np.ones(ns), "station_coolant_lpm": np.zeros(ns),
            "station_safe": np.zeros(ns, np.uint8), "station_cause": np.zeros(ns, np.uint32),
            "station_fault_marker": np.full(ns, -1, np.int32),
        }
        for name in ("cnt_nonfinite", "cnt_oor", "cnt_stuck", "cnt_alarm", "cnt_hot"):
            b[name] = np.zeros(n, np.int32)
        b["cnt_pnan"] = np.zeros(z, np.int32)
        b["cnt_quiet"] = np.zeros(z, np.int32)
        b["slots"] = np.zeros(h, np.int32)
        b["fit"] = np.zeros(5 * n)
        for name in ("wsum", "xsum", "ysum", "dsum", "zmax", "cover", "zone_hot", "zone_q",
                     "relief1_kpa", "relief2_kpa", "coolant_area_mm2", "radius_mm", "correction",
                     "zone_trend_degc_per_s"):
            b[name] = np.zeros(z)
        for name in ("delta_t_degc", "rate_degc_per_s", "severity_degc_per_s",
                     "mutation_slope_degc_per_s2"):
            b[name] = np.zeros(n)
        self._buf = b
        cdef rt_state* s = &self.s
        s.n, s.z, s.ns, s.h = n, z, ns, h
        s.corr_window, s.corr_lags = config.corr_window_ticks, config.corr_lags
        s.alarm_window, s.alarm_debounce = config.alarm_window_ticks, config.alarm_debounce_ticks
        s.nonfinite_debounce = config.nonfinite_debounce_ticks
        s.oor_debounce = config.out_of_range_debounce_ticks
        s.stuck_debounce = config.stuck_debounce_ticks
        s.over_temp_debounce = config.over_temp_debounce_ticks
        s.period_s = config.period_s
        s.temp_min_degc, s.temp_max_degc = config.temp_min_degc, config.temp_max_degc
        s.pressure_max_kpa = config.pressure_max_kpa
        s.alarm_rate_degc_per_s = config.alarm_rate_degc_per_s
        s.x_mm, s.y_mm, s.zone = dptr(b["x"]), dptr(b["y"]), iptr(b["zone"])
        s.zone_station, s.marker_station = iptr(b["zone_station"]), iptr(b["marker_station"])
        s.area_mm2, s.zone_count = dptr(b["area"]), dptr(b["zone_count"])
        s.hotspot_ratio = dptr(b["ratio"])
        s.st_theta, s.st_k = dptr(b["st_theta"]), iptr(b["st_k"])
        s.st_warning, s.st_limit = dptr(b["st_warning"]), dptr(b["st_limit"])
        s.m_theta, s.m_k, s.m_limit = dptr(b["m_theta"]), iptr(b["m_k"]), dptr(b["m_limit"])
        s.m_rtheta, s.z_rtheta = dptr(b["m_rtheta"]), dptr(b["z_rtheta"])
        s.temp_ring, s.rate_ring = dptr(b["temp_ring"]), dptr(b["rate_ring"])
        s.press_ring, s.trend_ring = dptr(b["press_ring"]), dptr(b["trend_ring"])
        s.last_good, s.last_raw = dptr(b["last_good"]), dptr(b["last_raw"])
        s.last_good_p = dptr(b["last_good_p"])
        s.cnt_nonfinite, s.cnt_oor = iptr(b["cnt_nonfinite"]), iptr(b["cnt_oor"])
        s.cnt_stuck, s.cnt_alarm = iptr(b["cnt_stuck"]), iptr(b["cnt_alarm"])
        s.cnt_hot = iptr(b["cnt_hot"])
        s.cnt_pnan, s.slots = iptr(b["cnt_pnan"]), iptr(b["slots"])
        s.cnt_quiet, s.holding, s.held = iptr(b["cnt_quiet"]), bptr(b["holding"]), dptr(b["held"])
        s.env_degc = dptr(b["env_degc"])
        s.new_module = bptr(b["new_module"])
        s.fit = dptr(b["fit"])
        s.wsum, s.xsum, s.ysum = dptr(b["wsum"]), dptr(b["xsum"]), dptr(b["ysum"])
        s.dsum, s.zmax, s.cover = dptr(b["dsum"]), dptr(b["zmax"]), dptr(b["cover"])
        s.zone_hot, s.zone_q = dptr(b["zone_hot"]), dptr(b["zone_q"])
        s.st_now, s.st_first = uptr(b["st_now"]), iptr(b["st_first"])
        s.relief1_kpa, s.relief2_kpa = dptr(b["relief1_kpa"]), dptr(b["relief2_kpa"])
        s.coolant_area_mm2, s.radius_mm = dptr(b["coolant_area_mm2"]), dptr(b["radius_mm"])
        s.correction, s.zone_trend = dptr(b["correction"]), dptr(b["zone_trend_degc_per_s"])
        s.delta_t, s.rate = dptr(b["delta_t_degc"]), dptr(b["rate_degc_per_s"])
        s.severity, s.slope = dptr(b["severity_degc_per_s"]), dptr(b["mutation_slope_degc_per_s2"])
        s.station_hot, s.current_limit = dptr(b["station_hot_degc"]), dptr(b["current_limit_frac"])
        s.station_coolant = dptr(b["station_coolant_lpm"])
        s.station_safe, s.station_cause = bptr(b["station_safe"]), uptr(b["station_cause"])
        s.station_fault_marker = iptr(b["station_fault_marker"])
        s.coolant_flow_lpm = 0.0
        s.flags, s.safe_cause, s.safe, s.fault_marker, s.primed, s.tick_count = 0, 0, 0, -1, 0, 0
        self.set_setpoints(setpoints if setpoints is not None else Setpoints())

    def set_setpoints(self, setpoints):
        """Validate (ValueError naming the field) and take new setpoints from the next tick."""
        setpoints.check(self.config, self.fixture.n_stations)
        cdef rt_setpoints sp
        cdef int d, status
        sp.cooling_efficiency = setpoints.cooling_efficiency
        sp.relief_max_kpa = setpoints.relief_max_kpa
        sp.coolant_max_lpm = setpoints.coolant_max_lpm
        sp.radius_min_mm = setpoints.radius_min_mm
        sp.radius_ref_mm = setpoints.radius_ref_mm
        sp.radius_max_mm = setpoints.radius_max_mm
        sp.relief_gain = setpoints.relief_gain_kpa_per_degc_per_s
        sp.jump_degc_per_s = setpoints.mutation_jump_degc_per_s
        sp.correction_gain = setpoints.correction_gain
        sp.coolant_gain = setpoints.coolant_gain_lpm_per_cm2_degc_per_s
        sp.current_floor_frac = setpoints.current_floor_frac
        sp.envelope_hysteresis_degc = setpoints.envelope_hysteresis_degc
        sp.envelope_margin_degc = setpoints.envelope_margin_degc
        sp.relief_hold_ticks = setpoints.relief_hold_ticks(self.config)
        sp.relief_release_degc = setpoints.relief_release_degc
        sp.kmax = 1
        decay = setpoints.lag_decay(self.config)
        for d in range(RT_MAX_LAGS):
            sp.decay[d] = decay[d] if d < decay.size else 0.0
        ratio = np.array(setpoints.hotspot_ratio_array(self.config), dtype=np.float64)
        theta, ticks, warning, limit = setpoints.station_limit_arrays(self.config, self.fixture.n_stations)
        cdef const double* pr = dptr(ratio)
        cdef const double* pt = dptr(theta)
        cdef const int* pk = iptr(ticks)
        cdef const double* pw = dptr(warning)
        cdef const double* pl = dptr(limit)
        with nogil:
            status = rt_set_setpoints(&self.s, &sp, pr, pt, pk, pw, pl)
        if status != RT_OK:
            raise ValueError(f"Setpoints: refused by the kernel (status {status})")
        self.setpoints = setpoints

    def tick(self, temp_degc, pressure_kpa):
        """Run one tick on N temperatures and Z pressures; return the flags (also `.flags`)."""
        cdef const double[::1] t = _checked(temp_degc, self.s.n, "temp_degc")
        cdef const double[::1] p = _checked(pressure_kpa, self.s.z, "pressure_kpa")
        cdef int status
        with nogil:
            status = rt_tick(&self.s, &t[0], &p[0])
        if status != RT_OK:
            raise RuntimeError(f"rt_tick returned status {status}")
        return self.s.flags

    def raise_fault(self, code):
        """Latch the line's safe state for an external fault (LINK_LOST, OVERRUN_STREAK, EXCEPTION)."""
        code = int(code)
        if code <= 0 or code > 0xFFFFFFFF:
            raise ValueError(f"raise_fault: code {code:#x} is not a subset of {EXTERNAL_FAULTS!r}")
        cdef unsigned int c = code
        cdef int status
        with nogil:
            status = rt_raise_fault(&self.s, c)
        if status != RT_OK:
            raise ValueError(f"raise_fault: code {code:#x} is not a subset of {EXTERNAL_FAULTS!r}")

    def isolate_station(self, station, cause_bits, marker=-1):
        """Latch one station for station-local causes (e.g. restoring latches after a restart)."""
        station, cause, marker = int(station), int(cause_bits), int(marker)
        if not 0 <= station < self.s.ns:
            raise ValueError(f"isolate_station: station {station} is not in [0, {self.s.ns - 1}]")
        if cause <= 0 or cause & ~int(STATION_FAULTS):
            raise ValueError(f"isolate_station: cause {cause:#x} is not a subset of {STATION_FAULTS!r}")
        if not (marker == -1 or (0 <= marker < self.s.n and self.s.marker_station[marker] == station)):
            raise ValueError(f"isolate_station: marker {marker} is not -1 or a marker of station {station}")
        cdef int st = station, mk = marker, status
        cdef unsigned int c = cause
        with nogil:
            status = rt_isolate_station(&self.s, st, c, mk)
        if status != RT_OK:
            raise ValueError(f"isolate_station: refused by the kernel (status {status})")

    def reset(self):
        """Clear the line latch and every station latch. A fault that persists latches again at
        the next tick; the outputs stay as they are until then."""
        with nogil:
            rt_reset(&self.s)

    def reset_station(self, station):
        """Clear one station's latch; `flags` keep only the latches still held until the next tick."""
        station = int(station)
        if not 0 <= station < self.s.ns:
            raise ValueError(f"reset_station: station {station} is not in [0, {self.s.ns - 1}]")
        cdef int st = station
        with nogil:
            rt_reset_station(&self.s, st)

    def restart_station_history(self, station):
        """A new module is on the station: at the next tick its markers' and zones' history is
        primed with that tick's readings (ΔT 0, no trend), and its zones' relief hold, its rate
        alarm counts and its envelope level start afresh. The temperature step from one module to
        the next is not heat. Latches stay: an isolated station stays isolated until reset_station."""
        station = int(station)
        if not 0 <= station < self.s.ns:
            raise ValueError(f"restart_station_history: station {station} is not in [0, {self.s.ns - 1}]")
        cdef int st = station
        with nogil:
            rt_restart_station_history(&self.s, st)

    def _view(self, str name):
        view = self._buf[name].view()
        view.setflags(write=False)
        return view

    @property
    def relief1_kpa(self):
        return self._view("relief1_kpa")

    @property
    def relief2_kpa(self):
        return self._view("relief2_kpa")

    @property
    def coolant_area_mm2(self):
        return self._view("coolant_area_mm2")

    @property
    def radius_mm(self):
        return self._view("radius_mm")

    @property
    def correction(self):
        return self._view("correction")

    @property
    def zone_trend_degc_per_s(self):
        return self._view("zone_trend_degc_per_s")

    @property
    def delta_t_degc(self):
        return self._view("delta_t_degc")

    @property
    def rate_degc_per_s(self):
        return self._view("rate_degc_per_s")

    @property
    def severity_degc_per_s(self):
        return self._view("severity_degc_per_s")

    @property
    def mutation_slope_degc_per_s2(self):
        return self._view("mutation_slope_degc_per_s2")


    @property
    def relief_holding(self):
        return self._view("holding")

    @property
    def station_safe(self):
        return self._view("station_safe")

    @property
    def station_cause(self):
        return self._view("station_cause")

    @property
    def station_fault_marker(self):
        return self._view("station_fault_marker")

    @property
    def station_hot_degc(self):
        return self._view("station_hot_degc")

    @property
    def current_limit_frac(self):
        return self._view("current_limit_frac")

    @property
    def station_coolant_lpm(self):
        return self._view("station_coolant_lpm")

    @property
    def coolant_flow_lpm(self):
        return self.s.coolant_flow_lpm

    @property
    def flags(self):
        return self.s.flags

    @property
    def safe_state(self):
        return bool(self.s.safe)

    @property
    def safe_cause(self):
        return self.s.safe_cause

    @property
    def fault_marker(self):
        return self.s.fault_marker

    @property
    def tick_count(self):
        return self.s.tick_count

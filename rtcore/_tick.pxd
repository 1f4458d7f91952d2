# cython: language_level=3
# The C API of the compiled S14-S15 tick (rtcore/README.md defines every quantity).
# One state struct, the setpoints struct, four noexcept nogil functions returning a status
# code. The buffers the state points at are owned by the Python wrapper `Kernel` (_tick.pyx),
# allocated once at construction; the tick itself never allocates and never touches Python.

cdef enum:
    RT_MAX_LAGS = 32

# Status codes (= rtcore.spec.Status)
cdef enum:
    RT_OK = 0
    RT_BAD_FAULT_CODE = 1
    RT_BAD_SETPOINT = 2

# Flag bits (= rtcore.spec.Flag)
cdef enum:
    RT_RELIEF_ACTIVE = 1 << 0
    RT_SAFE_STATE = 1 << 1
    RT_DTDT_ALARM = 1 << 2
    RT_SENSOR_NONFINITE = 1 << 3
    RT_SENSOR_OUT_OF_RANGE = 1 << 4
    RT_SENSOR_STUCK = 1 << 5
    RT_PRESSURE_NONFINITE = 1 << 6
    RT_LINK_LOST = 1 << 7
    RT_OVERRUN_STREAK = 1 << 8
    RT_EXCEPTION = 1 << 9
    RT_DTDT_PENDING = 1 << 10
    RT_SENSOR_SUSPECT = 1 << 11
    RT_OVER_TEMP = 1 << 12

ctypedef struct rt_setpoints:
    double theta_degc            # ΔT threshold
    int check_ticks              # K: check interval in ticks
    double cooling_efficiency    # η in (0, 1]
    double relief_max_kpa
    double coolant_max_lpm
    double radius_min_mm
    double radius_ref_mm
    double radius_max_mm
    double relief_gain           # kPa per °C/s
    double jump_degc_per_s       # change test on the rate curve
    double correction_gain       # κ in [0, 1]
    double coolant_gain          # L/min per (cm²·°C/s)
    double temp_limit_degc       # maximum safety
    double decay[RT_MAX_LAGS]    # exp(-λ·d), d = 0..M-1

ctypedef struct rt_state:
    # structure (Config and Fixture)
    int n                        # marker points N
    int z                        # pressure zones Z
    int h                        # ring length H
    int corr_window              # L
    int corr_lags                # M
    int alarm_window             # ticks of the GB 38031 rate window
    int alarm_debounce
    int nonfinite_debounce
    int oor_debounce
    int stuck_debounce
    int over_temp_debounce
    double period_s
    double temp_min_degc
    double temp_max_degc
    double pressure_max_kpa
    double alarm_rate_degc_per_s
    const double* x_mm           # (N)
    const double* y_mm           # (N)
    const int* zone              # (N)
    const double* area_mm2       # (Z)
    const double* zone_count     # (Z) markers per zone
    double* hotspot_ratio        # (Z)
    rt_setpoints sp
    # ring buffers, slot-major: ring[slot * width + column]
    double* temp_ring            # (H, N) sanitized °C
    double* rate_ring            # (H, N) ΔT/(K·dt), °C/s
    double* press_ring           # (H, Z) sanitized kPa
    double* trend_ring           # (H, Z) zone mean step rate, °C/s
    double* last_good            # (N)
    double* last_raw             # (N)
    double* last_good_p          # (Z)
    int* cnt_nonfinite           # (N)
    int* cnt_oor                 # (N)
    int* cnt_stuck               # (N)
    int* cnt_alarm               # (N)
    int* cnt_hot                 # (N) ticks at or above temp_limit_degc
    int* cnt_pnan                # (Z)
    int* slots                   # (H) ring slot of each age, refreshed every tick
    # scratch: (5N) mutation-line sums; (Z) zone sums
    double* fit
    double* wsum
    double* xsum
    double* ysum
    double* dsum
    double* zmax
    double* cover
    # outputs (Z) and per-marker diagnostics (N)
    double* relief1_kpa
    double* relief2_kpa
    double* coolant_area_mm2
    double* radius_mm
    double* correction
    double* zone_trend
    double* delta_t
    double* rate
    double* severity
    double* slope
    double coolant_flow_lpm
    unsigned int flags
    unsigned int safe_cause
    int safe
    int fault_marker
    int primed
    long long tick_count

cdef int rt_set_setpoints(rt_state* s, const rt_setpoints* sp, const double* hotspot_ratio) noexcept nogil
cdef int rt_tick(rt_state* s, const double* temp_degc, const double* pressure_kpa) noexcept nogil
cdef int rt_raise_fault(rt_state* s, unsigned int code) noexcept nogil
cdef int rt_reset(rt_state* s) noexcept nogil

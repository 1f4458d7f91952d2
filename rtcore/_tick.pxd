# cython: language_level=3
# The C API of the compiled S14-S15 tick (rtcore/README.md defines every quantity).
# One state struct, the setpoints struct, six noexcept nogil functions returning a status
# code. The buffers the state points at are owned by the Python wrapper `Kernel` (_tick.pyx),
# allocated once at construction; the tick itself never allocates and never touches Python.

cdef enum:
    RT_MAX_LAGS = 32

# Status codes (= rtcore.spec.Status)
cdef enum:
    RT_OK = 0
    RT_BAD_FAULT_CODE = 1
    RT_BAD_SETPOINT = 2
    RT_BAD_STATION = 3

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
    RT_STATION_ISOLATED = 1 << 13

ctypedef struct rt_setpoints:
    double cooling_efficiency    # η in (0, 1]
    double relief_max_kpa
    double coolant_max_lpm       # per station
    double radius_min_mm
    double radius_ref_mm
    double radius_max_mm
    double relief_gain           # kPa per °C/s
    double jump_degc_per_s       # change test on the rate curve
    double correction_gain       # κ in [0, 1]
    double coolant_gain          # L/min per (cm²·°C/s)
    double current_floor_frac    # the envelope's limit from the warning up
    double envelope_hysteresis_degc
    double envelope_margin_degc  # the envelope starts at (warning - margin)
    int relief_hold_ticks        # quiet ticks before a held relief may release
    double relief_release_degc   # ... and the zone's hottest marker below this
    int kmax                     # largest check interval over the stations (set by rt_set_setpoints)
    double decay[RT_MAX_LAGS]    # exp(-λ·d), d = 0..M-1

ctypedef struct rt_state:
    # structure (Config and Fixture)
    int n                        # marker points N
    int z                        # pressure zones Z
    int ns                       # stations S
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
    const int* zone_station      # (Z)
    const int* marker_station    # (N)
    const double* area_mm2       # (Z)
    const double* zone_count     # (Z) markers per zone
    double* hotspot_ratio        # (Z)
    rt_setpoints sp
    # per-station limits (S) and their expansion per marker (N) / zone (Z), by rt_set_setpoints
    double* st_theta             # ΔT threshold θ, °C
    int* st_k                    # check interval K, ticks
    double* st_warning           # °C
    double* st_limit             # maximum safety, °C
    double* m_theta              # (N)
    int* m_k                     # (N)
    double* m_limit              # (N)
    double* m_rtheta             # (N) θ/(K·Δt), °C/s
    double* z_rtheta             # (Z)
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
    int* cnt_hot                 # (N) ticks at or above its station's temp limit
    int* cnt_pnan                # (Z)
    int* cnt_quiet               # (Z) ticks in a row with the zone inactive
    unsigned char* holding       # (Z) relief held (README, step 15)
    double* held                 # (4, Z) held relief1, relief2, coolant area, coolant demand
    double* env_degc             # (S) the envelope's level (hottest marker through the hysteresis)
    unsigned char* new_module    # (S) a new module: the station's history restarts at the next tick
    int* slots                   # (H) ring slot of each age, refreshed every tick
    # scratch: (5N) mutation-line sums; (Z) zone sums; (S) station conditions
    double* fit
    double* wsum
    double* xsum
    double* ysum
    double* dsum
    double* zmax
    double* cover
    double* zone_hot             # (Z) hottest sanitized marker of the zone
    double* zone_q               # (Z) coolant demand after the hold, L/min
    unsigned int* st_now         # (S) conditions of this tick
    int* st_first                # (S) first bad marker of this tick
    # outputs (Z), per-marker diagnostics (N), per-station outputs (S)
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
    double* station_hot
    double* current_limit
    double* station_coolant
    unsigned char* station_safe
    unsigned int* station_cause
    int* station_fault_marker
    double coolant_flow_lpm
    unsigned int flags
    unsigned int safe_cause      # the line latch
    int safe
    int fault_marker
    int primed
    long long tick_count

cdef int rt_set_setpoints(rt_state* s, const rt_setpoints* sp, const double* hotspot_ratio,
                          const double* st_theta, const int* st_k, const double* st_warning,
                          const double* st_limit) noexcept nogil
cdef int rt_tick(rt_state* s, const double* temp_degc, const double* pressure_kpa) noexcept nogil
cdef int rt_raise_fault(rt_state* s, unsigned int code) noexcept nogil
cdef int rt_isolate_station(rt_state* s, int station, unsigned int cause, int marker) noexcept nogil
cdef int rt_reset(rt_state* s) noexcept nogil
cdef int rt_reset_station(rt_state* s, int station) noexcept nogil
cdef int rt_restart_station_history(rt_state* s, int station) noexcept nogil

"""The station as the unit of isolation, per-station limits and the thermal envelope, over
kernel and twin. Fixture as on the bench: S stations x 2 zones x 4 markers (2 per zone), so
marker i is on zone i // 2 and station i // 4 (rtcore/README.md, "Stations")."""

import numpy as np
import pytest

import rtcore
from rtcore.spec import Config, Fixture, Flag, Setpoints, StationLimits

pytestmark = pytest.mark.unit
S = 4
Z, N = 2 * S, 4 * S
R_MAX, F_MAX = 200.0, 20.0


def bench_fixture(n_stations=S):
    n = 4 * n_stations
    idx = np.arange(n)
    xy = np.stack([idx * 30.0, np.zeros(n)], axis=1)
    return Fixture(xy, idx // 2, np.full(2 * n_stations, 1.0e4), np.arange(2 * n_stations) // 2)


def make(impl, setpoints=None, **config):
    return impl.Kernel(Config(n_markers=N, n_zones=Z, **config), bench_fixture(), setpoints or Setpoints())


def base(rng, level=30.0):
    return level + rng.normal(0.0, 0.01, N)  # never bit-identical: nothing looks stuck


P = np.full(Z, 300.0)


def test_fixture_stations():
    fix = bench_fixture()
    assert fix.n_stations == S and list(fix.zone_station) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(fix.marker_station) == [i // 4 for i in range(N)]
    old = Fixture(np.zeros((3, 2)), [0, 1, 1], [1.0, 1.0])  # no zone_station: a station per zone
    assert old.n_stations == 2 and list(old.zone_station) == [0, 1] and list(old.marker_station) == [0, 1, 1]
    with pytest.raises(ValueError, match="Fixture.zone_station"):
        Fixture(np.zeros((3, 2)), [0, 1, 1], [1.0, 1.0], [0])
    with pytest.raises(ValueError, match="Fixture.zone_station"):
        Fixture(np.zeros((3, 2)), [0, 1, 1], [1.0, 1.0], [0, 2])  # station 1 has no zone
    with pytest.raises(ValueError, match="Fixture.zone_station"):
        Fixture(np.zeros((3, 2)), [0, 1, 1], [1.0, 1.0], [0.0, 1.0])


def test_setpoints_validation_names_the_field():
    cfg = Config(n_markers=N, n_zones=Z)
    good = StationLimits(1.0, 2.0, 45.0, 55.0)
    Setpoints(station_limits=(good,) * S).check(cfg, S)
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits: must have 4 entries"):
        Setpoints(station_limits=(good,) * 3).check(cfg, S)
    bad = (good, StationLimits(1.0, 2.0, 56.0, 55.0), good, good)
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits\[1\]\.warning_degc"):
        Setpoints(station_limits=bad).check(cfg, S)
    bad = (good, good, good, StationLimits(1.0, 60.0, 45.0, 55.0))
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits\[3\]\.check_interval_s"):
        Setpoints(station_limits=bad).check(cfg, S)
    bad = (good, good, StationLimits(float("nan"), 2.0, 45.0, 55.0), good)
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits\[2\]\.delta_t_threshold_degc"):
        Setpoints(station_limits=bad).check(cfg, S)
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits\[0\]\.temp_limit_degc"):
        Setpoints(station_limits=(StationLimits(1.0, 2.0, 10.0, 20.0),) * S).check(cfg, S)
    with pytest.raises(ValueError, match=r"Setpoints\.warning_degc"):
        Setpoints(warning_degc=60.0).check(cfg)
    for floor in (1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"Setpoints\.current_floor_frac"):
            Setpoints(current_floor_frac=floor).check(cfg)
    Setpoints(current_floor_frac=0.0).check(cfg)
    Setpoints(current_floor_frac=1.0).check(cfg)
    with pytest.raises(ValueError, match=r"Setpoints\.envelope_hysteresis_degc"):
        Setpoints(envelope_hysteresis_degc=-0.1).check(cfg)
    with pytest.raises(ValueError, match=r"Setpoints\.relief_hold_s"):
        Setpoints(relief_hold_s=-1.0).check(cfg)
    for margin in (-0.1, float("nan"), float("inf"), 85.5):  # 45 - 85.5 < temp_min -40
        with pytest.raises(ValueError, match=r"Setpoints\.envelope_margin_degc"):
            Setpoints(envelope_margin_degc=margin).check(cfg)
    Setpoints(envelope_margin_degc=85.0).check(cfg)  # start exactly at temp_min: allowed
    Setpoints(envelope_margin_degc=0.0).check(cfg)
    low = (good, good, good, StationLimits(1.0, 2.0, -30.0, 55.0))
    Setpoints(station_limits=low, envelope_margin_degc=10.0).check(cfg, S)
    with pytest.raises(ValueError, match=r"Setpoints\.envelope_margin_degc.*station_limits\[3\]"):
        Setpoints(station_limits=low, envelope_margin_degc=10.5).check(cfg, S)
    with pytest.raises(ValueError, match=r"Setpoints\.relief_release_degc"):
        Setpoints(relief_release_degc=float("inf")).check(cfg)


def test_a_kernel_refuses_station_limits_of_another_count(impl):
    k = make(impl)
    with pytest.raises(ValueError, match=r"Setpoints\.station_limits"):
        k.set_setpoints(Setpoints(station_limits=(StationLimits(1.0, 2.0, 45.0, 55.0),) * (S + 1)))
    assert k.setpoints == Setpoints()


def test_a_hot_marker_isolates_its_own_station_only(impl):
    k = make(impl)
    rng = np.random.default_rng(1)
    for _ in range(25):
        k.tick(base(rng), P)
    assert list(k.current_limit_frac) == [1.0] * S and not k.station_safe.any()
    for t in range(3):  # marker 9 (zone 4, station 2) at 61 °C: OVER_TEMP after its 3-tick debounce
        temp = base(rng)
        temp[9] = 61.0
        flags = k.tick(temp, P)
        assert bool(flags & Flag.STATION_ISOLATED) == (t == 2)
    assert not k.safe_state and not flags & Flag.SAFE_STATE and flags & Flag.OVER_TEMP
    assert list(k.station_safe) == [0, 0, 1, 0]
    assert list(k.station_cause) == [0, 0, int(Flag.OVER_TEMP), 0]
    assert list(k.station_fault_marker) == [-1, -1, 9, -1]
    assert list(k.relief2_kpa) == [0, 0, 0, 0, R_MAX, R_MAX, 0, 0]
    assert list(k.coolant_area_mm2) == [0, 0, 0, 0, 1e4, 1e4, 0, 0]
    assert list(k.station_coolant_lpm) == [0, 0, F_MAX, 0] and k.coolant_flow_lpm == F_MAX
    assert list(k.current_limit_frac) == [1.0, 1.0, 0.0, 1.0]
    assert k.station_hot_degc[2] == 61.0
    for _ in range(40):  # the cell cools again: the station stays isolated, the others run on
        k.tick(base(rng), P)
    assert list(k.station_safe) == [0, 0, 1, 0] and list(k.current_limit_frac) == [1.0, 1.0, 0.0, 1.0]
    # the condition is gone; the latch keeps its cause in the flags
    assert k.flags & Flag.STATION_ISOLATED and k.flags & Flag.OVER_TEMP and not k.flags & Flag.SAFE_STATE


def test_a_line_fault_takes_every_station_safe(impl):
    k = make(impl)
    rng = np.random.default_rng(2)
    for _ in range(5):
        k.tick(base(rng), P)
    k.raise_fault(int(Flag.LINK_LOST))
    for _ in range(2):  # at once, and still after a tick
        assert k.safe_state and k.flags & Flag.SAFE_STATE and not k.flags & Flag.STATION_ISOLATED
        assert not k.station_safe.any() and k.safe_cause == Flag.LINK_LOST and k.fault_marker == -1
        assert np.all(k.relief1_kpa == R_MAX) and np.all(k.relief2_kpa == R_MAX)
        assert list(k.station_coolant_lpm) == [F_MAX] * S and k.coolant_flow_lpm == S * F_MAX
        assert list(k.current_limit_frac) == [0.0] * S
        k.tick(base(rng), P)
    k.reset()
    k.tick(base(rng), P)
    assert not k.safe_state and k.flags == 0 and list(k.current_limit_frac) == [1.0] * S
    assert np.all(k.relief2_kpa == 0) and k.coolant_flow_lpm == 0.0


def test_each_station_enforces_its_own_limits(impl):
    limits = (StationLimits(2.0, 2.0, 40.0, 50.0), StationLimits(2.0, 2.0, 45.0, 55.0),
              StationLimits(2.0, 2.0, 45.0, 60.0), StationLimits(2.0, 2.0, 45.0, 60.0))
    k = make(impl, Setpoints(station_limits=limits, envelope_hysteresis_degc=0.0))
    rng = np.random.default_rng(3)
    for _ in range(10):
        temp = base(rng)
        temp[1] = 52.0 + rng.normal(0, 0.01)  # station 0 (limit 50)
        temp[5] = 52.0 + rng.normal(0, 0.01)  # station 1 (limit 55)
        temp[9] = 52.0 + rng.normal(0, 0.01)  # station 2 (line-wide 60 in its entry)
        k.tick(temp, P)
    assert list(k.station_safe) == [1, 0, 0, 0]
    assert k.station_cause[0] == Flag.OVER_TEMP and k.station_fault_marker[0] == 1
    hot = k.station_hot_degc
    assert k.current_limit_frac[0] == 0.0
    # the default margin 5, floor 0.1: 52 is above both warnings (45): the floor, not isolated
    assert Setpoints().current_floor_frac == 0.1
    assert hot[1] > 45.0 and hot[2] > 45.0
    assert k.current_limit_frac[1] == 0.1 and k.current_limit_frac[2] == 0.1
    assert list(k.station_safe[1:]) == [0, 0, 0]
    assert k.current_limit_frac[3] == 1.0


def test_per_station_threshold_and_check_interval(impl):
    """The same 1.5 °C step is hot on a station with θ = 1 and not on one with θ = 2; a check
    interval of 1 s forgets it after 10 ticks, one of 3 s after 30."""
    limits = (StationLimits(1.0, 1.0, 45.0, 60.0), StationLimits(2.0, 2.0, 45.0, 60.0),
              StationLimits(1.0, 3.0, 45.0, 60.0), StationLimits(2.0, 2.0, 45.0, 60.0))
    k = make(impl, Setpoints(station_limits=limits, relief_hold_s=0.0, relief_release_degc=150.0))
    rng = np.random.default_rng(4)
    for _ in range(35):
        k.tick(base(rng), P)
    hot_ticks = {0: 0, 1: 0, 2: 0}
    for t in range(40):
        temp = base(rng)
        temp[[1, 5, 9]] += 1.5  # one marker each on stations 0, 1, 2
        k.tick(temp, P)
        for st, zone in ((0, 0), (1, 2), (2, 4)):
            hot_ticks[st] += int(k.relief2_kpa[zone] > 0)
    assert hot_ticks == {0: 10, 1: 0, 2: 30}


def test_envelope_ramp_below_the_warning_with_hysteresis(impl):
    # W 45, L 60, margin 5, floor 0.2, hysteresis 1: 1 at 40, linear to 0.2 at 45, then 0.2
    k = make(impl, Setpoints(delta_t_threshold_degc=50.0, current_floor_frac=0.2))
    rng = np.random.default_rng(5)

    def at(hottest):
        temp = base(rng)
        temp[13] = hottest  # station 3
        k.tick(temp, P)
        return k.current_limit_frac[3]

    def ramp(level):
        return 0.2 + 0.8 * (45.0 - level) / 5.0

    assert at(35.0) == 1.0
    assert at(40.0) == 1.0
    assert at(43.0) == pytest.approx(ramp(43.0), rel=1e-12)  # 0.52
    assert at(42.5) == pytest.approx(ramp(43.0), rel=1e-12)  # fell 0.5 < 1: held
    assert at(41.5) == pytest.approx(ramp(42.5), rel=1e-12)  # fell 1.5: rises, 1 K behind
    assert at(42.0) == pytest.approx(ramp(42.5), rel=1e-12)  # inside the band: held
    assert at(42.8) == pytest.approx(ramp(42.8), rel=1e-12)  # above it: follows at once
    assert at(39.0) == 1.0  # level 40: the start W - m
    assert at(45.0) == 0.2  # the warning: the floor
    assert at(44.5) == 0.2  # fell 0.5 < 1: held at the floor
    assert at(43.5) == pytest.approx(ramp(44.5), rel=1e-12)  # fell 1.5: 0.28
    assert at(59.9) == 0.2  # the floor from the warning up ...
    assert at(60.0) == 0.2  # ... to the limit, until OVER_TEMP confirms
    assert list(k.current_limit_frac[:3]) == [1.0, 1.0, 1.0] and not k.station_safe.any()
    at(60.0)
    assert at(60.0) == 0.0 and list(k.station_safe) == [0, 0, 0, 1]


def test_envelope_reaches_the_floor_at_the_warning(impl):
    # W 45, L 55, margin 5, floor 0.1, no hysteresis: 1 at 40, linear to 0.1 at 45, then 0.1
    sp = Setpoints(delta_t_threshold_degc=50.0, warning_degc=45.0, temp_limit_degc=55.0,
                   envelope_margin_degc=5.0, current_floor_frac=0.1, envelope_hysteresis_degc=0.0)
    assert Setpoints().envelope_margin_degc == 5.0 and Setpoints().current_floor_frac == 0.1
    k = make(impl, sp)
    rng = np.random.default_rng(6)

    def at(hottest):
        temp = base(rng)
        temp[13] = hottest  # station 3
        k.tick(temp, P)
        return k.current_limit_frac[3]

    assert at(30.0) == 1.0
    assert at(39.0) == 1.0
    assert at(40.0) == 1.0  # the start W - m: still 1
    assert at(42.5) == pytest.approx(0.55, rel=1e-12)  # halfway
    assert at(44.0) == pytest.approx(0.28, rel=1e-12)
    assert at(45.0) == pytest.approx(0.1, rel=1e-12)  # the floor at the warning
    assert at(50.0) == pytest.approx(0.1, rel=1e-12)  # held from the warning ...
    assert at(54.9) == pytest.approx(0.1, rel=1e-12)  # ... up to the limit
    assert at(55.0) == pytest.approx(0.1, rel=1e-12)  # the floor, until OVER_TEMP confirms
    assert at(30.0) == 1.0
    assert list(k.current_limit_frac[:3]) == [1.0, 1.0, 1.0] and not k.station_safe.any()


def test_envelope_margin_per_station_warning(impl):
    # the margin is line-wide; each station derates from its own warning minus it
    limits = (StationLimits(50.0, 2.0, 40.0, 50.0), StationLimits(50.0, 2.0, 45.0, 55.0),
              StationLimits(50.0, 2.0, 45.0, 60.0), StationLimits(50.0, 2.0, 45.0, 60.0))
    k = make(impl, Setpoints(station_limits=limits, envelope_margin_degc=4.0,
                             current_floor_frac=0.5, envelope_hysteresis_degc=0.0))
    temp = base(np.random.default_rng(7))
    temp[[1, 5, 9, 13]] = [38.0, 38.0, 41.0, 46.0]
    k.tick(temp, P)
    assert k.current_limit_frac[0] == pytest.approx(0.5 + 0.5 * 2.0 / 4.0, rel=1e-12)  # 36 .. 40
    assert k.current_limit_frac[1] == 1.0  # start 41
    assert k.current_limit_frac[2] == 1.0  # at the start 41
    assert k.current_limit_frac[3] == 0.5  # above its warning 45: the floor


def test_envelope_without_margin_is_a_step_at_the_warning(impl):
    # W 45, L 55, margin 0, floor 0.1, no hysteresis: 1 below the warning, 0.1 at or above it
    sp = Setpoints(delta_t_threshold_degc=50.0, warning_degc=45.0, temp_limit_degc=55.0,
                   envelope_margin_degc=0.0, current_floor_frac=0.1, envelope_hysteresis_degc=0.0)
    k = make(impl, sp)
    rng = np.random.default_rng(8)

    def at(hottest):
        temp = base(rng)
        temp[13] = hottest  # station 3
        k.tick(temp, P)
        return k.current_limit_frac[3]

    assert at(44.9) == 1.0
    assert at(45.0) == 0.1
    assert at(50.0) == 0.1
    assert at(54.9) == 0.1
    assert at(44.9) == 1.0
    assert not k.station_safe.any()


def test_station_coolant_is_the_sum_of_its_zones_capped(impl):
    k = make(impl, Setpoints(delta_t_threshold_degc=1.0, coolant_gain_lpm_per_cm2_degc_per_s=0.05))
    rng = np.random.default_rng(6)
    for _ in range(30):
        k.tick(base(rng), P)
    temp = base(rng)
    temp[[4, 6]] += 3.0  # zones 2 and 3: both zones of station 1
    k.tick(temp, P)
    assert k.relief2_kpa[2] > 0 and k.relief2_kpa[3] > 0
    assert k.station_coolant_lpm[1] > 0 and k.station_coolant_lpm[[0, 2, 3]].tolist() == [0, 0, 0]
    assert k.coolant_flow_lpm == k.station_coolant_lpm[1]
    strong = make(impl, Setpoints(delta_t_threshold_degc=1.0, coolant_gain_lpm_per_cm2_degc_per_s=10.0))
    for _ in range(30):
        strong.tick(base(rng), P)
    strong.tick(temp, P)
    assert strong.station_coolant_lpm[1] == F_MAX and strong.coolant_flow_lpm == F_MAX


def test_isolate_station_latches_at_once_and_is_validated(impl):
    k = make(impl)
    rng = np.random.default_rng(7)
    k.tick(base(rng), P)
    for args in ((-1, int(Flag.OVER_TEMP)), (S, int(Flag.OVER_TEMP)), (1, 0),
                 (1, int(Flag.LINK_LOST)), (1, int(Flag.OVER_TEMP | Flag.RELIEF_ACTIVE)),
                 (1, int(Flag.STATION_ISOLATED)), (1, int(Flag.OVER_TEMP), 3),
                 (1, int(Flag.OVER_TEMP), N), (1, int(Flag.OVER_TEMP), -2)):
        with pytest.raises(ValueError, match="isolate_station"):
            k.isolate_station(*args)
    assert not k.station_safe.any() and k.flags == 0
    k.isolate_station(1, int(Flag.SENSOR_STUCK | Flag.DTDT_ALARM), 5)
    for _ in range(2):  # at once, and after a tick with nothing wrong
        assert list(k.station_safe) == [0, 1, 0, 0] and not k.safe_state
        assert k.station_cause[1] == Flag.SENSOR_STUCK | Flag.DTDT_ALARM and k.station_fault_marker[1] == 5
        assert k.flags & Flag.STATION_ISOLATED and k.flags & Flag.SENSOR_STUCK
        assert list(k.relief2_kpa) == [0, 0, R_MAX, R_MAX, 0, 0, 0, 0]
        assert list(k.current_limit_frac) == [1.0, 0.0, 1.0, 1.0]
        k.tick(base(rng), P)
    k.isolate_station(1, int(Flag.OVER_TEMP), 6)  # a second latch keeps the first marker
    assert k.station_cause[1] == Flag.SENSOR_STUCK | Flag.DTDT_ALARM | Flag.OVER_TEMP
    assert k.station_fault_marker[1] == 5


def test_reset_station_clears_one_station(impl):
    k = make(impl)
    rng = np.random.default_rng(8)
    k.tick(base(rng), P)
    k.isolate_station(1, int(Flag.OVER_TEMP))
    k.isolate_station(3, int(Flag.SENSOR_STUCK), 12)
    with pytest.raises(ValueError, match="reset_station"):
        k.reset_station(S)
    k.reset_station(1)
    assert list(k.station_safe) == [0, 0, 0, 1] and list(k.station_fault_marker) == [-1, -1, -1, 12]
    assert k.flags == Flag.STATION_ISOLATED | Flag.SENSOR_STUCK
    k.tick(base(rng), P)
    assert list(k.current_limit_frac) == [1.0, 1.0, 1.0, 0.0]
    assert list(k.relief2_kpa) == [0, 0, 0, 0, 0, 0, R_MAX, R_MAX]
    k.reset_station(3)
    assert k.flags == 0
    # a fault that persists latches its station again at the next tick
    temp = base(rng)
    temp[2] = np.nan
    for _ in range(3):
        k.tick(temp, P)
    assert list(k.station_safe) == [1, 0, 0, 0] and k.station_fault_marker[0] == 2
    k.reset_station(0)
    k.tick(temp, P)
    assert list(k.station_safe) == [1, 0, 0, 0] and k.station_cause[0] == Flag.SENSOR_NONFINITE


def test_relief_holds_until_quiet_and_cool(impl):
    """A hot spot on zone 6 at 45 °C: relief holds at its peak while ΔT is back under θ and the
    zone is above the 40 °C release level; it releases relief_hold_s after both hold."""
    k = make(impl, Setpoints(delta_t_threshold_degc=1.0, relief_hold_s=1.0, relief_release_degc=40.0))
    rng = np.random.default_rng(9)
    for _ in range(30):
        k.tick(base(rng), P)
    peak = 0.0
    for _ in range(3):  # 30 -> 45 °C in 3 ticks on marker 12 (zone 6)
        temp = base(rng)
        temp[12] = 45.0 - 5.0 * (2 - _)
        k.tick(temp, P)
        assert k.relief_holding[6] and k.flags & Flag.RELIEF_ACTIVE
        assert k.relief2_kpa[6] >= peak
        peak = k.relief2_kpa[6]
    assert peak > 0
    for t in range(60):  # plateau at 45: ΔT falls under θ after K = 20 ticks, relief holds
        temp = base(rng)
        temp[12] = 45.0 + rng.normal(0, 0.01)
        k.tick(temp, P)
        assert k.relief2_kpa[6] == peak and k.relief_holding[6], t
    assert k.delta_t_degc[12] < 1.0
    released = None
    for t in range(30):  # the cell cools to 39 °C at once; ΔT is negative
        temp = base(rng)
        temp[12] = 39.0 + rng.normal(0, 0.01)
        k.tick(temp, P)
        if k.relief2_kpa[6] == 0.0 and released is None:
            released = t
    # the zone was quiet for long already; it releases the first tick under 40 °C
    assert released == 0 and not k.relief_holding[6] and k.coolant_flow_lpm == 0.0


def test_relief_hold_time_counts_from_the_last_hot_tick(impl):
    k = make(impl, Setpoints(delta_t_threshold_degc=1.0, check_interval_s=1.0, relief_hold_s=2.0,
                             relief_release_degc=40.0))
    rng = np.random.default_rng(10)
    for _ in range(30):
        k.tick(base(rng), P)
    levels, hot = [], []  # marker 3 (zone 1) steps up 2 °C: hot for K = 10 ticks, then quiet
    for _ in range(40):
        temp = base(rng)
        temp[3] += 2.0
        k.tick(temp, P)
        levels.append(k.relief2_kpa[1])
        hot.append(k.delta_t_degc[3] >= 1.0)
    last_hot = max(i for i, h in enumerate(hot) if h)
    assert last_hot == 9
    peak = max(levels)
    assert levels[last_hot + 1:last_hot + 20] == [peak] * 19  # quiet ticks 1..19 of 20: held
    assert levels[last_hot + 20] == 0.0  # 20 quiet ticks = relief_hold_s, and 32 °C < 40 °C


def test_snapshot_has_the_station_lists(impl):
    k = make(impl)
    rng = np.random.default_rng(11)
    k.tick(base(rng), P)
    k.isolate_station(2, int(Flag.OVER_TEMP), 8)
    snap = rtcore.snapshot(k)
    assert snap["n_stations"] == S and snap["station_safe"] == [False, False, True, False]
    assert snap["station_cause"] == [0, 0, int(Flag.OVER_TEMP), 0]
    assert snap["station_cause_names"] == [[], [], ["OVER_TEMP"], []]
    assert snap["station_fault_marker"] == [-1, -1, 8, -1]
    assert snap["current_limit_frac"] == [1.0, 1.0, 0.0, 1.0]
    assert snap["station_coolant_lpm"] == [0.0, 0.0, F_MAX, 0.0]
    assert len(snap["station_hot_degc"]) == S and "STATION_ISOLATED" in snap["flag_names"]


def _load_warm_module(impl, restart: bool):
    """Station 1 empty at 25 °C, then a module at 35 °C placed on it (its markers step by 10 K)."""
    k = make(impl, Setpoints(relief_release_degc=33.0))
    rng = np.random.default_rng(7)
    for _ in range(30):
        k.tick(base(rng, 25.0), P)
    if restart:
        k.restart_station_history(1)
    for _ in range(80):
        temp = base(rng, 25.0)
        temp[4:8] = 35.0 + rng.normal(0.0, 0.01, 4)
        k.tick(temp, P)
    return k


def test_a_new_module_is_not_heat_when_the_station_history_restarts(impl):
    k = _load_warm_module(impl, restart=True)
    assert not k.station_safe.any() and not k.flags & Flag.RELIEF_ACTIVE
    assert list(k.relief_holding) == [0] * Z and list(k.relief2_kpa) == [0.0] * Z
    assert list(k.current_limit_frac) == [1.0] * S
    assert k.station_hot_degc[1] == pytest.approx(35.0, abs=0.05)


def test_without_the_restart_the_step_of_a_new_module_reads_as_heat(impl):
    k = _load_warm_module(impl, restart=False)  # the step trips the rate alarm, or holds relief above 33 °C
    assert k.station_safe[1] or (k.relief_holding[2] and k.relief_holding[3])
    assert not k.station_safe[[0, 2, 3]].any()


def test_restart_station_history_refuses_a_station_outside_the_fixture(impl):
    with pytest.raises(ValueError, match="restart_station_history: station 4"):
        make(impl).restart_station_history(4)

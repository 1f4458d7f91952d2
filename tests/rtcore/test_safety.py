"""Diagnostics and the latches, over kernel and twin: each fault gives the safe outputs within
the tick that confirms it (a station-local fault on its own station, an external fault on the
whole line), and only reset()/reset_station() leave them. The grid fixture has one zone per
station here (4 stations of 4 markers: marker i is on station i // 4)."""

import numpy as np
import pytest

from rtcore.spec import DIAGNOSTICS, EXTERNAL_FAULTS, LATCHING, Config, Flag, Setpoints

pytestmark = pytest.mark.unit
N, Z = 16, 4
STEADY = 25.0 + 0.01 * np.arange(N)
P = np.full(Z, 300.0)


def noisy(rng):
    """Plausible readings that never repeat bit for bit (so no marker looks stuck)."""
    return STEADY + rng.normal(0.0, 0.01, N)


def assert_safe_outputs(k):
    """The line is latched: every station's outputs are the safe ones."""
    sp = k.setpoints
    assert k.safe_state and k.flags & Flag.SAFE_STATE
    assert np.all(k.relief1_kpa == sp.relief_max_kpa) and np.all(k.relief2_kpa == sp.relief_max_kpa)
    assert np.array_equal(k.coolant_area_mm2, k.fixture.zone_area_mm2)
    assert np.all(k.station_coolant_lpm == sp.coolant_max_lpm)
    assert k.coolant_flow_lpm == Z * sp.coolant_max_lpm  # one station per zone here
    assert np.all(k.current_limit_frac == 0.0)


def assert_station_isolated(k, station, cause, marker):
    """Only `station` is latched, by `cause`, at `marker`; the line and the others carry on."""
    sp = k.setpoints
    assert not k.safe_state and not k.flags & Flag.SAFE_STATE
    assert k.flags & Flag.STATION_ISOLATED and k.flags & cause
    assert list(k.station_safe) == [int(s == station) for s in range(Z)]
    assert k.station_cause[station] & cause and k.station_fault_marker[station] == marker
    assert k.relief1_kpa[station] == k.relief2_kpa[station] == sp.relief_max_kpa
    assert k.coolant_area_mm2[station] == k.fixture.zone_area_mm2[station]
    assert k.station_coolant_lpm[station] == sp.coolant_max_lpm and k.current_limit_frac[station] == 0.0
    others = [s for s in range(Z) if s != station]
    assert np.all(k.station_cause[others] == 0) and np.all(k.station_fault_marker[others] == -1)
    assert np.all(k.relief2_kpa[others] == 0.0) and np.all(k.current_limit_frac[others] == 1.0)
    assert np.all(k.station_coolant_lpm[others] == 0.0)


def test_gb38031_alarm_latches_after_more_than_3_s(impl, kit):
    k = kit.make_kernel(impl, N, Z, Setpoints(delta_t_threshold_degc=50.0))  # relief stays out
    rng = np.random.default_rng(1)
    for _ in range(20):
        k.tick(noisy(rng), P)
    temp, latched_at = noisy(rng), None
    for t in range(60):  # marker 9 rises 1.5 °C/s
        temp = noisy(rng)
        temp[9] = STEADY[9] + 0.15 * (t + 1)
        flags = k.tick(temp, P)
        if t == 10:
            assert flags & Flag.DTDT_PENDING and not flags & Flag.SAFE_STATE
        if flags & Flag.STATION_ISOLATED:
            latched_at = t
            break
    # dT/dt over the 1 s window first reaches 1 °C/s at t = 6 (7 steps of 0.15 °C);
    # "more than 3 s" is 31 ticks in a row, so the latch comes at t = 6 + 30
    assert latched_at == 36
    assert k.flags & Flag.DTDT_ALARM and k.safe_cause == 0 and k.fault_marker == -1
    assert_station_isolated(k, 2, Flag.DTDT_ALARM, 9)


def test_short_or_slow_rises_do_not_alarm(impl, kit):
    k = kit.make_kernel(impl, N, Z, Setpoints(delta_t_threshold_degc=50.0))
    rng = np.random.default_rng(2)
    temp9 = STEADY[9]
    for t in range(200):
        temp = noisy(rng)
        temp9 += 0.15 if t < 25 else 0.09  # 1.5 °C/s for 2.5 s, then 0.9 °C/s for good
        temp[9] = min(temp9, 140.0)
        k.tick(temp, P)
        assert not k.safe_state and not k.station_safe.any(), t


@pytest.mark.parametrize("bad, flag, debounce", [
    (np.nan, Flag.SENSOR_NONFINITE, 3),
    (np.inf, Flag.SENSOR_NONFINITE, 3),
    (-np.inf, Flag.SENSOR_NONFINITE, 3),
    (1e300, Flag.SENSOR_OUT_OF_RANGE, 5),
    (-60.0, Flag.SENSOR_OUT_OF_RANGE, 5),
])
def test_implausible_sensor_latches_after_debounce(impl, kit, bad, flag, debounce):
    k = kit.make_kernel(impl, N, Z)
    rng = np.random.default_rng(3)
    for _ in range(10):
        k.tick(noisy(rng), P)
    for t in range(1, debounce + 1):
        temp = noisy(rng)
        temp[6] = bad
        flags = k.tick(temp, P)
        if t < debounce:
            assert flags & Flag.SENSOR_SUSPECT and not flags & Flag.STATION_ISOLATED
            assert np.all(np.isfinite(k.delta_t_degc))  # the last good value is held
    assert flags & flag
    assert_station_isolated(k, 1, flag, 6)


def test_nan_pressure_latches_after_debounce(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    rng = np.random.default_rng(4)
    p = P.copy()
    p[2] = np.nan
    flags = [k.tick(noisy(rng), p) for _ in range(3)]
    assert not flags[1] & Flag.STATION_ISOLATED and flags[2] & Flag.PRESSURE_NONFINITE
    assert_station_isolated(k, 2, Flag.PRESSURE_NONFINITE, -1)


def test_stuck_sensor_detected(impl, kit):
    k = kit.make_kernel(impl, N, Z, stuck_debounce_ticks=20)
    rng = np.random.default_rng(5)
    flags = []
    for _ in range(25):
        temp = noisy(rng)
        temp[11] = 27.125  # bit-identical every tick
        flags.append(k.tick(temp, P))
    first = next(i for i, f in enumerate(flags) if f & Flag.SENSOR_STUCK)
    assert first == 20  # 20 repeats after the first reading
    assert_station_isolated(k, 2, Flag.SENSOR_STUCK, 11)


@pytest.mark.parametrize("fault", [Flag.LINK_LOST, Flag.OVERRUN_STREAK, Flag.EXCEPTION])
def test_external_fault_gives_safe_outputs_at_once(impl, kit, fault):
    k = kit.make_kernel(impl, N, Z)
    rng = np.random.default_rng(6)
    k.tick(noisy(rng), P)
    k.raise_fault(int(fault))
    assert k.flags & fault and k.safe_cause & fault
    assert_safe_outputs(k)
    assert not k.station_safe.any()  # the line latch, not four station latches
    k.tick(noisy(rng), P)  # the condition is gone: the latch holds
    assert_safe_outputs(k)


def test_raise_fault_refuses_other_codes(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    for code in (0, int(Flag.SENSOR_STUCK), int(Flag.LINK_LOST | Flag.RELIEF_ACTIVE)):
        with pytest.raises(ValueError, match="raise_fault"):
            k.raise_fault(code)
    assert not k.safe_state


def test_reset_leaves_safe_state_and_persisting_fault_relatches(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    rng = np.random.default_rng(7)
    k.tick(noisy(rng), P)
    k.raise_fault(int(Flag.LINK_LOST))
    k.tick(noisy(rng), P)
    assert k.safe_state
    k.reset()
    assert not k.safe_state and k.safe_cause == 0
    k.tick(noisy(rng), P)
    assert not k.safe_state and np.all(k.relief1_kpa == 0) and k.coolant_flow_lpm == 0
    temp = noisy(rng)
    temp[3] = np.nan
    for _ in range(3):
        k.tick(temp, P)
    assert k.station_safe[0] and not k.safe_state
    k.reset()
    assert not k.station_safe.any() and k.flags == 0
    k.tick(temp, P)  # still NaN: the counter is past its debounce, latch again at once
    assert_station_isolated(k, 0, Flag.SENSOR_NONFINITE, 3)


def test_diagnostics_table_covers_every_latching_flag():
    table = {d.flag for d in DIAGNOSTICS}
    assert table == {f for f in Flag if f and f & LATCHING}
    cfg = Config(n_markers=1, n_zones=1)
    for row in DIAGNOSTICS:
        if row.debounce_field is None:
            assert row.flag & EXTERNAL_FAULTS
        else:
            assert getattr(cfg, row.debounce_field) >= 1
    assert cfg.alarm_debounce_ticks == 31 and cfg.alarm_window_ticks == 10

"""The compiled kernel and the reference twin agree (1e-9 relative) on random and adversarial
inputs: NaN, ±inf, huge values, stuck sensors, pressure garbage, several stations with their
own limits, and isolate_station / reset_station / reset / raise_fault between ticks. Outputs
stay finite and inside their limits. Also: the C flag and status constants equal rtcore.spec's."""

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rtcore.spec import STATION_FAULTS, Config, Fixture, Flag, Setpoints, StationLimits, Status

pytestmark = pytest.mark.equivalence
RTOL = 1e-9
ARRAYS = ("relief1_kpa", "relief2_kpa", "coolant_area_mm2", "radius_mm", "correction",
          "zone_trend_degc_per_s", "delta_t_degc", "rate_degc_per_s", "severity_degc_per_s",
          "mutation_slope_degc_per_s2", "station_hot_degc", "current_limit_frac", "station_coolant_lpm")
EXACT = ("station_safe", "station_cause", "station_fault_marker", "relief_holding")
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e308, 151.0, -40.5, 5e-324])


def both(kit):
    return kit.load_impl("rtcore._tick"), kit.load_impl("rtcore.twin")


def assert_same(a, b, where):
    assert a.flags == b.flags, f"{where}: flags {Flag(a.flags)!r} != {Flag(b.flags)!r}"
    assert (a.safe_state, a.safe_cause, a.fault_marker, a.tick_count) == \
        (b.safe_state, b.safe_cause, b.fault_marker, b.tick_count), where
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        scale = max(1.0, float(np.max(np.abs(y)))) if y.size else 1.0
        np.testing.assert_allclose(x, y, rtol=RTOL, atol=RTOL * 1e-3 * scale, err_msg=f"{where}: {name}")
    assert a.coolant_flow_lpm == pytest.approx(b.coolant_flow_lpm, rel=RTOL, abs=1e-12), where
    for name in EXACT:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), f"{where}: {name} {x} != {y}"


def assert_bounded(k):
    sp = k.setpoints
    for name in ARRAYS:
        assert np.all(np.isfinite(getattr(k, name))), name
    for name in ("relief1_kpa", "relief2_kpa"):
        values = getattr(k, name)
        assert np.all((values >= 0) & (values <= sp.relief_max_kpa)), name
    assert np.all((k.coolant_area_mm2 >= 0) & (k.coolant_area_mm2 <= k.fixture.zone_area_mm2))
    n_st = k.fixture.n_stations
    assert np.all((k.station_coolant_lpm >= 0) & (k.station_coolant_lpm <= sp.coolant_max_lpm))
    assert np.isfinite(k.coolant_flow_lpm) and 0 <= k.coolant_flow_lpm <= n_st * sp.coolant_max_lpm * (1 + 1e-12)
    isolated = (k.station_safe != 0) | k.safe_state
    assert np.all(k.current_limit_frac[isolated] == 0.0)
    free = k.current_limit_frac[~isolated]
    assert np.all((free >= sp.current_floor_frac) & (free <= 1.0))
    assert np.all((k.radius_mm >= 0) & (k.radius_mm <= sp.radius_max_mm))
    assert np.all((k.correction >= 1 - sp.correction_gain) & (k.correction <= 1 + sp.correction_gain))


def unit(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def station_limits(draw, n_stations, history_ticks, period_s):
    limits = []
    for _ in range(n_stations):
        limit = draw(unit(26.0, 80.0))
        limits.append(StationLimits(
            delta_t_threshold_degc=draw(unit(0.01, 5.0)),
            check_interval_s=draw(st.integers(1, history_ticks - 1)) * period_s,
            warning_degc=limit - draw(unit(0.1, 20.0)),
            temp_limit_degc=limit))
    return tuple(limits)


OPS = ("isolate", "reset_station", "reset", "raise_fault", "new_module")


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 20))
    z = draw(st.integers(1, 5))
    lags = draw(st.integers(1, 6))
    window = draw(st.integers(2, 12))
    config = Config(n_markers=n, n_zones=z, history_ticks=max(window + lags, 11) + draw(st.integers(0, 6)),
                    corr_window_ticks=window, corr_lags=lags,
                    stuck_debounce_ticks=draw(st.integers(1, 8)),
                    nonfinite_debounce_ticks=draw(st.integers(1, 4)),
                    out_of_range_debounce_ticks=draw(st.integers(1, 6)),
                    alarm_hold_s=draw(unit(0.0, 1.0)))
    n_stations = draw(st.integers(1, z))
    check_ticks = draw(st.integers(1, config.history_ticks - 1))
    limit = draw(unit(26.0, 80.0))
    per_station = draw(st.booleans())
    setpoints = Setpoints(
        delta_t_threshold_degc=draw(unit(0.01, 5.0)),
        check_interval_s=check_ticks * config.period_s,
        hotspot_ratio=tuple(draw(unit(0.0, 1.0)) for _ in range(z)),
        cooling_efficiency=draw(unit(0.05, 1.0)),
        relief_max_kpa=draw(unit(1.0, 500.0)),
        coolant_max_lpm=draw(unit(0.1, 50.0)),
        radius_min_mm=draw(unit(0.0, 20.0)),
        radius_ref_mm=draw(unit(0.0, 100.0)),
        radius_max_mm=draw(unit(20.0, 300.0)),
        relief_gain_kpa_per_degc_per_s=draw(unit(0.0, 1e4)),
        mutation_jump_degc_per_s=draw(unit(0.01, 2.0)),
        coupling_decay_per_tick=draw(unit(0.0, 3.0)),
        correction_gain=draw(unit(0.0, 1.0)),
        coolant_gain_lpm_per_cm2_degc_per_s=draw(unit(0.0, 10.0)),
        temp_limit_degc=limit,
        warning_degc=limit - draw(unit(0.1, 20.0)),
        current_floor_frac=draw(unit(0.0, 1.0)),
        envelope_hysteresis_degc=draw(unit(0.0, 3.0)),
        envelope_margin_degc=draw(st.one_of(st.just(0.0), unit(0.0, 10.0))),
        relief_hold_s=draw(st.integers(0, 20)) * config.period_s,
        relief_release_degc=draw(unit(20.0, 60.0)),
        station_limits=draw(station_limits(n_stations, config.history_ticks, config.period_s))
        if per_station else (),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    zone_station = np.concatenate([np.arange(n_stations), rng.integers(0, n_stations, z - n_stations)])
    fixture = Fixture(rng.uniform(-500, 500, (n, 2)), rng.integers(0, z, n),
                      rng.uniform(10.0, 1e5, z), rng.permutation(zone_station))
    ticks = draw(st.integers(1, 50))
    drift = rng.choice([0.0, 0.05, 0.2, 0.5], size=n) * rng.uniform(0, 1, n)
    temps = 25.0 + np.cumsum(rng.normal(0, 0.05, (ticks, n)) + drift, axis=0)
    pressures = np.abs(300.0 + np.cumsum(rng.normal(0, 10.0, (ticks, z)), axis=0))
    p_special = draw(st.sampled_from([0.0, 0.02, 0.2]))
    mask = rng.random(temps.shape) < p_special
    temps[mask] = rng.choice(SPECIALS, size=int(mask.sum()))
    stuck = rng.random(n) < draw(st.sampled_from([0.0, 0.3]))
    temps[:, stuck] = temps[0, stuck]
    pmask = rng.random(pressures.shape) < p_special
    pressures[pmask] = rng.choice(np.append(SPECIALS, -5.0), size=int(pmask.sum()))
    ops = {}
    for _ in range(draw(st.integers(0, 4))):
        ops[draw(st.integers(0, ticks - 1))] = (draw(st.sampled_from(OPS)), int(rng.integers(n_stations)))
    return config, fixture, setpoints, temps, pressures, ops


def apply_op(k, op, station):
    if op == "isolate":
        cause = int(STATION_FAULTS) & (1 << int(station % 6 + 2)) or int(Flag.OVER_TEMP)
        markers = np.flatnonzero(k.fixture.marker_station == station)
        k.isolate_station(station, cause, int(markers[0]) if markers.size else -1)
    elif op == "reset_station":
        k.reset_station(station)
    elif op == "reset":
        k.reset()
    elif op == "new_module":
        k.restart_station_history(station)
    else:
        k.raise_fault(int(Flag.LINK_LOST))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_kernel_equals_twin_on_random_and_adversarial_inputs(kit, scenario):
    config, fixture, setpoints, temps, pressures, ops = scenario
    compiled, twin = both(kit)
    a, b = compiled.Kernel(config, fixture, setpoints), twin.Kernel(config, fixture, setpoints)
    assert_same(a, b, "before the first tick")
    for t in range(temps.shape[0]):
        if t in ops:
            for k in (a, b):
                apply_op(k, *ops[t])
            assert_same(a, b, f"after {ops[t]} before tick {t}")
            event(f"op {ops[t][0]}")
        fa = a.tick(np.ascontiguousarray(temps[t]), np.ascontiguousarray(pressures[t]))
        fb = b.tick(np.ascontiguousarray(temps[t]), np.ascontiguousarray(pressures[t]))
        assert fa == fb == a.flags
        assert_same(a, b, f"tick {t}")
        assert_bounded(a)
        if fa & Flag.RELIEF_ACTIVE and not fa & Flag.SAFE_STATE:
            event("relief computed")
        if np.any((a.correction != 1.0) & (a.relief1_kpa > 0)):
            event("correction away from 1")
        if np.any((a.current_limit_frac > 0) & (a.current_limit_frac < 1)):
            event("envelope derating")
        if np.any(a.relief_holding.astype(bool) & (a.radius_mm == 0)):
            event("relief held on a quiet zone")
    event(f"stations {fixture.n_stations}, isolated at end: {int(a.station_safe.sum())}")


def test_long_run_with_faults_resets_and_setpoint_changes(kit):
    compiled, twin = both(kit)
    rng = np.random.default_rng(11)
    n, z, n_st = 64, 8, 4
    config = Config(n_markers=n, n_zones=z, stuck_debounce_ticks=40)
    fixture = Fixture(rng.uniform(0, 300, (n, 2)), rng.integers(0, z, n), np.full(z, 1e4),
                      np.arange(z) // 2)
    first = Setpoints(delta_t_threshold_degc=1.0, warning_degc=26.0, temp_limit_degc=40.0,
                      relief_release_degc=27.0, relief_hold_s=1.0)
    kernels = [m.Kernel(config, fixture, first) for m in (compiled, twin)]
    temp, press = np.full(n, 25.0), np.full(z, 300.0)
    seen = set()
    for t in range(600):
        temp += rng.normal(0, 0.03, n)
        temp[(t // 50) % n] += 0.09  # a wandering hot spot under the dT/dt limit
        press += rng.normal(0, 2.0, z)
        feed = temp.copy()
        if t % 97 == 0:
            feed[rng.integers(n)] = np.nan
        if t % 150 == 149:
            for k in kernels:
                k.raise_fault(int(Flag.OVERRUN_STREAK))
        if t % 150 == 0:
            for k in kernels:
                k.reset()
        if t % 70 == 35:
            for k in kernels:
                k.isolate_station(t % n_st, int(Flag.SENSOR_STUCK))
        if t % 70 == 60:
            for k in kernels:
                k.reset_station((t - 25) % n_st)
        if t == 300:
            for k in kernels:
                k.set_setpoints(Setpoints(
                    delta_t_threshold_degc=0.8, check_interval_s=3.0,
                    hotspot_ratio=tuple(np.linspace(0, 1, z)), relief_hold_s=0.5,
                    station_limits=tuple(StationLimits(0.5 + 0.3 * s, 1.0 + s, 26.0 + s, 35.0 + 3 * s)
                                         for s in range(n_st))))
        assert_same(*kernels, f"before tick {t}")
        for k in kernels:
            k.tick(feed.copy(), press.copy())
        assert_same(*kernels, f"tick {t}")
        assert_bounded(kernels[0])
        seen.update(f.name for f in Flag if f and kernels[0].flags & f)
        if np.any((kernels[0].current_limit_frac > 0) & (kernels[0].current_limit_frac < 1)):
            seen.add("derating")
    assert kernels[0].tick_count == 600
    assert {"RELIEF_ACTIVE", "STATION_ISOLATED", "SAFE_STATE", "derating"} <= seen, seen


def test_all_garbage_from_the_first_tick(kit):
    compiled, twin = both(kit)
    config = Config(n_markers=8, n_zones=2)
    fixture = kit.grid_fixture(8, 2)
    for value in (np.nan, np.inf, -np.inf, 1e300, -1e300):
        a, b = compiled.Kernel(config, fixture), twin.Kernel(config, fixture)
        for t in range(6):
            temps, press = np.full(8, value), np.full(2, value)
            assert a.tick(temps, press) == b.tick(temps.copy(), press.copy())
            assert_same(a, b, f"{value} tick {t}")
            assert_bounded(a)
        assert a.station_safe.all() and not a.safe_state, value


def test_c_constants_match_spec(kit):
    compiled = kit.load_impl("rtcore._tick")
    assert compiled.C_FLAGS == {f.name: int(f) for f in Flag if f}
    assert compiled.C_STATUS == {s.name: int(s) for s in Status}

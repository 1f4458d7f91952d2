"""Behaviour of the S14-S15 tick (relief, coolant, correction), over kernel and twin."""

import numpy as np
import pytest

from rtcore.spec import Config, Flag, Setpoints

pytestmark = pytest.mark.unit
N, Z = 16, 4
STEADY = np.full(N, 25.0)


def steady(ticks):
    return np.tile(STEADY, (ticks, 1))


def test_no_relief_below_threshold(impl, kit):
    k = kit.make_kernel(impl, N, Z, Setpoints(delta_t_threshold_degc=2.0))
    temps = steady(80)
    temps[:, 5] += 0.04 * np.arange(80)  # 0.4 °C/s: ΔT over 2 s is 0.8 °C < 2 °C
    flags = kit.run(k, temps)
    assert not any(f & Flag.RELIEF_ACTIVE for f in flags)
    assert np.all(k.relief1_kpa == 0) and np.all(k.relief2_kpa == 0)
    assert k.coolant_flow_lpm == 0 and np.all(k.coolant_area_mm2 == 0)
    assert k.delta_t_degc[5] == pytest.approx(0.8)


def test_hot_spot_answered_within_one_tick(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    kit.run(k, steady(30))
    assert k.flags == 0
    hot = STEADY.copy()
    hot[5] += 3.0  # one marker of zone 1 jumps 3 °C
    flag = k.tick(hot, np.full(Z, 300.0))
    assert flag & Flag.RELIEF_ACTIVE and not flag & Flag.SAFE_STATE
    zone = 5 * Z // N
    assert k.relief1_kpa[zone] > 0 and k.relief2_kpa[zone] > 0
    assert k.coolant_area_mm2[zone] > 0 and k.coolant_flow_lpm > 0
    others = [z for z in range(Z) if z != zone]
    assert np.all(k.relief1_kpa[others] == 0) and np.all(k.relief2_kpa[others] == 0)


def test_relief_follows_its_peak_then_stops_without_hold(impl, kit):
    """relief_hold_s = 0 and a release level above any reading: relief holds its running peak
    while the zone is active and stops the tick ΔT falls under θ."""
    k = kit.make_kernel(impl, N, Z, Setpoints(delta_t_threshold_degc=1.0, relief_hold_s=0.0,
                                              relief_release_degc=150.0))
    kit.run(k, steady(20))
    rates = np.concatenate([np.full(40, 0.08), np.linspace(0.08, 0.0, 30), np.zeros(30)])
    temp, relief, hot = STEADY.copy(), [], []
    for step in rates:  # °C per 100 ms tick; at most 0.8 °C/s, under the GB 38031 limit
        temp[5] += step
        k.tick(temp.copy(), np.full(Z, 300.0))
        relief.append(k.relief1_kpa[1])
        hot.append(k.delta_t_degc[5] >= 1.0)
    relief = np.array(relief)
    peak = relief.max()
    assert 0 < peak < k.setpoints.relief_max_kpa  # not saturated: the shape is visible
    last_hot = max(i for i, h in enumerate(hot) if h)
    assert 40 < last_hot < 90
    assert np.all(np.diff(relief[:last_hot + 1]) >= 0)  # never falls while active
    assert relief[last_hot] == peak
    assert np.all(relief[last_hot + 1:] == 0) and not k.flags & Flag.RELIEF_ACTIVE
    assert not k.safe_state and not k.station_safe.any()


def test_hotspot_ratio_widens_radius_and_relief(impl, kit):
    results = []
    for ratio in (0.0, 1.0):
        k = kit.make_kernel(impl, N, Z, Setpoints(hotspot_ratio=(ratio,) * Z,
                                                  relief_gain_kpa_per_degc_per_s=100.0))
        kit.run(k, steady(30))
        hot = STEADY.copy()
        hot[5] += 3.0
        k.tick(hot, np.full(Z, 300.0))
        results.append((k.radius_mm[1], k.relief1_kpa[1]))
    (r0, p0), (r1, p1) = results
    assert r1 == pytest.approx(r0 + 40.0) and p1 > p0 > 0


def _coupled_run(impl, kit, sign):
    """Pressure wanders at random; the hot zone's heating follows each pressure step (sign +1:
    more pressure, more heat, so relief works and the rising trend asks for more of it)."""
    k = kit.make_kernel(impl, N, Z, Setpoints(delta_t_threshold_degc=0.5, correction_gain=1.0))
    temp = STEADY.copy()
    pressure = np.full(Z, 300.0)
    steps = np.random.default_rng(7).normal(0.0, 5.0, 80)
    for step in steps:
        temp[4:8] += 0.05 + sign * 0.004 * step  # zone 1 warms, modulated by the pressure step
        pressure[:] += step
        k.tick(temp.copy(), pressure.copy())
    return k


def test_correction_grows_relief_when_relief_helps(impl, kit):
    k = _coupled_run(impl, kit, +1.0)
    assert k.flags & Flag.RELIEF_ACTIVE
    assert k.correction[1] > 1.0
    assert k.relief2_kpa[1] > k.relief1_kpa[1] or k.relief2_kpa[1] == k.setpoints.relief_max_kpa


def test_correction_shrinks_relief_when_heat_answers_the_other_way(impl, kit):
    k = _coupled_run(impl, kit, -1.0)
    assert k.flags & Flag.RELIEF_ACTIVE
    assert k.correction[1] < 1.0 and k.relief2_kpa[1] < k.relief1_kpa[1]


def test_flat_pressure_leaves_first_relief_unchanged(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    kit.run(k, steady(30))
    hot = STEADY.copy()
    hot[5] += 3.0
    k.tick(hot, np.full(Z, 300.0))
    assert k.correction[1] == 1.0 and k.relief2_kpa[1] == k.relief1_kpa[1]


def test_bad_inputs_name_the_field(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    with pytest.raises(ValueError, match="temp_degc"):
        k.tick(np.zeros(N + 1), np.zeros(Z))
    with pytest.raises(ValueError, match="pressure_kpa"):
        k.tick(np.zeros(N), np.zeros(Z, dtype=np.float32))
    with pytest.raises(ValueError, match="temp_degc"):
        k.tick(np.zeros(2 * N)[::2], np.zeros(Z))
    with pytest.raises(ValueError, match="Setpoints.check_interval_s"):
        k.set_setpoints(Setpoints(check_interval_s=60.0))
    with pytest.raises(ValueError, match="Setpoints.hotspot_ratio"):
        k.set_setpoints(Setpoints(hotspot_ratio=(0.5,)))
    with pytest.raises(ValueError, match="Setpoints.cooling_efficiency"):
        k.set_setpoints(Setpoints(cooling_efficiency=0.0))
    with pytest.raises(ValueError, match="Fixture"):
        impl.Kernel(Config(n_markers=N + 1, n_zones=Z), kit.grid_fixture(N, Z))
    assert k.setpoints == Setpoints()  # the refused ones were not half-applied


def test_outputs_are_read_only_views(impl, kit):
    k = kit.make_kernel(impl, N, Z)
    with pytest.raises(ValueError):
        k.relief1_kpa[0] = 1.0


def test_config_rejects_a_short_history():
    with pytest.raises(ValueError, match="Config.history_ticks"):
        Config(n_markers=4, n_zones=1, history_ticks=20)

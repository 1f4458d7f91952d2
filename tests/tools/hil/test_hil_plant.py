"""The bench plant: pressure, coolant, hot spots, cut-off (edge/batterymodel) and faults (tools/hil/plant.py)."""

import numpy as np
import pytest

from tools.hil.faults import InternalShort, SensorFault, SensorFaultMode, WeakCell
from edge.batterymodel.fixture import FixtureConfig, coolant_h_w_m2k, relief_fraction, stack_resistance_ohm
from tools.hil.plant import Command, Plant, PlantConfig

pytestmark = pytest.mark.unit


def run(plant, cmd, seconds, dt=0.5):
    for _ in range(int(round(seconds / dt))):
        plant.step(cmd, dt)


def discharge_cmd(plant, current=5.0, pressure=150.0, coolant=0.0):
    cmd = Command.idle(plant.n_modules, plant.cfg.n_zones, pressure)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current
    cmd.coolant_lpm[:] = coolant
    return cmd


def test_stack_resistance_is_u_shaped_with_minimum_near_150_kpa_and_steep_as_the_clamp_opens():
    cfg = FixtureConfig()
    p = np.linspace(20, 400, 381)
    r = stack_resistance_ohm(p, cfg)
    assert 140 <= p[np.argmin(r)] <= 200
    r20, r40, r80, r320 = stack_resistance_ohm(np.array([20.0, 40.0, 80.0, 320.0]), cfg)
    assert r40 / r80 == pytest.approx(1.6, rel=0.15), "above the knee the contact term ~ p^-0.5 dominates"
    assert r20 / r40 > 3.5, "below the knee the opening contact rises steeply"
    assert r320 > r80 * 0.95, "compression makes high pressure cost again"
    assert np.isinf(stack_resistance_ohm(np.array([5.0]), cfg)[0]), "below open_kpa the contact opens"


def test_coolant_grows_with_flow_and_relief():
    cfg = FixtureConfig()
    h = coolant_h_w_m2k(np.array([0.0, 5.0, 20.0, 20.0]), np.array([0.0, 0.0, 0.0, 1.0]), cfg)
    assert h[0] == 0 and h[1] < h[2] < h[3]
    np.testing.assert_allclose(relief_fraction(np.array([75.0, 500.0]), np.array([150.0, 150.0])), [0.5, 1.0])


def test_pressure_sets_the_current_of_a_resistive_load(cells):
    sel = cells.select([0, 0, 0])
    plant = Plant(sel, PlantConfig(soc_scatter=0, cap_scatter=0, r_scatter=0))
    cmd = discharge_cmd(plant, current=np.nan)
    cmd.current_a[:] = np.nan
    cmd.load_ohm[:] = 2.0
    cmd.pressure_kpa[:] = np.array([25.0, 150.0, 400.0])[:, None]
    run(plant, cmd, 5.0)
    i = plant.current_a
    assert i[1] > i[0] and i[1] > i[2], f"150 kPa must give the most current: {i}"
    cmd.pressure_kpa[:] = 0.0
    run(plant, cmd, 5.0)
    assert np.all(plant.current_a == 0.0), "an unclamped fixture (setpoint 0) opens the contact"


def test_hot_spot_is_seen_first_at_its_end_and_coolant_cools(cells):
    sel = cells.select([1, 1])
    plant = Plant(sel, PlantConfig(sensor_noise_k=0.0), faults=(InternalShort(0, 0, 1.0, 0.0),))
    cmd = Command.idle(2, plant.cfg.n_zones)
    cmd.coolant_lpm[:] = [0.0, 0.0]
    run(plant, cmd, 60.0)
    m = plant.observe().marker_temp_degc
    rise = m[0] - m[1]
    assert rise[0] > 5.0 and rise[0] > 3 * rise[-1], f"near end {rise[0]:.2f} K, far end {rise[-1]:.2f} K"
    assert plant.soc()[0, 0] < plant.soc()[0, 1], "the short drains its cell"
    hot = Plant(sel, PlantConfig(sensor_noise_k=0.0))
    cool = Plant(sel, PlantConfig(sensor_noise_k=0.0))
    run(hot, discharge_cmd(hot, 10.0, coolant=0.0), 300.0)
    run(cool, discharge_cmd(cool, 10.0, coolant=20.0), 300.0)
    assert cool.temp_degc().max() < hot.temp_degc().max() - 3.0


def test_cutoff_trips_and_weak_cell_trips_first(cells):
    sel = cells.select([5, 5])
    plant = Plant(sel, faults=(WeakCell(1, 2, 0.6, 2.0),))
    cmd = discharge_cmd(plant, 10.0, coolant=20.0)
    t_trip, v_trip = [None, None], [None, None]
    for _ in range(8000):
        plant.step(cmd, 1.0)
        for k in (0, 1):
            if plant.tripped[k] and t_trip[k] is None:
                t_trip[k] = plant.t_s
                v_trip[k] = plant.cell_voltage_v.reshape(2, -1)[k].min()
        if plant.tripped.all():
            break
    assert plant.tripped.all() and t_trip[1] < t_trip[0]
    assert max(v_trip) <= 2.5 and min(v_trip) > 2.0, v_trip
    assert plant.residual_ah()[1] > plant.residual_ah()[0], "the weak cell strands charge in its module"
    plant.step(cmd, 1.0)
    assert np.all(plant.current_a == 0.0), "a tripped station stays off"


@pytest.mark.parametrize("mode,check", [
    (SensorFaultMode.NAN, lambda v, true: np.isnan(v)),
    (SensorFaultMode.OUT_OF_RANGE, lambda v, true: v == 250.0),
    (SensorFaultMode.STUCK, lambda v, true: abs(v - true) > 0.5),
])
def test_sensor_faults_touch_the_observation_only(cells, mode, check):
    sel = cells.select([2])
    faulty = Plant(sel, PlantConfig(sensor_noise_k=0.0), faults=(SensorFault(0, 1, mode, onset_s=1.0),))
    clean = Plant(sel, PlantConfig(sensor_noise_k=0.0))
    for p in (faulty, clean):
        run(p, discharge_cmd(p, 10.0), 120.0)
    np.testing.assert_allclose(faulty.temp_degc(), clean.temp_degc())
    v = faulty.observe().marker_temp_degc[0, 1]
    assert check(v, clean.observe().marker_temp_degc[0, 1])


def test_bad_commands_and_faults_are_refused(cells):
    plant = Plant(cells.select([0, 1]))
    cmd = Command.idle(3, 2)
    with pytest.raises(ValueError, match=r"command\.discharge_on has shape \(3,\), expected \(2,\)"):
        plant.step(cmd, 0.1)
    with pytest.raises(ValueError, match="cell 9 outside"):
        Plant(cells.select([0]), faults=(InternalShort(0, 9, 1.0),))
    with pytest.raises(ValueError, match="n_zones"):
        PlantConfig(n_zones=9)


def test_rows_with_only_the_required_truth_columns(tmp_path):
    from tools.hil.cells import load_cells

    f = tmp_path / "few.csv"
    f.write_text("cell_id,truth_soc,truth_soh,truth_cap_Ah,truth_r_contact_mOhm,truth_t_amb_C\n"
                 "0,0.8,0.9,4.6,2,25\n1,0.8,0.65,3.3,9,25\n")
    plant = Plant(load_cells(f))
    np.testing.assert_allclose(plant.bank.cap_ah.reshape(2, -1).mean(axis=1), [0.9 * 5.153, 0.65 * 5.153], rtol=0.02)
    run(plant, discharge_cmd(plant, 5.0, coolant=5.0), 120.0)
    v = plant.observe().module_voltage_v
    assert v[0] > v[1], "the aged module sags more at the same current"


@pytest.fixture(scope="module")
def two_rows(cells):
    return cells.select([7, 8])


def test_any_command_keeps_the_plant_physical(two_rows):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    value = st.one_of(st.floats(min_value=-1e3, max_value=1e3), st.just(float("nan")))

    @settings(max_examples=25, deadline=None)
    @given(st.lists(value, min_size=14, max_size=14), st.booleans())
    def check(v, on):
        plant = Plant(two_rows)
        cmd = Command(np.array([on, not on]), np.array(v[0:2]), np.array(v[2:4]),
                      np.array(v[4:8]).reshape(2, 2), np.array(v[8:12]).reshape(2, 2), np.array(v[12:14]))
        soc0 = plant.soc()
        for _ in range(20):
            plant.step(cmd, 0.5)
        assert np.all(np.isfinite(plant.temp_degc())) and np.all(np.isfinite(plant.cell_voltage_v))
        assert np.all((plant.current_a >= 0) & (plant.current_a <= plant.cfg.station_max_current_a))
        assert np.all(plant.soc() <= soc0 + 1e-12), "a discharge station never charges"
        assert np.all(plant.pressure_kpa >= 0) and np.all(plant.pressure_kpa <= plant.cfg.fixture.p_max_kpa)

    check()


def test_the_bench_plant_without_faults_is_the_model_built_from_truth(cells):
    """tools/hil/plant.Plant adds only faults: with none it steps exactly as the model does."""
    from edge.batterymodel.plant import Plant as ModelPlant
    from edge.batterymodel.sil import HoldController, SilConfig, run_sil
    from tools.hil.plant import batteries_from_truth

    rows = cells.select([0, 1, 2])
    bench, model = Plant(rows), ModelPlant(batteries_from_truth(rows))
    cmd = Command.idle(3, 2)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = 7.0
    cmd.coolant_lpm[:] = 4.0
    a = run_sil(bench, HoldController(cmd), SilConfig(dt_s=1.0, max_time_s=120.0)).metrics
    b = run_sil(model, HoldController(cmd), SilConfig(dt_s=1.0, max_time_s=120.0)).metrics
    assert a == b and a.discharged_ah > 0
    assert np.array_equal(bench.observe().marker_temp_degc, model.observe().marker_temp_degc)


def test_a_battery_short_follows_its_battery_from_its_onset_after_the_load(cells):
    from tools.hil.faults import BatteryShort

    four = cells.select([0, 1, 2, 3])
    target = int(four["cell_id"][3])
    plant = Plant(four, PlantConfig(), faults=(BatteryShort(battery_id=target, cell=0, r_short_ohm=0.25, onset_s=20.0),),
                  empty=True)
    healthy = Plant(four, PlantConfig(), empty=True)
    cmd = Command.idle(4, plant.cfg.n_zones)
    for p in (plant, healthy):
        run(p, cmd, 50.0)  # before the load: nothing on any station
        p.load_row(2, four.select([3]))
    assert plant.battery_at.tolist() == [-1, -1, target, -1]
    for p in (plant, healthy):
        run(p, cmd, 10.0)  # 10 s after the load: before the onset
    assert plant.temp_degc()[2].max() == pytest.approx(healthy.temp_degc()[2].max(), abs=1e-9)
    for _ in range(60):
        for p in (plant, healthy):
            p.step(cmd, 5.0)
    heated = plant.temp_degc()[2, 0] - healthy.temp_degc()[2, 0]
    assert heated > 2.0  # the shorted cell heats by V^2/R, on the station that holds that battery
    assert np.allclose(plant.temp_degc()[[0, 1, 3]], healthy.temp_degc()[[0, 1, 3]])
    plant.unload_module(2)
    assert plant.battery_at[2] == -1

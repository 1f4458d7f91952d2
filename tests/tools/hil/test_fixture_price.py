"""What relief costs in the plant, the clamp ripple and the fixture zones (edge/batterymodel/fixture.py, tools/hil/plant.py).

Stated amounts (FixtureConfig defaults, 6 cells in 2 zones, every cell at 150 kPa = 4.64 mΩ):
the station can drive at most path_drop_max_v / ΣR = 0.5 V / 27.8 mΩ ≈ 18 A (no price below the
15 A station limit); full relief holds a zone at 20 kPa (35.4 mΩ a cell), so at a 5 A command one
fully relieved zone delivers ≈ 4.16 A (17 % less) and both zones ≈ 2.35 A (53 % less), averaged
over the ±2.5 % clamp ripple; half relief (75 kPa, 5.6 mΩ a cell) still delivers the 5 A.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.batterymodel.fixture import FixtureConfig, pressure_target_kpa
from tools.hil.plant import Command, Plant, PlantConfig
from edge.batterymodel.thermal import ThermalConfig

pytestmark = pytest.mark.unit

EXACT = dict(soc_scatter=0.0, cap_scatter=0.0, r_scatter=0.0, sensor_noise_k=0.0)


def discharge(plant, current, relief, coolant=4.0):
    cmd = Command.idle(plant.n_modules, plant.cfg.n_zones, 150.0)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current
    cmd.relief[:] = relief
    cmd.coolant_lpm[:] = coolant
    return cmd


def mean_current_over(plant, cmd, seconds, dt=0.1):
    currents = []
    for _ in range(int(round(seconds / dt))):
        plant.step(cmd, dt)
        currents.append(plant.current_a.copy())
    return np.mean(currents, axis=0)


def test_full_relief_costs_current_and_slows_the_discharge(cells):
    plant = Plant(cells.select([0, 0, 0, 0]), PlantConfig(**EXACT))
    relief = np.array([[0.0, 0.0], [0.5, 0.5], [0.0, 1.0], [1.0, 1.0]])
    cmd = discharge(plant, 5.0, relief)
    mean_current_over(plant, cmd, 5.0)  # the clamp settles (tau 0.5 s)
    soc0 = plant.soc().mean(axis=1)
    current = mean_current_over(plant, cmd, 50.0)  # ten ripple periods
    np.testing.assert_allclose(current[:2], 5.0, err_msg="no price below full relief: half relief is free")
    assert current[2] == pytest.approx(4.16, rel=0.03), "one zone fully relieved: 17 % less"
    assert current[3] == pytest.approx(2.35, rel=0.03), "both zones fully relieved: 53 % less"
    drawn = soc0 - plant.soc().mean(axis=1)
    np.testing.assert_allclose(drawn / drawn[0], current / 5.0, rtol=0.02,
                               err_msg="the charge drawn falls with the current: relief slows the discharge")
    assert np.all(plant.pressure_kpa[3] < 21.0) and np.all(plant.pressure_kpa[3] > 19.0), "held at 20 kPa"


def test_relief_price_grows_with_the_command_and_a_zero_setpoint_opens(cells):
    plant = Plant(cells.select([0, 0]), PlantConfig(**EXACT))
    cmd = discharge(plant, 10.0, np.array([[0.0, 0.0], [1.0, 1.0]]))
    mean_current_over(plant, cmd, 5.0)
    current = mean_current_over(plant, cmd, 10.0)
    assert current[0] == pytest.approx(10.0), "the clamped station delivers the command"
    assert current[1] == pytest.approx(2.35, rel=0.05), "the relieved one is held at what its contacts pass: 76 % less"
    np.testing.assert_allclose(pressure_target_kpa(np.array([150.0, 150.0, 10.0, 0.0]), np.array([1.0, 0.9, 1.0, 0.0]),
                                                   FixtureConfig()), [20.0, 20.0, 10.0, 0.0])


def test_clamp_ripple_is_present_bounded_and_seeded(cells):
    def pressures(seed):
        plant = Plant(cells.select([0, 1]), PlantConfig(seed=seed))
        cmd = discharge(plant, 5.0, 0.0)
        out = []
        for _ in range(200):
            plant.step(cmd, 0.1)
        for _ in range(100):  # two ripple periods at 0.2 Hz
            plant.step(cmd, 0.1)
            out.append(plant.observe().pressure_kpa.copy())
        return np.array(out)

    p = pressures(seed=0)
    rel = p / 150.0 - 1.0
    assert np.all(rel.std(axis=0) > 0.01), "pressure varies: S15's correlation has something to see"
    assert np.all(np.abs(rel) <= FixtureConfig().ripple_frac + 1e-3), "within ±2.5 % of the setpoint"
    assert rel.std(axis=0) == pytest.approx(np.full((2, 2), 0.025 / np.sqrt(2)), rel=0.1), "a sine of ±2.5 %"
    assert not np.allclose(rel[:, 0, 0], rel[:, 0, 1]), "each zone has its own phase"
    np.testing.assert_array_equal(p, pressures(seed=0))
    assert not np.allclose(p, pressures(seed=5))


def test_relief_of_one_zone_touches_only_that_zones_cells(cells):
    # no conduction between cells, so whatever reaches the zone-0 cells would have to come through
    # the fixture; 3.5 A stays under the 3.87 A the relieved zone lets through at the ripple's low
    cfg = PlantConfig(**EXACT, thermal=ThermalConfig(conduction_w_per_k=0.0))
    plants = [Plant(cells.select([2]), cfg) for _ in range(2)]
    for plant, relief in zip(plants, ([[0.0, 0.0]], [[0.0, 1.0]])):
        cmd = discharge(plant, 3.5, np.array(relief), coolant=20.0)
        cmd.discharge_on[:] = False
        for _ in range(50):  # the clamps settle first: the same current from the first step on
            plant.step(cmd, 0.1)
        cmd.discharge_on[:] = True
        for _ in range(3000):
            plant.step(cmd, 0.1)
    clamped, relieved = plants
    zone = clamped.zone_of_cell
    np.testing.assert_array_equal(zone, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(relieved.current_a, 3.5)
    np.testing.assert_allclose(relieved.temp_degc()[0, zone == 0], clamped.temp_degc()[0, zone == 0], atol=1e-9)
    cooler = clamped.temp_degc()[0, zone == 1] - relieved.temp_degc()[0, zone == 1]
    assert np.all(cooler > 0.2), f"the relieved zone's coolant film cools its cells: {cooler}"
    m_clamped, m_relieved = clamped.observe().marker_temp_degc[0], relieved.observe().marker_temp_degc[0]
    np.testing.assert_allclose(m_relieved[:2], m_clamped[:2], atol=1e-9)  # markers 0, 1: zone 0
    assert np.all(m_relieved[2:] < m_clamped[2:] - 0.2)  # markers 2, 3: zone 1
    assert relieved.pressure_kpa[0, 0] > 140.0 and relieved.pressure_kpa[0, 1] < 21.0

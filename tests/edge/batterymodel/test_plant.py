"""The fast battery model (edge/batterymodel/plant.py) built from `Batteries`, without the bench."""

import numpy as np
import pytest

from edge.batterymodel.plant import Batteries, Command, Plant, PlantConfig

pytestmark = pytest.mark.unit


def batteries(soc=(0.3, 0.6), soh=(0.9, 0.75), r_contact=(5.0, 5.0)):
    n = len(soc)
    return Batteries(soc=np.array(soc), soh=np.array(soh), r_contact_mohm=np.array(r_contact),
                     t_amb_degc=np.full(n, 25.0), source="test")


def discharge(plant: Plant, current_a: float = 5.0, seconds: float = 20.0):
    cmd = Command.idle(plant.n_modules, plant.cfg.n_zones)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current_a
    cmd.coolant_lpm[:] = 4.0
    for _ in range(int(seconds / 0.5)):
        plant.step(cmd, 0.5)


def test_the_model_discharges_and_heats_from_its_batteries():
    plant = Plant(batteries(), PlantConfig(sensor_noise_k=0.0))
    before = plant.residual_ah().copy()
    discharge(plant)
    assert np.allclose(plant.current_a, 5.0)
    drawn = before - plant.residual_ah()
    assert np.allclose(drawn, 5.0 * 20.0 / 3600.0, rtol=0.02)  # coulomb count of the string current
    assert np.all(plant.temp_degc() > 25.0)
    assert plant.observe().marker_temp_degc.shape == (2, 4)


def test_more_contact_resistance_heats_more():
    cool = Plant(batteries(r_contact=(5.0, 5.0)), PlantConfig(sensor_noise_k=0.0))
    hot = Plant(batteries(r_contact=(40.0, 40.0)), PlantConfig(sensor_noise_k=0.0))
    discharge(cool)
    discharge(hot)
    assert np.all(hot.temp_degc().max(axis=1) > cool.temp_degc().max(axis=1))


def test_batteries_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="batteries.soh"):
        Batteries(soc=np.zeros(2), soh=np.ones(3), r_contact_mohm=np.zeros(2), t_amb_degc=np.zeros(2))


def step_all(plants, cmd, n, dt=0.5):
    for _ in range(n):
        for p in plants:
            p.step(cmd, dt)


def running(m: int, current_a: float = 5.0) -> Command:
    cmd = Command.idle(m, 2)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current_a
    cmd.coolant_lpm[:] = 4.0
    return cmd


STATE = ("temp_k", "current_a", "cell_voltage_v", "cell_current_a", "tripped", "clamp_kpa", "pressure_kpa",
         "path_limit_a", "t_amb_k", "coolant_k", "initial_charge_ah")


def test_loading_a_module_changes_only_its_station_bit_for_bit():
    b = Batteries(soc=np.array([0.3, 0.6, 0.8, 0.5]), soh=np.array([0.9, 0.75, 0.8, 0.85]),
                  r_contact_mohm=np.full(4, 5.0), t_amb_degc=np.array([25.0, 30.0, 20.0, 28.0]), source="test")
    ref, plant = Plant(b.select([0, 1, 2])), Plant(b.select([0, 1, 2]))
    cmd = running(3)
    step_all((ref, plant), cmd, 20)
    plant.load_module(1, b.select(3))
    assert plant.modules_placed.tolist() == [1, 2, 1]
    assert np.allclose(plant.soc()[1].mean(), 0.5, atol=0.01) and np.all(plant.temp_degc()[1] == 28.0)
    assert plant.initial_charge_ah[1] == plant.residual_ah()[1] and not plant.tripped[1]
    assert np.all(plant.clamp_kpa[1] == 0.0) and np.all(plant.pressure_kpa[1] == 0.0)
    step_all((ref, plant), cmd, 20)
    for name in STATE:
        a, c = np.asarray(getattr(ref, name)), np.asarray(getattr(plant, name))
        n = a.size // 3
        assert np.array_equal(np.delete(a.reshape(3, n), 1, axis=0), np.delete(c.reshape(3, n), 1, axis=0)), name
    assert np.array_equal(np.delete(ref.soc(), 1, axis=0), np.delete(plant.soc(), 1, axis=0))
    assert np.array_equal(ref.bank.v1.reshape(3, -1)[[0, 2]], plant.bank.v1.reshape(3, -1)[[0, 2]])
    assert np.array_equal(np.delete(ref.observe().marker_temp_degc, 1, axis=0),
                          np.delete(plant.observe().marker_temp_degc, 1, axis=0))
    assert plant.current_a[1] == 5.0


def test_loading_clears_a_tripped_station():
    plant = Plant(batteries(soc=(0.02, 0.6)), PlantConfig(sensor_noise_k=0.0))
    step_all((plant,), running(2), 40)
    assert plant.tripped[0] and not plant.tripped[1]
    plant.load_module(0, batteries(soc=(0.7,), soh=(0.9,), r_contact=(5.0,)))
    assert not plant.tripped[0]
    step_all((plant,), running(2), 4)
    assert plant.current_a[0] == 5.0


def test_an_empty_station_has_no_module():
    plant = Plant(batteries(), PlantConfig(sensor_noise_k=0.0), loaded=[1])
    assert plant.loaded.tolist() == [False, True] and plant.modules_placed.tolist() == [0, 1]
    step_all((plant,), running(2), 10)
    obs = plant.observe()
    assert obs.current_a[0] == 0.0 and obs.module_voltage_v[0] == 0.0 and not obs.tripped[0]
    assert np.all(obs.marker_temp_degc[0] == 25.0) and obs.current_a[1] == 5.0
    assert plant.residual_ah()[0] == 0.0 and plant.initial_charge_ah[0] == 0.0 and np.isnan(plant.soc()[0]).all()
    plant.unload_module(1)
    step_all((plant,), running(2), 2)
    assert not plant.current_a.any() and not plant.residual_ah().any()
    assert np.all(plant.temp_degc()[1] == 25.0), "an emptied station's cells are back at its ambient"
    with pytest.raises(ValueError, match="station 2 outside"):
        plant.unload_module(2)
    with pytest.raises(ValueError, match="one battery"):
        plant.load_module(0, batteries())
    with pytest.raises(ValueError, match="loaded: station 5"):
        Plant(batteries(), loaded=[5])

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

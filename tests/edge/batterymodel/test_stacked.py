"""Stacked SIL (edge/batterymodel/stacked.py): K copies of one plant in one NumPy step give each
copy exactly what the scalar plant and `run_sil` give it alone."""

import dataclasses

import numpy as np
import pytest

from edge.batterymodel.plant import Batteries, Command, Plant, PlantConfig
from edge.batterymodel.sil import SilConfig, run_sil
from edge.batterymodel.stacked import run_sil_stacked, stack_plant

pytestmark = pytest.mark.unit


def batteries():
    return Batteries(soc=np.array([0.35, 0.6, 0.5]), soh=np.array([0.9, 0.75, 0.8]),
                     r_contact_mohm=np.array([5.0, 12.0, 8.0]), t_amb_degc=np.array([25.0, 27.0, 22.0]),
                     source="test")


def command(m: int, current_a: float) -> Command:
    cmd = Command.idle(m, 2)
    cmd.discharge_on[:] = True
    cmd.current_a[:] = current_a
    cmd.coolant_lpm[:] = 4.0
    return cmd


def test_a_stacked_plant_steps_each_copy_bit_for_bit_as_the_plant_alone():
    plant = Plant(batteries(), PlantConfig(seed=3))
    stacked = stack_plant(Plant(batteries(), PlantConfig(seed=3)), 4)
    assert stacked.n_modules == 12 and stacked.copies == 4
    one, four = command(3, 7.0), command(12, 7.0)
    for _ in range(50):
        obs1, obs4 = plant.observe(), stacked.observe()
        for g in range(4):
            np.testing.assert_array_equal(obs4.marker_temp_degc[3 * g:3 * g + 3], obs1.marker_temp_degc)
            np.testing.assert_array_equal(obs4.module_voltage_v[3 * g:3 * g + 3], obs1.module_voltage_v)
        plant.step(one, 2.0)
        stacked.step(four, 2.0)
    for g in range(4):
        np.testing.assert_array_equal(stacked.temp_k[3 * g:3 * g + 3], plant.temp_k)
        np.testing.assert_array_equal(stacked.residual_ah()[3 * g:3 * g + 3], plant.residual_ah())
    assert plant.residual_ah().sum() < plant.initial_charge_ah.sum()  # it did discharge


def test_only_a_fresh_model_plant_stacks():
    plant = Plant(batteries())
    with pytest.raises(ValueError, match="k must be >= 1"):
        stack_plant(plant, 0)
    plant.step(command(3, 5.0), 1.0)
    with pytest.raises(ValueError, match="fresh"):
        stack_plant(plant, 2)

    class Faulty(Plant):
        pass

    with pytest.raises(TypeError, match="Faulty"):
        stack_plant(Faulty(batteries()), 2)


class PerCopyHold:
    """Copy g held at currents[g] A; `isolate` = {copy: (station, from step)} (a core's isolation)."""

    def __init__(self, currents, m, isolate=None):
        self.cmd = command(m * len(currents), 0.0)
        self.cmd.current_a[:] = np.repeat(currents, m)
        self.m, self.k, self.isolate, self.steps = m, len(currents), isolate or {}, 0

    def step(self, obs, dt_s):
        self.steps += 1
        return self.cmd

    def isolated_stations(self):
        out = np.zeros(self.m * self.k, bool)
        for g, (station, after) in self.isolate.items():
            out[g * self.m + station] = self.steps >= after
        return out


class OneHold(PerCopyHold):
    def __init__(self, current, m, isolate=None):
        super().__init__([current], m, {0: isolate} if isolate else None)


@pytest.mark.parametrize("isolate", [None, (1, 40)])
def test_run_sil_stacked_gives_each_copy_its_scalar_metrics(isolate):
    """Copies at 4, 9 and 14 A end at different times: each one's metrics freeze when its scalar run
    stops, whatever the others do after (and a station isolated in copy 1 only)."""
    currents = [4.0, 9.0, 14.0]
    cfg = SilConfig(dt_s=2.0, max_time_s=5400.0, record_every_s=60.0)
    pcfg = PlantConfig(seed=1)
    stacked = stack_plant(Plant(batteries(), pcfg), 3)
    got = run_sil_stacked(stacked, PerCopyHold(currents, 3, {1: isolate} if isolate else None), cfg,
                          cell_ids=[7, 8, 9])
    times = []
    for g, current in enumerate(currents):
        want = run_sil(Plant(batteries(), pcfg), OneHold(current, 3, isolate if g == 1 else None), cfg,
                       cell_ids=[7, 8, 9]).metrics
        assert dataclasses.asdict(got[g]) == dataclasses.asdict(want)
        times.append(want.batch_time_s)
    assert times[0] > times[1] > times[2]  # the copies really ended apart
    assert got[1].modules_isolated == (1 if isolate else 0)


def test_an_unfinished_copy_ends_at_max_time():
    cfg = SilConfig(dt_s=2.0, max_time_s=600.0, record_every_s=60.0)
    got = run_sil_stacked(stack_plant(Plant(batteries()), 2), PerCopyHold([1.0, 14.0], 3), cfg)
    want = run_sil(Plant(batteries()), OneHold(1.0, 3), cfg).metrics
    assert dataclasses.asdict(got[0]) == dataclasses.asdict(want)
    assert got[0].batch_time_s == 600.0 and got[0].modules_finished < 3


def test_concatenated_plants_each_run_as_alone_under_the_traditional_method():
    """Plants of 3, 1 and 2 modules (other batteries, one seed) side by side under the baseline
    controller: each group's metrics are its own plant's run_sil metrics (the planner's reference
    runs of every tier in one SIL run)."""
    from edge.batterymodel.stacked import concat_plants
    from edge.strategy.baseline import BaselineController

    def make(rows):
        b = batteries()
        pick = np.array(rows)
        return Batteries(soc=b.soc[pick], soh=b.soh[pick], r_contact_mohm=b.r_contact_mohm[pick] * 2.0,
                         t_amb_degc=b.t_amb_degc[pick] + 10.0, source="test")

    groups = [[0, 1, 2], [1], [2, 0]]
    cfg = SilConfig(dt_s=2.0, max_time_s=14400.0, record_every_s=60.0)
    ids = [[10, 11, 12], [20], [30, 31]]
    stacked = concat_plants([Plant(make(g), PlantConfig(seed=5)) for g in groups])
    assert stacked.group_sizes == (3, 1, 2) and stacked.n_modules == 6
    got = run_sil_stacked(stacked, BaselineController(6, 2), cfg, cell_ids=ids)
    times = set()
    for g, rows in enumerate(groups):
        want = run_sil(Plant(make(rows), PlantConfig(seed=5)), BaselineController(len(rows), 2), cfg,
                       cell_ids=ids[g]).metrics
        a, b = dataclasses.asdict(got[g]), dataclasses.asdict(want)
        assert a.pop("residual_ah") == pytest.approx(b.pop("residual_ah"), rel=1e-12)  # a lone module's sum
        assert a.pop("residual_pct") == pytest.approx(b.pop("residual_pct"), rel=1e-12)
        assert a.pop("discharged_ah") == pytest.approx(b.pop("discharged_ah"), rel=1e-12)
        for ma, mb in zip(a.pop("per_module"), b.pop("per_module")):
            assert ma.pop("residual_pct") == pytest.approx(mb.pop("residual_pct"), rel=1e-12)
            assert ma == mb
        assert a == b
        times.add(want.batch_time_s)
    assert len(times) >= 2 and max(m.relief_events for m in got) > 0, (times, [m.relief_events for m in got])


def test_concat_refuses_plants_of_other_configurations():
    from edge.batterymodel.stacked import concat_plants

    with pytest.raises(ValueError, match="one PlantConfig"):
        concat_plants([Plant(batteries(), PlantConfig(seed=1)), Plant(batteries(), PlantConfig(seed=2))])
    with pytest.raises(ValueError, match="no plant"):
        concat_plants([])

"""SIL speed: 100 modules (600 cells) stepped by 100 ms of virtual time (marker bench).

`make bench` gives steps per wall second (1 / mean); the ratio to real time is that × 0.1 s.
"""

import pytest

from edge.strategy.baseline import BaselineController
from tools.hil.plant import Plant


@pytest.mark.bench
def test_step_100_modules(benchmark, cells):
    plant = Plant(cells.select(slice(0, 100)))
    ctrl = BaselineController(100, plant.cfg.n_zones)

    def tick():
        plant.step(ctrl.step(plant.observe(), 0.1), 0.1)

    benchmark(tick)
    benchmark.extra_info.update(modules=100, cells=600, virtual_dt_s=0.1)
    assert plant.t_s > 0

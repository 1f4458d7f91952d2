"""One batch discharge in SIL under several controllers: the core of `bench discharge`.

Owns `discharge_batch` and `compare_controllers` (tests: tests/tools/hil/test_hil_batch.py).
The plant takes the rows' `truth_*` columns; a controller factory gets the plant only for its
shape (modules, zones) and the rows' `feat_*` columns, the measurements a real line has.
Every controller runs on a fresh plant built from the same rows, config and faults.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge.strategy.baseline import BaselineConfig, BaselineController
from tools.hil.cells import BenchCells
from tools.hil.faults import Fault
from tools.hil.plant import Plant, PlantConfig
from edge.batterymodel.sil import Controller, SilConfig, SilResult, run_sil

ControllerFactory = Callable[[Plant, dict[str, np.ndarray]], Controller]
"""(plant for its shape, feat_* columns by name) -> controller."""


def features(cells: BenchCells) -> dict[str, np.ndarray]:
    """The columns a controller may see: the `feat_*` measurements, one entry per module."""
    return {name: cells[name].copy() for name in cells.feat_columns()}


def baseline_factory(config: BaselineConfig | None = None) -> ControllerFactory:
    def make(plant: Plant, feats: dict[str, np.ndarray]) -> Controller:
        return BaselineController(plant.n_modules, plant.cfg.n_zones, config)
    return make


def discharge_batch(cells: BenchCells, factory: ControllerFactory, plant_config: PlantConfig | None = None,
                    sil_config: SilConfig | None = None, faults: tuple[Fault, ...] = ()) -> SilResult:
    plant = Plant(cells, plant_config, faults)
    return run_sil(plant, factory(plant, features(cells)), sil_config)


def compare_controllers(cells: BenchCells, factories: dict[str, ControllerFactory],
                        plant_config: PlantConfig | None = None, sil_config: SilConfig | None = None,
                        faults: tuple[Fault, ...] = ()) -> dict[str, dict[str, float | int]]:
    """Metrics per controller name on the same batch (units in the keys, JSON-ready)."""
    return {name: discharge_batch(cells, f, plant_config, sil_config, faults).metrics.to_dict()
            for name, f in factories.items()}

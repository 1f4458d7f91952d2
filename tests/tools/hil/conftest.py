"""Shared fixtures of the HIL plant tests: the training cells and the ECM defaults, loaded once."""

import pytest

from edge.batterymodel.cell_model import EcmParams
from tools.hil.cells import default_cells_path, load_cells


@pytest.fixture(scope="session")
def cells():
    return load_cells(default_cells_path())


@pytest.fixture(scope="session")
def ecm():
    return EcmParams.load()

"""Shared fixtures of the battery-model tests: the ECM defaults, loaded once."""

import pytest

from edge.batterymodel.cell_model import EcmParams


@pytest.fixture(scope="session")
def ecm():
    return EcmParams.load()


@pytest.fixture(scope="session")
def cells():
    """The training cells' columns by name (truth included: the model's tests check physics)."""
    from edge import REPO_ROOT
    from edge.grading.features import read_cells_csv

    return read_cells_csv(REPO_ROOT.parent / "shared" / "data" / "cells_train.csv", required=()).columns

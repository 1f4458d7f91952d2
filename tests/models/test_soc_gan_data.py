"""The SOC GAN's training data refuses a physically absurd row as the grading reader does (issue 17)."""

import logging

import numpy as np
import pytest

from edge import REPO_ROOT
from models.soc_gan.data import load_split

pytestmark = pytest.mark.unit

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def test_training_split_leaves_out_a_row_with_v_rest_400_and_names_its_line(tmp_path, caplog):
    header, *rows = CELLS.read_text().splitlines()[:21]
    fields = rows[4].split(",")
    fields[header.split(",").index("feat_v_rest_V")] = "400"
    rows[4] = ",".join(fields)
    path = tmp_path / "v_rest_400.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    with caplog.at_level(logging.WARNING, logger="models.soc_gan.data"):
        split = load_split(path)
    assert [(r.line, r.cell_id, r.field) for r in split.refused] == [(6, "4", "feat_v_rest_V")]
    assert f"{path}:6: cell_id 4: refused: feat_v_rest_V" in caplog.text
    ids = np.concatenate([split.ids_train, split.ids_test])
    assert 4 not in ids.tolist() and ids.size == 19
    assert np.all(split.x_train[:, 0] <= 5.0) and np.all(split.x_test[:, 0] <= 5.0)

"""`grade`'s progress bar over a file's rows (stderr), counted with the rows it refuses."""

import pytest

from edge import REPO_ROOT
from edge.grading.cli import grade_file
from edge.grading.soc_model import SocModel
from edge.grading.tiers import TierConfig

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"

pytestmark = pytest.mark.unit


def test_the_bar_counts_every_row_of_the_file_refused_ones_too(tmp_path, capsys):
    lines = CELLS.read_text().splitlines()[:41]
    header = lines[0].split(",")
    i = header.index("feat_v_rest_V")
    bad = lines[3].split(",")
    bad[i] = "400"  # outside the physical range: refused, still a row the bar passes
    lines[3] = ",".join(bad)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    report = grade_file(SocModel.load(), path, TierConfig(), chunk_rows=16, progress=True)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert report["n_cells"] == 39 and report["n_refused"] == 1
    assert "grade: 100%" in err and "40/40" in err


def test_no_bar_unless_asked(tmp_path, capsys):
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(CELLS.read_text().splitlines()[:11]) + "\n")
    grade_file(SocModel.load(), path, TierConfig(n_tiers=2))
    assert "grade:" not in capsys.readouterr().err

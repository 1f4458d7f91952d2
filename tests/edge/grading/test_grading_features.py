"""edge.grading.features: CSV reading with file:line errors, and the no-leak rule for inputs."""

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import (
    FEATURE_COLUMNS,
    CellsFileError,
    ForbiddenFeatureError,
    feature_matrix,
    read_cells_csv,
    target_column,
)

pytestmark = pytest.mark.unit

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def write(tmp_path, text):
    path = tmp_path / "cells.csv"
    path.write_text(text)
    return path


def header():
    return "cell_id," + ",".join(FEATURE_COLUMNS)


def row(cell_id, value="1.0"):
    return f"{cell_id}," + ",".join([value] * len(FEATURE_COLUMNS))


def test_reads_the_shared_training_file():
    table = read_cells_csv(TRAIN_CSV)
    assert len(table) == 1000
    x = feature_matrix(table)
    assert x.shape == (1000, len(FEATURE_COLUMNS))
    assert np.all(np.isfinite(x))
    soc = target_column(table, "truth_soc")
    assert 0.0 < soc.min() < soc.max() < 1.0


@pytest.mark.parametrize("name", ["aux_q_rem_1C_Ah", "truth_soc", "truth_ocv_V", "cell_id"])
def test_refuses_leaking_or_foreign_columns_as_features(name):
    table = read_cells_csv(TRAIN_CSV)
    with pytest.raises(ForbiddenFeatureError, match=name):
        feature_matrix(table, (*FEATURE_COLUMNS, name))


def test_only_feature_columns_are_needed(tmp_path):
    path = write(tmp_path, "\n".join([header(), row(7), row(9)]) + "\n")
    table = read_cells_csv(path)
    assert table.cell_ids.tolist() == [7, 9]
    with pytest.raises(CellsFileError, match="truth_soc"):
        target_column(table, "truth_soc")


def test_bad_number_names_file_line_and_column(tmp_path):
    lines = [header(), row(1), row(2).replace("1.0", "abc", 1)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(CellsFileError, match=rf"cells.csv:3: column '{FEATURE_COLUMNS[0]}'"):
        read_cells_csv(path)


def test_nan_in_a_feature_is_refused(tmp_path):
    path = write(tmp_path, "\n".join([header(), row(1, "nan")]) + "\n")
    with pytest.raises(CellsFileError, match=r"cells.csv:2"):
        read_cells_csv(path)


def test_missing_column_and_short_row_and_duplicate_id(tmp_path):
    path = write(tmp_path, "cell_id,feat_v_rest_V\n1,3.7\n")
    with pytest.raises(CellsFileError, match=r":1: missing required columns"):
        read_cells_csv(path)
    path = write(tmp_path, "\n".join([header(), row(1), "2,1.0"]) + "\n")
    with pytest.raises(CellsFileError, match=r":3: 2 fields"):
        read_cells_csv(path)
    path = write(tmp_path, "\n".join([header(), row(1), row(1)]) + "\n")
    with pytest.raises(CellsFileError, match=r":3: cell_id 1 repeats line 2"):
        read_cells_csv(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(CellsFileError, match="cannot open"):
        read_cells_csv(tmp_path / "nope.csv")
    with pytest.raises(CellsFileError, match="empty file"):
        read_cells_csv(write(tmp_path, ""))
    with pytest.raises(CellsFileError, match="no data rows"):
        read_cells_csv(write(tmp_path, header() + "\n"))


def test_non_numeric_optional_column_is_dropped(tmp_path):
    lines = [header() + ",note", row(1) + ",hello", row(2) + ",x"]
    table = read_cells_csv(write(tmp_path, "\n".join(lines) + "\n"))
    assert "note" not in table.columns
    assert feature_matrix(table).shape == (2, len(FEATURE_COLUMNS))


def test_strict_reading_refuses_any_non_numeric_column(tmp_path):
    lines = [header() + ",note", row(1) + ",2.5", row(2) + ",x"]
    with pytest.raises(CellsFileError, match=r"cells\.csv:3: column 'note': not a finite number: 'x'"):
        read_cells_csv(write(tmp_path, "\n".join(lines) + "\n"), strict=True)


def test_limit_stops_early_and_rows_keep_their_line_numbers(tmp_path):
    lines = [header(), row(1), "", row(2), row(3), "not,a,row"]  # the bad last line is never read
    table = read_cells_csv(write(tmp_path, "\n".join(lines) + "\n"), limit=2)
    assert table.cell_ids.tolist() == [1, 2]
    assert table.lines.tolist() == [2, 4]
    assert table.subset(np.array([1])).lines.tolist() == [4]

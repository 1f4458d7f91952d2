"""The cells reader's column-wise path (plain lines) against its row-by-row csv path: the same
table, refusals and errors with their lines; quantiles by partition; the float32 posterior."""

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.grading.features import CellsFileError, _RowParser, iter_cells_csv, read_cells_csv
from edge.grading.soc_model import SocModel, quantiles_by_partition

pytestmark = pytest.mark.unit

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def slow_read(path, **kw):
    """The same file through the row-by-row parser only (the reference)."""
    real = _RowParser.parse_block
    _RowParser.parse_block = lambda self, rows: self.parse(rows)
    try:
        return read_cells_csv(path, **kw)
    finally:
        _RowParser.parse_block = real


def lines_of(n=30):
    return CELLS.read_text().splitlines()[: n + 1]


def assert_same_table(a, b):
    assert a.cell_ids.tolist() == b.cell_ids.tolist()
    assert a.lines.tolist() == b.lines.tolist()
    assert a.refused == b.refused
    assert sorted(a.columns) == sorted(b.columns)
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name])


@pytest.mark.parametrize("edit", ["none", "blank_lines", "crlf", "quoted_row", "out_of_range", "id_float", "bad_optional",
                                  "spaces"])
def test_the_column_path_reads_what_the_csv_path_reads(tmp_path, edit):
    lines = lines_of()
    if edit == "blank_lines":
        lines[5:5] = ["", ",,,"]
    if edit == "quoted_row":
        first = lines[7].split(",")
        first[1] = f'"{first[1]}"'
        lines[7] = ",".join(first)
    if edit == "out_of_range":
        row = lines[3].split(",")
        row[1] = "7.5"  # feat_v_rest_V above 5 V: refused
        lines[3] = ",".join(row)
    if edit == "id_float":
        row = lines[4].split(",")
        row[0] = "1e3"
        lines[4] = ",".join(row)
    if edit == "bad_optional":
        row = lines[9].split(",")
        row[-1] = "n/a"  # truth_ocv_V: an optional column, dropped from here on
        lines[9] = ",".join(row)
    if edit == "spaces":
        row = lines[2].split(",")
        row[2] = f" {row[2]} "
        lines[2] = ",".join(row)
    path = tmp_path / "cells.csv"
    path.write_bytes(("\r\n" if edit == "crlf" else "\n").join(lines).encode() + b"\n")
    fast, slow = read_cells_csv(path), slow_read(path)
    assert_same_table(fast, slow)
    assert len(fast) >= 28
    if edit == "out_of_range":
        assert fast.refused[0].line == 4 and fast.refused[0].field == "feat_v_rest_V"


def test_chunks_and_limits_agree(tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines_of(100)) + "\n")
    for chunk in (7, 50, 100, 4096):
        parts = list(iter_cells_csv(path, chunk_rows=chunk, limit=93))
        assert sum(len(p) for p in parts) == 93
        assert [int(c) for p in parts for c in p.cell_ids] == list(range(93))


@pytest.mark.parametrize("edit, message", [
    ("duplicate", "repeats line 3"), ("width", "fields, the header has"), ("text", "not a finite number"),
    ("nan", "not a finite number")])
def test_errors_name_the_same_line_on_either_path(tmp_path, edit, message):
    lines = lines_of()
    row = lines[12].split(",")
    if edit == "duplicate":
        row[0] = lines[2].split(",")[0]
    if edit == "width":
        row = row[:-1]
    if edit == "text":
        row[3] = "abc"
    if edit == "nan":
        row[3] = "nan"
    lines[12] = ",".join(row)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    for read in (read_cells_csv, slow_read):
        with pytest.raises(CellsFileError, match=f"cells.csv:13: .*{message}"):
            read(path)


def test_a_quoted_field_over_two_lines_keeps_the_line_numbers_after_it(tmp_path):
    lines = lines_of(10)
    row = lines[3].split(",")
    row[-1] = '"1.0\n"'  # truth_ocv_V over two lines: not a number, the column is dropped
    lines[3] = ",".join(row)
    row = lines[8].split(",")
    row[1] = "9"  # refused, and named on its line (10 after the two-line record)
    lines[8] = ",".join(row)
    path = tmp_path / "cells.csv"
    path.write_text("\n".join(lines) + "\n")
    table = read_cells_csv(path)
    assert table.refused[0].line == 10
    assert_same_table(table, slow_read(path))


def test_quantiles_by_partition_are_numpys():
    rng = np.random.default_rng(0)
    for n in (2, 3, 64, 65):
        draws = rng.normal(50, 10, (300, n))
        qs = (0.5, 0.09999999999999998, 0.9)
        got = quantiles_by_partition(draws, qs)
        np.testing.assert_array_equal(got[0], np.median(draws, axis=1))
        np.testing.assert_array_equal(got[1], np.quantile(draws, qs[1], axis=1))
        np.testing.assert_array_equal(got[2], np.quantile(draws, qs[2], axis=1))


def test_the_float32_posterior_is_the_float64_one_within_a_thousandth_of_a_point():
    """A float64 reference of the same Bayes sum (every prior state, no chunks) on 200 real cells."""
    model = SocModel.load()
    x = np.column_stack([read_cells_csv(CELLS, limit=200).columns[c] for c in model.meta["feature_order"]])
    soh = model.soh(x)
    post = model.posterior
    mean, sd = post.estimate(x, soh)
    from edge.grading import soc_physics as sp

    v = x[:, sp._COL["feat_v_rest_V"]]
    drop = post.estimated_drop_mv(x)
    p = post.params
    ref_m, ref_s = [], []
    grid = sp.V_GRID
    for b in range(len(x)):
        ocv = v[b] - post._offsets_v
        soc = np.array([np.interp(ocv, grid, post.soc_table[:, k].astype(float)) for k in range(len(p.prior_lli))])
        model_drop = np.array([np.interp(ocv, grid, post.drop_table_mv[:, k].astype(float)) for k in range(len(p.prior_lli))])
        log_w = -0.5 * ((drop[b] - model_drop) / p.relax_sd_mv) ** 2
        log_w += (-0.5 * ((soh[b] - post._prior_soh) / p.soh_sd) ** 2)[:, None]
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        m = (w * soc).sum()
        ref_m.append(100 * m)
        ref_s.append(100 * np.sqrt((w * (soc - m) ** 2).sum()))
        if b == 40:
            break
    np.testing.assert_allclose(mean[:41], ref_m, atol=1e-3)
    np.testing.assert_allclose(sd[:41], ref_s, atol=1e-3)
    assert np.ptp(mean[:41]) > 20  # real cells across the SOC range

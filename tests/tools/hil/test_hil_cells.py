"""The cells-file loader names file, line and column on bad input (tools/hil/cells.py)."""

import pytest

from tools.hil.cells import load_cells

pytestmark = pytest.mark.unit

HEADER = "cell_id,truth_soc,truth_soh,truth_cap_Ah,truth_r_contact_mOhm,truth_t_amb_C,feat_v_rest_V\n"


def test_reads_rows_and_selects(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + "0,0.5,0.8,4.1,5,25,3.7\n1,0.2,0.7,3.6,8,20,3.5\n")
    t = load_cells(f)
    assert len(t) == 2 and t["truth_soh"][1] == 0.7
    assert t.feat_columns() == ["feat_v_rest_V"]
    assert len(t.select([1])) == 1


@pytest.mark.parametrize("body,match", [
    ("0,0.5,0.8,4.1,5,25,x\n", r"c\.csv:2: column 'feat_v_rest_V': not a finite number"),
    ("0,0.5,1.8,4.1,5,25,3.7\n", r"c\.csv:2: column truth_soh: 1.8 outside"),
    ("0,0.5,0.8,4.1,5\n", r"c\.csv:2: 5 fields, the header has 7"),
    ("", r"no data rows"),
])
def test_bad_rows_name_line_and_column(tmp_path, body, match):
    f = tmp_path / "c.csv"
    f.write_text(HEADER + body)
    with pytest.raises(ValueError, match=match):
        load_cells(f)


def test_missing_truth_column(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("cell_id,truth_soc\n0,0.5\n")
    with pytest.raises(ValueError, match=r"c\.csv:1: missing required columns \['truth_soh'"):
        load_cells(f)

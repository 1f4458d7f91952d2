"""Hostile and careless cells files (issue 17): a clear refusal naming file and line, never a wrong answer.

Rows outside the physical ranges are refused (not graded, listed with line and reason); broken
files raise CellsFileError; `grade` exits 2 naming the file when nothing is left to grade.
"""

import json

import numpy as np
import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.grading.features import (
    FEATURE_COLUMNS,
    MAX_LINE_BYTES,
    PHYSICAL_RANGES,
    CellsFileError,
    iter_cells_csv,
    read_cells_csv,
)

pytestmark = pytest.mark.integration

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
GOOD = dict(zip(FEATURE_COLUMNS, ("3.7", "3.5", "3.5", "3.5", "3.5", "3.45", "3.69", "40", "41", "50",
                                  "25", "25.2", "0.3", "30")))
HEADER = "cell_id," + ",".join(FEATURE_COLUMNS)


def line(cell_id, **change) -> str:
    values = dict(GOOD, **change)
    return f"{cell_id}," + ",".join(values[name] for name in FEATURE_COLUMNS)


def write(tmp_path, lines, name="cells.csv", encoding="utf-8", prefix=b""):
    path = tmp_path / name
    path.write_bytes(prefix + ("\n".join(lines) + "\n").encode(encoding))
    return path


def test_every_feature_has_a_physical_range_containing_the_training_data():
    assert set(PHYSICAL_RANGES) == set(FEATURE_COLUMNS)
    table = read_cells_csv(TRAIN_CSV)
    assert table.refused == () and len(table) == 1000
    for name, (low, high, _) in PHYSICAL_RANGES.items():
        values = table.columns[name]
        assert low < values.min() and values.max() < high, name


@pytest.mark.parametrize("value", ["400", "-3.9"])
def test_feat_v_rest_V_absurd_is_refused_with_its_line(tmp_path, value):
    path = write(tmp_path, [HEADER, line(1), line(2, feat_v_rest_V=value), line(3)])
    table = read_cells_csv(path)
    assert table.cell_ids.tolist() == [1, 3]
    assert table.lines.tolist() == [2, 4]
    (refusal,) = table.refused
    assert (refusal.line, refusal.cell_id, refusal.field) == (3, "2", "feat_v_rest_V")
    assert f"feat_v_rest_V = {value} V is outside the physical range 0..5 V" in refusal.reason
    assert refusal.message(str(path)).startswith(f"{path}:3: cell_id 2: refused")


def test_feat_r0p1s_mOhm_1e30_is_a_range_refusal_not_a_model_error(tmp_path, capsys):
    path = write(tmp_path, [HEADER, line(1), line(2, feat_r0p1s_mOhm="1e30"), line(3), line(4)])
    assert main(["grade", "--cells", str(path), "--json", "--tiers", "2"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [c["cell_id"] for c in report["cells"]] == [1, 3, 4]
    assert report["n_refused"] == 1
    assert report["refused"] == [{"line": 3, "cell_id": "2", "field": "feat_r0p1s_mOhm",
                                  "reason": "feat_r0p1s_mOhm = 1e+30 mOhm is outside the physical range 0.5..1000 mOhm"}]
    assert f"{path}:3: cell_id 2: refused" in captured.err


def test_a_row_outside_several_ranges_names_each_field(tmp_path):
    path = write(tmp_path, [HEADER, line(1), line(2, feat_t_cell_C="200", feat_h_W_m2K="-1")])
    (refusal,) = read_cells_csv(path).refused
    assert refusal.field == "feat_t_cell_C"
    assert "feat_t_cell_C = 200 degC" in refusal.reason and "feat_h_W_m2K = -1 W/m2K" in refusal.reason


def test_inside_the_physical_range_but_outside_training_is_graded_and_flagged(tmp_path, capsys):
    path = write(tmp_path, [HEADER, line(1), line(2, feat_v_rest_V="4.5"), line(3)])
    assert main(["grade", "--cells", str(path), "--json", "--tiers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["refused"] == []
    assert [c["out_of_domain"] for c in report["cells"]] == [[], ["feat_v_rest_V"], []]


def test_every_row_refused_is_an_error_exit_2(tmp_path, capsys):
    path = write(tmp_path, [HEADER, line(1, feat_v_rest_V="400"), line(2, feat_r1s_mOhm="0")], name="absurd.csv")
    with pytest.raises(CellsFileError, match=r"absurd\.csv: every row refused \(2\); the first: .*absurd\.csv:2"):
        read_cells_csv(path)
    assert main(["grade", "--cells", str(path), "--json"]) == 2
    assert "absurd.csv: every row refused" in capsys.readouterr().err


def test_cell_id_1e30_is_refused_not_wrapped_to_int64_min(tmp_path):
    path = write(tmp_path, [HEADER, line(1), line("1e30"), line(3)])
    table = read_cells_csv(path)
    assert table.cell_ids.tolist() == [1, 3]
    assert np.iinfo(np.int64).min not in table.cell_ids
    (refusal,) = table.refused
    assert (refusal.line, refusal.cell_id, refusal.field) == (3, "1e30", "cell_id")
    assert "does not fit a 64-bit integer" in refusal.reason


@pytest.mark.parametrize("text, reason", [
    ("9223372036854775808", "does not fit a 64-bit integer"),
    ("-9223372036854775809", "does not fit a 64-bit integer"),
    ("1e17", "beyond 2^53"),
    ("2.5", "not a whole number"),
])
def test_cell_id_out_of_range_or_inexact_is_refused(tmp_path, text, reason):
    table = read_cells_csv(write(tmp_path, [HEADER, line(1), line(text)]))
    assert table.cell_ids.tolist() == [1]
    assert reason in table.refused[0].reason


def test_large_exact_cell_ids_are_kept_exactly(tmp_path):
    table = read_cells_csv(write(tmp_path, [HEADER, line("9223372036854775807"), line("7.0"), line("-3")]))
    assert table.cell_ids.tolist() == [9223372036854775807, 7, -3]


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path, [HEADER, line(5)], prefix=b"\xef\xbb\xbf")
    table = read_cells_csv(path)
    assert table.cell_ids.tolist() == [5]
    assert table.columns["feat_v_rest_V"].tolist() == [3.7]


def test_latin1_file_is_a_clear_error_naming_the_file_and_line(tmp_path):
    path = write(tmp_path, [HEADER + ",note", line(1) + ",ok", line(2) + ",café"], name="latin.csv",
                 encoding="latin-1")
    with pytest.raises(CellsFileError, match=r"latin\.csv:3: not UTF-8 text \(byte 0xe9"):
        read_cells_csv(path)


def test_latin1_file_exits_2_naming_the_file(tmp_path, capsys):
    path = write(tmp_path, [HEADER + ",note", line(1) + ",é"], name="latin.csv", encoding="latin-1")
    assert main(["grade", "--cells", str(path)]) == 2
    assert f"{path}:2: not UTF-8 text" in capsys.readouterr().err


def test_field_over_128_KB_is_a_clear_error_naming_file_and_line(tmp_path, capsys):
    path = write(tmp_path, [HEADER + ",note", line(1) + ",x", line(2) + "," + "x" * 200_000], name="big.csv")
    with pytest.raises(CellsFileError, match=r"big\.csv:3: not readable as CSV: field larger than field limit"):
        read_cells_csv(path)
    assert main(["grade", "--cells", str(path)]) == 2
    err = capsys.readouterr().err
    assert "big.csv:3" in err and "_csv.Error" not in err and "Traceback" not in err


def test_line_over_the_limit_is_refused_without_reading_it_whole(tmp_path):
    path = write(tmp_path, [HEADER, line(1), "9" * (MAX_LINE_BYTES + 10)], name="long.csv")
    with pytest.raises(CellsFileError, match=rf"long\.csv:3: line longer than {MAX_LINE_BYTES} bytes"):
        read_cells_csv(path)


@pytest.mark.parametrize("note", ['"open quote', '"closed" then text'])
def test_a_broken_quote_names_the_file_and_line(tmp_path, note):
    path = write(tmp_path, [HEADER + ",note", line(1) + ",ok", line(2) + "," + note], name="quote.csv")
    with pytest.raises(CellsFileError, match=r"quote\.csv:3: not readable as CSV"):
        read_cells_csv(path)


def test_chunks_cover_the_file_and_carry_every_refusal(tmp_path):
    lines = [HEADER] + [line(i, feat_v_rest_V="9" if i % 5 == 0 else "3.7") for i in range(1, 23)]
    path = write(tmp_path, lines)
    chunks = list(iter_cells_csv(path, chunk_rows=4))
    kept = np.concatenate([c.cell_ids for c in chunks]).tolist()
    assert kept == [i for i in range(1, 23) if i % 5]
    assert [r.cell_id for r in chunks[-1].refused] == ["5", "10", "15", "20"]
    whole = read_cells_csv(path)
    assert whole.cell_ids.tolist() == kept and len(whole.refused) == 4


def test_a_repeated_id_across_chunks_is_found(tmp_path):
    path = write(tmp_path, [HEADER] + [line(i) for i in range(1, 10)] + [line(2)], name="dup.csv")
    with pytest.raises(CellsFileError, match=r"dup\.csv:11: cell_id 2 repeats line 3"):
        list(iter_cells_csv(path, chunk_rows=3))


def test_grade_file_in_chunks_matches_the_whole_file(tmp_path):
    from edge.grading.cli import grade_cells, grade_file
    from edge.grading.features import feature_matrix
    from edge.grading.soc_model import SocModel
    from edge.grading.tiers import TierConfig

    train = feature_matrix(read_cells_csv(TRAIN_CSV))[:40]
    rows = [f"{i}," + ",".join(f"{v:.6g}" for v in x) for i, x in enumerate(train)]
    path = write(tmp_path, [HEADER, *rows, line(5000, feat_v_rest_V="-1")])
    model = SocModel.load()
    chunked = grade_file(model, path, TierConfig(n_tiers=3), chunk_rows=7)
    whole_table = read_cells_csv(path)
    whole = grade_cells(model, whole_table.cell_ids, feature_matrix(whole_table), TierConfig(n_tiers=3))
    assert [c["cell_id"] for c in chunked["cells"]] == whole_table.cell_ids.tolist() == list(range(40))
    assert [r["line"] for r in chunked["refused"]] == [42]
    soc_chunked = np.array([c["soc_pct"] for c in chunked["cells"]])
    soc_whole = np.array([c["soc_pct"] for c in whole["cells"]])
    assert np.abs(soc_chunked - soc_whole).max() < 3.0  # other noise draws, same batteries
    assert [c["soh_est"] for c in chunked["cells"]] == [c["soh_est"] for c in whole["cells"]]


def test_text_output_lists_the_refused_rows(tmp_path, capsys):
    path = write(tmp_path, [HEADER, line(1), line(2, feat_dT_pulse_K="-50"), line(3)])
    assert main(["grade", "--cells", str(path), "--tiers", "1"]) == 0
    out = capsys.readouterr().out
    assert "refused (not graded): 1" in out
    assert "line 3: cell_id 2: feat_dT_pulse_K = -50 K is outside the physical range -10..20 K" in out


def test_model_file_outside_the_model_dir_exits_1_model_refused(tmp_path, capsys):
    import shutil

    from edge.grading.soc_model import SHIPPED_DIR

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("soc_gan.onnx", "soc_gan.json"):
        shutil.copy(SHIPPED_DIR / name, folder / name)
    meta = json.loads((folder / "soc_gan.json").read_text())
    meta["model_file"] = "/etc/passwd"
    (folder / "soc_gan.json").write_text(json.dumps(meta))
    path = write(tmp_path, [HEADER, line(1), line(2)])
    assert main(["grade", "--cells", str(path), "--model-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "model refused" in err and "model_file '/etc/passwd' must be a file name inside" in err

"""`discharge-edge tags import` and `tags export` (edge/tagmap/vendor_cli.py) through the command line:
the map written, the report printed (one JSON object with --json), exit codes, and input errors on
the one path of edge.cli (a missing, empty, wrong-column, non-UTF-8 file, a directory, a FIFO)."""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.tagmap import load_tag_map

pytestmark = pytest.mark.integration

EXAMPLES = REPO_ROOT / "plc_tags" / "examples" / "vendor"


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_import_writes_the_map_and_reports_in_one_json_object(tmp_path, capsys):
    out = tmp_path / "line3.yaml"
    code = main(["tags", "import", "kepware", str(EXAMPLES / "line3_kepware_modbus.csv"), "--out", str(out),
                 "--endpoint", "192.168.1.50:1502", "--json"])
    result = _json(capsys)
    assert code == 1 and not result["ok"]  # owners and more are for the user
    assert result["protocol"] == "modbus" and result["tag_count"] == 309
    assert result["missing_count"]["owner"] == 309 - len(result["roles"])
    assert result["unsupported_types"]["BCD"]["names"] == ["Line.firmware_bcd"]
    assert result["unmapped_columns"]["Clamp High"]["values"] == {"1": 12}
    lines = out.read_text().splitlines()
    assert "    host: 192.168.1.50" in lines and "    port: 1502" in lines
    for place in result["missing"][:20]:
        assert lines[place["line"] - 1] == f"- name: {place['tag']}"
    check = {(p["line"], p["tag"]) for p in result["check_problems"]}
    assert {(m["line"], m["tag"]) for m in result["missing"]} <= check


def test_import_text_names_file_lines_and_what_was_not_carried(tmp_path, capsys):
    out = tmp_path / "l4.yaml"
    code = main(["tags", "import", "studio5000", str(EXAMPLES / "line4.L5X"), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1
    assert f"wrote {out}: 399 tags" in text
    assert "no map type: 'SINT', 1 tags: DebugByte" in text
    assert f"  {out}:1: missing scan_groups" in text
    assert "missing connection.endpoint.host" in text
    assert f"`discharge-edge tags check {out}` does not pass yet" in text


def test_export_of_a_shipped_map_and_its_report(tmp_path, capsys):
    out = tmp_path / "line2.csv"
    source = REPO_ROOT / "plc_tags" / "line2_modbus.yaml"
    assert main(["tags", "export", "kepware", str(source), "--out", str(out), "--json"]) == 0
    result = _json(capsys)
    tag_map = load_tag_map(source)
    rows = list(csv.DictReader(io.StringIO(out.read_text(), newline="")))
    assert [r["Tag Name"] for r in rows] == [t.name for t in tag_map.tags] and result["tags"] == len(rows)
    assert result["not_carried"]["owner"]["count"] == len(rows)
    assert result["connection_not_carried"] == ["host", "port", "timeout_s", "unit_id"]


def test_export_refuses_a_map_with_problems(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("connection: {name: b, protocol: modbus, endpoint: {host: h}}\nscan_groups: {f: 100}\n"
                   "tags:\n  - {name: x, address: 'holding_register:0', type: REAL, access: write, owner: rtcore, "
                   "unit: '', scan_group: f}\n")
    assert main(["tags", "export", "kepware", str(bad), "--out", str(tmp_path / "o.csv")]) == 1
    assert "bad.yaml:4: tag 'x': a write tag needs limits" in capsys.readouterr().out
    assert not (tmp_path / "o.csv").exists()


def test_a_complete_export_imports_back_to_a_map_tags_check_passes(tmp_path, capsys):
    """Logix map -> Kepware -> map: only the owner and safe values are the user's again."""
    source = REPO_ROOT / "plc_tags" / "hil_logix.yaml"
    csv_path, back = tmp_path / "hil.csv", tmp_path / "back.yaml"
    assert main(["tags", "export", "kepware", str(source), "--out", str(csv_path)]) == 0
    capsys.readouterr()
    assert main(["tags", "import", "kepware", str(csv_path), "--out", str(back), "--endpoint", "127.0.0.1",
                 "--json"]) == 1
    result = _json(capsys)
    assert result["protocol"] == "logix" and not result["skipped"]
    assert {f for m in result["missing"] for f in m["fields"]} <= {"owner", "safe_value", "limits", "unit"}


def _bad(tmp_path, kind):
    path = tmp_path / f"{kind}.csv"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong_columns":
        path.write_text("a,b\n1,2\n")
    elif kind == "not_utf8":
        path.write_bytes(b"Tag Name,Address\n\xff\xfe caf\xe9\n")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    return path


@pytest.mark.parametrize("vendor", ["kepware", "studio5000"])
@pytest.mark.parametrize("kind, message", [
    ("missing", "cannot open: No such file"), ("empty", ":1: empty file"),
    ("wrong_columns", ":1: no "), ("not_utf8", ":2: not UTF-8 text (byte 0xff"),
    ("directory", "cannot open: Is a directory"), ("fifo", "cannot open: not a regular file"),
])
def test_an_input_it_cannot_read_is_one_line_and_exit_2(tmp_path, capsys, vendor, kind, message):
    path = _bad(tmp_path, kind)
    assert main(["tags", "import", vendor, str(path), "--out", str(tmp_path / "o.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"discharge-edge tags import: {path}") and message in err and "\n" not in err
    assert not (tmp_path / "o.yaml").exists()


@pytest.mark.parametrize("argv, message", [
    (["--endpoint", "host:99999"], "--endpoint 'host:99999'"),
    (["--protocol", "modbus"], "a Studio 5000 export is a Logix controller's"),
])
def test_bad_options_are_usage_errors(tmp_path, capsys, argv, message):
    code = main(["tags", "import", "studio5000", str(EXAMPLES / "line4.L5X"), "--out", str(tmp_path / "o.yaml"), *argv])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("kind, message", [("missing", "No such file"), ("empty", ":1: empty file"),
                                           ("not_utf8", "not UTF-8"), ("directory", "directory")])
def test_export_of_a_map_it_cannot_read_exits_1_as_tags_check(tmp_path, capsys, kind, message):
    path = _bad(tmp_path, kind)
    assert main(["tags", "export", "kepware", str(path), "--out", str(tmp_path / "o.csv")]) == 1
    captured = capsys.readouterr()
    assert str(path) in captured.out + captured.err and message in captured.out + captured.err  # the loader's words
    assert "Traceback" not in captured.err


def test_import_will_not_write_over_the_vendor_file(tmp_path, capsys):
    source = tmp_path / "k.csv"
    source.write_text((EXAMPLES / "line4_kepware_logix.csv").read_text())
    before = source.read_text()
    assert main(["tags", "import", "kepware", str(source), "--out", str(source)]) == 2
    assert "is the vendor file itself" in capsys.readouterr().err and source.read_text() == before

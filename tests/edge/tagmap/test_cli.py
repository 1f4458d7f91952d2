"""`discharge-edge tags check`, offline and live against the bench servers on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.tagmap import load_tag_map
from tools.hil.server_logix import LogixPlcServer
from tools.hil.server_modbus import ModbusPlcServer

CONTRACT = REPO_ROOT / "tests" / "edge" / "bus"
SHIPPED = sorted(str(p) for p in (REPO_ROOT / "plc_tags").glob("*.yaml"))
BROKEN = """\
connection: {name: b, protocol: modbus, endpoint: {host: 127.0.0.1}}
scan_groups: {fast: 100}
tags:
  - name: relief_pct
    address: holding_register:0
    type: REAL
    access: write
    owner: rtcore
    unit: pct
    limits: {min: 0, max: 100}
    safe_value: 120
    scan_group: fast
"""


@pytest.mark.integration
def test_shipped_maps_pass_as_a_user_runs_it():
    done = subprocess.run([sys.executable, "-m", "edge.cli", "tags", "check", *SHIPPED], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK,") == len(SHIPPED)


@pytest.mark.integration
def test_a_malformed_map_fails_naming_file_line_and_tag(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    assert main(["tags", "check", SHIPPED[0], str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:11: tag 'relief_pct': safe_value 120 is outside limits 0.0..100.0" in out


@pytest.mark.integration
def test_json_output_is_one_object(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    assert main(["tags", "check", "--json", SHIPPED[0], str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["files"][0]["ok"] is True and report["files"][0]["problems"] == []
    problem = report["files"][1]["problems"][0]
    assert (problem["line"], problem["tag"]) == (11, "relief_pct")


def with_extra_tag(tmp_path: Path, source: Path, extra: str, port: int) -> Path:
    text = source.read_text().replace("port: 5020", f"port: {port}").replace("port: 44818", f"port: {port}")
    path = tmp_path / source.name
    path.write_text(text + extra)
    return path


@pytest.mark.contract
def test_live_check_against_modbus_names_a_missing_address(tmp_path, capsys):
    with ModbusPlcServer(load_tag_map(CONTRACT / "contract_modbus.yaml")) as server:
        good = with_extra_tag(tmp_path, CONTRACT / "contract_modbus.yaml", "", server.port)
        assert main(["tags", "check", "--live", str(good)]) == 0
        extra = ("  - name: ghost\n    address: input_register:900\n    type: REAL\n    access: read\n"
                 "    owner: supervisor\n    unit: ''\n    scan_group: fast\n")
        bad = with_extra_tag(tmp_path, CONTRACT / "contract_modbus.yaml", extra, server.port)
        assert main(["tags", "check", "--live", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "tag 'ghost': the PLC at 127.0.0.1:" in out and "refuses input_register:900" in out


@pytest.mark.contract
def test_live_check_against_logix_names_missing_and_mistyped_tags(tmp_path, capsys):
    with LogixPlcServer(load_tag_map(CONTRACT / "contract_logix.yaml")) as server:
        extra = ("  - name: ghost\n    address: Ghost\n    type: REAL\n    access: read\n"
                 "    owner: supervisor\n    unit: ''\n    scan_group: fast\n"
                 "  - name: wrong_type\n    address: Counter\n    type: REAL\n    access: read\n"
                 "    owner: supervisor\n    unit: ''\n    scan_group: fast\n")
        bad = with_extra_tag(tmp_path, CONTRACT / "contract_logix.yaml", extra, server.port)
        assert main(["tags", "check", "--live", "--json", str(bad)]) == 1
    problems = {p["tag"]: p["message"] for p in json.loads(capsys.readouterr().out)["files"][0]["problems"]}
    assert problems == {"ghost": "PLC has no tag 'Ghost'", "wrong_type": "PLC tag 'Counter' is DINT, the map says REAL"}


@pytest.mark.integration
def test_live_check_with_no_plc_says_so(tmp_path, capsys):
    path = with_extra_tag(tmp_path, CONTRACT / "contract_modbus.yaml", "", 1)  # nothing listens on port 1
    assert main(["tags", "check", "--live", str(path)]) == 1
    assert "cannot check against the PLC at 127.0.0.1:1" in capsys.readouterr().out

"""`discharge-edge tags check` offline: the shipped maps pass, a malformed map and a map without
the roles its processes need fail naming file, line and tag; the command's wiring (roles, the
vendor commands). The live commands (check --live, read, watch) are tested against the served
bench in test_live.py; import and export in tests/edge/tagmap/vendor/."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from edge import REPO_ROOT
from edge.cli import build_parser, main

pytestmark = pytest.mark.integration

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


def test_shipped_maps_pass_as_a_user_runs_it():
    done = subprocess.run([sys.executable, "-m", "edge.cli", "tags", "check", *SHIPPED], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK,") == len(SHIPPED)


def test_a_malformed_map_fails_naming_file_line_and_tag(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    assert main(["tags", "check", SHIPPED[0], str(bad)]) == 1
    out = capsys.readouterr().out
    limits = r"0(\.0)?\.\.100(\.0)?"  # 0..100 or 0.0..100.0: the loader's spelling of the limits
    assert re.search(rf"{re.escape(str(bad))}:11: tag 'relief_pct': safe_value 120 is outside limits {limits}\n", out), out


def test_json_output_is_one_object(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN)
    assert main(["tags", "check", "--json", SHIPPED[0], str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["files"][0]["ok"] is True and report["files"][0]["problems"] == []
    problem = report["files"][1]["problems"][0]
    assert (problem["line"], problem["tag"]) == (11, "relief_pct")


def test_a_map_without_the_roles_its_processes_need_is_refused(capsys):
    contract = CONTRACT / "contract_modbus.yaml"  # a bus's test fixture: rtcore and supervisor tags, no roles
    assert main(["tags", "check", "--json", str(contract)]) == 1
    problems = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    texts = [p["text"] for p in problems]
    assert f"{contract}:1: no tag plays role 'marker_temp_degc' (fixture marker temperatures, station by station), " \
           "which rtcore needs; name a tag 'marker_temp_degc' or list the role under roles:" in texts
    assert any("role 'discharge_current_setpoint_a'" in t and "which supervisor needs" in t for t in texts)


def test_every_tags_action_is_wired():
    tags = build_parser()._subparsers._group_actions[0].choices["tags"]
    actions = next(a for a in tags._actions if a.dest == "tags_command")
    assert set(actions.choices) == {"check", "read", "watch", "import", "export"}

"""`tags read`, `tags watch` and `tags check --live` over real loopback, against the bench's servers.

Values are set on the bench PLC's side and read back through the command line (both protocols);
the live check runs against the served bench (plant, PLC program and heartbeat stepping) with its
own map, a map of another layout, another line's map and a PLC whose heartbeat stands still.
Every test proves the command wrote nothing: the servers count requests by function (Modbus)
or service (Logix) code.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.cli import main
from edge.tagmap import Owner, load_tag_map
from edge.tagmap.live import EXIT_NO_ANSWER
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import HilBench, open_server

pytestmark = pytest.mark.hil

MAPS = {"modbus": REPO_ROOT / "plc_tags" / "hil_modbus.yaml", "logix": REPO_ROOT / "plc_tags" / "hil_logix.yaml"}
TEMPS_DEGC = tuple(round(20.0 + 0.5 * i, 1) for i in range(32))
MODBUS_WRITES = {5, 6, 15, 16, 22, 23}  # write coil(s), register(s), mask write, read/write
LOGIX_WRITES = {0x4D, 0x53, 0x4E}  # write tag, write fragmented, read-modify-write


def writes_seen(server) -> int:
    if hasattr(server, "requests"):
        return sum(n for code, n in server.requests.items() if code in MODBUS_WRITES)
    return sum(n for code, n in server.packets.services.items() if code in LOGIX_WRITES)


def reads_seen(server) -> int:
    if hasattr(server, "requests"):
        return sum(n for code, n in server.requests.items() if code not in MODBUS_WRITES)
    return sum(n for code, n in server.packets.services.items() if code not in LOGIX_WRITES)


@pytest.fixture(params=["modbus", "logix"])
def plc(request):
    """The bench PLC serving the bench's map, values set as a test wants them (no plant)."""
    server = open_server(load_tag_map(MAPS[request.param]))
    server.set_many({"marker_temp_degc": TEMPS_DEGC, "plc_heartbeat": 41, "discharge_permit": (True, False) * 4,
                     "zone_pressure_kpa": (150.0,) * 16})
    yield request.param, server, f"127.0.0.1:{server.port}"
    server.close()


@pytest.fixture(params=["modbus", "logix"])
def bench(request):
    """The served bench: plant, PLC program, heartbeat, stepping in real time."""
    server = open_server(load_tag_map(MAPS[request.param]))
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=8), PlantConfig(seed=3)), server)
    bench.start(dt_s=0.05)
    yield request.param, bench, f"127.0.0.1:{server.port}"
    bench.stop()
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- read ------------------------------------------------------------------------------------------
def test_read_gives_value_quality_unit_and_time_and_writes_nothing(plc, capsys):
    protocol, server, endpoint = plc
    code = main(["tags", "read", "--map", str(MAPS[protocol]), "--endpoint", endpoint, "--json",
                 "marker_temp_degc", "marker_temp_degc[3]", "plc_heartbeat", "discharge_permit"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["endpoint"], report["protocol"]) == (endpoint, protocol)
    temps, one, beat, permit = report["tags"]
    assert temps["value"] == pytest.approx(TEMPS_DEGC, abs=1e-4) and temps["unit"] == "degC"
    assert (one["tag"], one["name"], one["index"]) == ("marker_temp_degc[3]", "marker_temp_degc", 3)
    assert one["value"] == pytest.approx(21.5, abs=1e-4) and one["quality"] == "good"
    assert (beat["value"], beat["quality"], beat["unit"]) == (41, "good", "")
    assert permit["value"] == [True, False] * 4
    read_at = datetime.fromisoformat(beat["time_utc"].replace("Z", "+00:00"))
    assert read_at.tzinfo == timezone.utc and beat["time_utc"].endswith("Z")
    assert abs((datetime.now(timezone.utc) - read_at).total_seconds()) < 60  # the wall clock, not another epoch
    assert all(t["age_s"] >= 0 for t in report["tags"])
    assert reads_seen(server) > 0 and writes_seen(server) == 0


def test_read_text_shows_arrays_compactly(plc, capsys):
    protocol, server, endpoint = plc
    assert main(["tags", "read", "--map", str(MAPS[protocol]), "--endpoint", endpoint,
                 "zone_pressure_kpa", "discharge_permit", "plc_heartbeat"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("zone_pressure_kpa = [150 ×16] kPa  good  20")
    assert lines[1].startswith("discharge_permit = [true, false, true, false, true, false, true, false]  good")
    assert lines[2].startswith("plc_heartbeat = 41  good  ") and " age 0.0" in lines[2]


def test_an_element_has_its_own_quality_and_a_bad_reading_is_delivered(plc, capsys):
    protocol, server, endpoint = plc
    server.set("marker_temp_degc", TEMPS_DEGC[:5] + (200.0,) + TEMPS_DEGC[6:])  # limits -40..150
    assert main(["tags", "read", "--map", str(MAPS[protocol]), "--endpoint", endpoint, "--json",
                 "marker_temp_degc", "marker_temp_degc[3]", "marker_temp_degc[5]"]) == 0
    whole, three, five = json.loads(capsys.readouterr().out)["tags"]
    assert (whole["quality"], three["quality"], five["quality"]) == ("uncertain_limits", "good", "uncertain_limits")
    assert five["value"] == pytest.approx(200.0)


def renamed_heartbeat(tmp_path: Path, protocol: str) -> Path:
    """The bench's map with its PLC heartbeat named otherwise and listed under roles:."""
    text = MAPS[protocol].read_text()
    assert text.count("- name: plc_heartbeat\n") == 1 and "\nroles:" not in text
    path = tmp_path / f"renamed_{protocol}.yaml"
    path.write_text(text.replace("- name: plc_heartbeat\n", "- name: plc_beat_count\n")
                    + "\nroles:\n  plc_heartbeat: plc_beat_count\n")
    return path


def test_a_role_names_the_tag_that_plays_it(tmp_path, plc, capsys):
    protocol, server, endpoint = plc
    path = renamed_heartbeat(tmp_path, protocol)
    assert main(["tags", "read", "--map", str(path), "--endpoint", endpoint, "--json", "plc_heartbeat"]) == 0
    (beat,) = json.loads(capsys.readouterr().out)["tags"]
    assert (beat["tag"], beat["name"], beat["role"], beat["value"]) == ("plc_heartbeat", "plc_beat_count",
                                                                      "plc_heartbeat", 41)
    assert main(["tags", "read", "--map", str(path), "--endpoint", endpoint, "plc_heartbeat"]) == 0
    assert capsys.readouterr().out.startswith("plc_heartbeat (role of plc_beat_count) = 41  good  ")


def test_unknown_tags_are_refused_naming_the_map_and_near_names(capsys):
    code = main(["tags", "read", "--map", str(MAPS["modbus"]), "--endpoint", f"127.0.0.1:{free_port()}",
                 "marker_temp", "plc_heartbeat[2]", "marker_temp_degc[32]", "zzz"])
    assert code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"discharge-edge tags read: 'marker_temp' is not a tag or role of {MAPS['modbus']}; "
                      "near: marker_temp_degc")
    assert "plc_heartbeat (line" in err[1] and "is a scalar" in err[1]
    assert "has 32 elements, 0..31" in err[2]
    assert err[3].startswith("discharge-edge tags read: 'zzz' is not a tag or role") and "it has" in err[3]


# -- a PLC that does not answer ---------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_no_plc_listening_is_one_clear_line_and_exit_3(protocol):
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "edge.cli", "tags", "read", "--map", str(MAPS[protocol]),
                           "--endpoint", f"127.0.0.1:{port}", "plc_heartbeat"],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == EXIT_NO_ANSWER == 3
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()  # the bus's own retry warning held back (shown with -v)
    assert line.startswith(f"discharge-edge tags read: no answer from the PLC at 127.0.0.1:{port} ({protocol}, "
                           "timeout 1 s): ")


def test_a_plc_that_answers_late_is_an_error_not_a_hang(plc, capsys):
    protocol, server, endpoint = plc
    server.delay_s = 5.0  # every answer comes 5 s late
    for command in (["read"], ["watch", "--every", "0.1"]):  # watch without --count: it must still end
        code = main(["tags", *command, "--map", str(MAPS[protocol]), "--endpoint", endpoint, "--timeout", "0.3",
                     "plc_heartbeat"])
        assert code == 3, command
        assert f"no answer from the PLC at {endpoint} ({protocol}, timeout 0.3 s)" in capsys.readouterr().err
    assert writes_seen(server) == 0


# -- watch -----------------------------------------------------------------------------------------
def test_watch_prints_json_lines_as_the_heartbeat_moves(bench, capsys):
    protocol, the_bench, endpoint = bench
    code = main(["tags", "watch", "--map", str(MAPS[protocol]), "--endpoint", endpoint, "--json",
                 "--every", "0.2", "--count", "3", "plc_heartbeat", "marker_temp_degc[4]"])
    assert code == 0
    samples = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["sample"] for s in samples] == [1, 2, 3]
    assert samples[0]["t_s"] < samples[1]["t_s"] < samples[2]["t_s"]
    beats = [s["tags"][0]["value"] for s in samples]
    assert beats == sorted(beats) and beats[-1] > beats[0], beats
    temps = [s["tags"][1] for s in samples]
    assert all(t["unit"] == "degC" and t["quality"] == "good" and 0 < t["value"] < 60 for t in temps)
    assert samples[0]["tags"][0]["unchanged_s"] == 0.0
    assert writes_seen(the_bench.server) == 0


def test_ctrl_c_ends_a_watch_cleanly(bench):
    protocol, the_bench, endpoint = bench
    args = [sys.executable, "-m", "edge.cli", "tags", "watch", "--map", str(MAPS[protocol]), "--endpoint", endpoint,
            "--every", "0.1", "plc_heartbeat"]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        first = child.stdout.readline()
        second = child.stdout.readline()
        child.send_signal(signal.SIGINT)
        rest, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert first.startswith("#1 +") and second.startswith("#2 +") and "plc_heartbeat = " in second
    assert child.returncode == 0, err
    assert "Traceback" not in err and "stopped (Ctrl-C)" in err
    assert all(line.startswith("#") for line in rest.splitlines())  # no half line
    assert writes_seen(the_bench.server) == 0


# -- tags check --live -----------------------------------------------------------------------------
def test_the_bench_map_passes_live_against_the_served_bench(bench, capsys):
    protocol, the_bench, endpoint = bench
    code = main(["tags", "check", "--live", "--json", "--endpoint", endpoint, str(MAPS[protocol])])
    report = json.loads(capsys.readouterr().out)["files"][0]
    assert code == 0, report["problems"]
    assert report["problems"] == [] and any("heartbeat plc_heartbeat moved within" in n for n in report["notes"])
    assert writes_seen(the_bench.server) == 0


def shifted_layout(tmp_path: Path) -> Path:
    """The bench's map as another line lays its inputs out: zone pressures at input register 0,
    the markers after them at 32 (the bench has them the other way round)."""
    text = MAPS["modbus"].read_text()
    markers, pressures = "{table: input_register, address: 0}", "{table: input_register, address: 32}"
    assert text.count(markers) == 1 and text.count(pressures) == 1
    path = tmp_path / "pressures_first_modbus.yaml"
    path.write_text(text.replace(markers, "@M@").replace(pressures, markers).replace("@M@", pressures))
    return path


@pytest.fixture
def modbus_bench():
    server = open_server(load_tag_map(MAPS["modbus"]))
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=8), PlantConfig(seed=3)), server)
    with open_bus(server.tag_map, Owner.SUPERVISOR) as supervisor:  # the clamps closed: pressures to read
        supervisor.write({"fixture_pressure_setpoint_kpa": (150.0,) * 8})
    for _ in range(40):
        bench.step(0.05)
    bench.start(dt_s=0.05)
    yield bench, f"127.0.0.1:{server.port}"
    bench.stop()
    server.close()


def test_a_map_of_another_layout_fails_live_naming_tags_and_lines(tmp_path, modbus_bench, capsys):
    the_bench, endpoint = modbus_bench
    assert min(the_bench.server.get("zone_pressure_kpa")) > 100  # the clamps hold: the shift shows
    own = main(["tags", "check", "--live", "--endpoint", endpoint, str(MAPS["modbus"])])
    capsys.readouterr()
    path = shifted_layout(tmp_path)
    assert main(["tags", "check", "--json", str(path)]) == 0, "offline the shifted map is a good map"
    capsys.readouterr()
    writes_before = writes_seen(the_bench.server)
    assert main(["tags", "check", "--live", "--json", "--endpoint", endpoint, str(path)]) == 1
    problems = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    shifted = load_tag_map(path)
    by_tag = {p["tag"]: p for p in problems}
    markers, pressures = by_tag["marker_temp_degc"], by_tag["zone_pressure_kpa"]
    assert markers["line"] == shifted.tag("marker_temp_degc").source_line
    assert "outside its limits -40..150 degC" in markers["message"]
    assert pressures["line"] == shifted.tag("zone_pressure_kpa").source_line
    assert "integer registers read as a REAL" in pressures["message"]
    assert markers["text"].startswith(f"{path}:{markers['line']}: tag 'marker_temp_degc': reads [")
    layout = by_tag[None]
    assert layout["line"] == 1 and layout["message"].startswith("2 of ") and "layout is not this map's" in layout["message"]
    assert own == 0, "the bench's own map passes against the same bench"
    assert writes_seen(the_bench.server) == writes_before  # the check wrote nothing


def test_another_lines_map_fails_live_against_the_bench(modbus_bench, capsys):
    the_bench, endpoint = modbus_bench
    line2 = REPO_ROOT / "plc_tags" / "line2_modbus.yaml"
    assert main(["tags", "check", "--live", "--endpoint", endpoint, str(line2)]) == 1
    out = capsys.readouterr().out
    pressure_line = load_tag_map(line2).tag("zone_pressure_kpa").source_line
    assert f"{line2}:{pressure_line}: tag 'zone_pressure_kpa': reads [0] " in out
    assert re.search(rf"{re.escape(str(line2))}:1: [1-9]\d* of \d+ inputs read at {endpoint} are outside", out), out
    assert "layout is not this map's" in out


def test_a_heartbeat_that_stands_still_fails_live(plc, capsys):
    protocol, server, endpoint = plc  # served, but no PLC program steps it: plc_heartbeat stays 41
    code = main(["tags", "check", "--live", "--json", "--heartbeat-wait", "0.3", "--endpoint", endpoint,
                 str(MAPS[protocol])])
    problems = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    assert code == 1
    line = load_tag_map(MAPS[protocol]).tag("plc_heartbeat").source_line
    assert [(p["tag"], p["line"]) for p in problems] == [("plc_heartbeat", line)]
    assert "heartbeat (plc_heartbeat) stood at 41 over" in problems[0]["message"] and "in 0.3 s" in problems[0]["message"]


def test_live_check_with_nothing_listening_says_so(capsys):
    port = free_port()
    assert main(["tags", "check", "--live", "--endpoint", f"127.0.0.1:{port}", str(MAPS["modbus"])]) == 1
    assert f"{MAPS['modbus']}:1: cannot check against the PLC at 127.0.0.1:{port}" in capsys.readouterr().out


def test_bad_options_are_usage_errors(capsys):
    for args in (["watch", "--every", "0"], ["watch", "--count", "0"], ["read", "--timeout", "-1"],
                 ["read", "--endpoint", "nohost"]):
        assert main(["tags", *args, "--map", str(MAPS["modbus"]), "plc_heartbeat"]) == 2, args
    assert len(capsys.readouterr().err.splitlines()) == 4


def test_the_renamed_heartbeat_is_the_one_checked(tmp_path, bench, capsys):
    protocol, the_bench, endpoint = bench
    path = renamed_heartbeat(tmp_path, protocol)
    assert main(["tags", "check", "--live", "--json", "--endpoint", endpoint, str(path)]) == 0
    notes = json.loads(capsys.readouterr().out)["files"][0]["notes"]
    assert any("heartbeat plc_beat_count (plc_heartbeat) moved within" in n for n in notes), notes


GHOST_MODBUS = ("  - name: ghost\n    address: input_register:900\n    type: REAL\n    access: read\n"
                "    owner: supervisor\n    unit: ''\n    scan_group: slow\n")
GHOST_LOGIX = ("  - name: ghost\n    address: Ghost\n    type: REAL\n    access: read\n"
               "    owner: supervisor\n    unit: ''\n    scan_group: slow\n"
               "  - name: too_far\n    address: MarkerTemp[40]\n    type: REAL\n    access: read\n"
               "    owner: supervisor\n    unit: ''\n    scan_group: slow\n")


def with_extra_tags(tmp_path: Path, protocol: str) -> Path:
    """The bench's map with tags the bench's PLC lacks (Logix: an element past the end too), after its
    last tag (the tags: list is the file's last section)."""
    text = MAPS[protocol].read_text()
    assert text.rstrip().splitlines()[-1].startswith("    ") and "\nroles:" not in text
    path = tmp_path / f"extra_{protocol}.yaml"
    path.write_text(text.rstrip("\n") + "\n" + (GHOST_MODBUS if protocol == "modbus" else GHOST_LOGIX))
    return path


def test_live_check_names_tags_the_plc_lacks(tmp_path, bench, capsys):
    protocol, the_bench, endpoint = bench
    path = with_extra_tags(tmp_path, protocol)
    assert main(["tags", "check", "--live", "--json", "--endpoint", endpoint, str(path)]) == 1
    problems = {p["tag"]: p["message"] for p in json.loads(capsys.readouterr().out)["files"][0]["problems"]}
    if protocol == "modbus":
        assert problems == {"ghost": f"the PLC at {endpoint} refuses input_register:900 (1 x REAL)"}
    else:
        assert problems == {"ghost": "PLC has no tag 'Ghost'", "too_far": "PLC tag 'MarkerTemp' has 32 elements, the map needs 41"}
    assert writes_seen(the_bench.server) == 0


LINE12X3 = REPO_ROOT / "plc_tags" / "examples" / "line12x3_modbus.yaml"


@pytest.fixture
def served_12x3():
    """`hil serve` of the 12-station x 3-marker example map, as a user starts it."""
    if not LINE12X3.exists():
        pytest.skip(f"{LINE12X3} is helper BENCH's and not in this tree yet")
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "edge.cli", "hil", "serve", "--map", str(LINE12X3), "--port",
                              str(port), "--seconds", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=REPO_ROOT)
    try:
        for _ in range(600):  # up to 60 s for the bench to listen (the plant's start on a loaded host)
            if child.poll() is not None:
                pytest.fail(f"hil serve ended: {child.communicate()[1]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        child.send_signal(signal.SIGINT)
        try:
            child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()


def test_the_8_station_map_fails_live_against_the_12_station_bench(served_12x3, capsys):
    assert main(["tags", "check", "--live", "--endpoint", served_12x3, str(LINE12X3)]) == 0
    capsys.readouterr()
    assert main(["tags", "check", "--live", "--json", "--heartbeat-wait", "0.5", "--endpoint", served_12x3,
                 str(MAPS["modbus"])]) == 1
    problems = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    own = load_tag_map(MAPS["modbus"])
    lines = {p["tag"]: p["line"] for p in problems}
    assert lines["plc_heartbeat"] == own.tag("plc_heartbeat").source_line  # the 12-station PLC's is elsewhere
    assert lines["zone_pressure_kpa"] == own.tag("zone_pressure_kpa").source_line
    assert any(p["tag"] is None and "layout is not this map's" in p["message"] for p in problems)

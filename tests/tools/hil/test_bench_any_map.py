"""The bench serves any map with the roles, and never stands over a dead plant.

`hil serve` + `rtcore run` (both as commands, each its own process, over 127.0.0.1 on a free
port) on plc_tags/examples/line12x3_modbus.yaml (12 stations x 3 markers, coils from 100,
holding registers from 1000), plc_tags/examples/program_udt_logix.yaml (program-scoped tags and
UDT members) and plc_tags/examples/line5x5_modbus.yaml (a line's own names, coils at 9000 and 65535): the core ticks, never latches LINK_LOST, and its outputs reach the served PLC (its
heartbeat, and once armed the permits). A plant whose step raises closes the PLC server (the
bench) and ends `hil serve` with exit 3 and the cause on stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant
from tools.hil.server_bench import HilBench, bench_plant_config, open_server

pytestmark = pytest.mark.hil

EXAMPLES = REPO_ROOT / "plc_tags" / "examples"


class InjectedFault(RuntimeError):
    pass


def failing_after(steps: int):
    """A plant step that raises on its `steps`-th call (the fault injected into the plant)."""
    calls = {"n": 0}
    real_step = Plant.step

    def step(self, command, dt_s):
        calls["n"] += 1
        if calls["n"] >= steps:
            raise InjectedFault(f"injected plant fault at step {calls['n']}")
        return real_step(self, command, dt_s)

    return step


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return True
    return False


def test_a_dead_plant_closes_the_server(monkeypatch):
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    server = open_server(tag_map)
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=8), bench_plant_config(tag_map)), server)
    port, died = server.port, []
    bus = open_bus(dataclasses.replace(server.tag_map, timeout_s=2.0), Owner.SUPERVISOR)
    assert bus.read(["plc_heartbeat"])[0].quality.usable  # serving
    monkeypatch.setattr(Plant, "step", failing_after(5))
    bench.start(dt_s=0.02, time_scale=1.0, on_failure=died.append)
    bench._thread.join(timeout=10.0)
    bus.close()
    assert isinstance(bench.failure, InjectedFault) and died == [bench.failure]
    assert bench.steps == 4 and server.closed
    assert refused(port), "a live server over a dead plant"
    server.close()  # idempotent


def test_hil_serve_exits_3_naming_the_cause_when_the_plant_dies(monkeypatch, capsys):
    from edge.cli import main

    monkeypatch.setattr(Plant, "step", failing_after(3))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        code = main(["hil", "serve", "--map", str(EXAMPLES / "line12x3_modbus.yaml"), "--port", "0", "--seconds", "30"])
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    err = capsys.readouterr().err
    assert code == 3, err
    assert "discharge-edge hil serve: the plant stopped after 2 steps" in err
    assert "InjectedFault: injected plant fault at step 3" in err and "line12x3_modbus.yaml" in err
    assert time.monotonic() - started < 20, "the command waited out --seconds over a dead plant"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_port(example: str, port: int, tmp_path):
    """The example map aimed at 127.0.0.1:port (its text, the endpoint's port replaced)."""
    text = (EXAMPLES / example).read_text()
    original = load_tag_map(EXAMPLES / example).endpoint.port
    assert text.count(f"port: {original}") == 1
    path = tmp_path / example
    path.write_text(text.replace(f"port: {original}", f"port: {port}"))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


@pytest.mark.parametrize("example", ["line12x3_modbus.yaml",  # 7 s each: the other two in make test-slow
                                     pytest.param("program_udt_logix.yaml", marks=pytest.mark.slow),
                                     pytest.param("line5x5_modbus.yaml", marks=pytest.mark.slow)])
def test_hil_serve_and_rtcore_run_on_the_example(example, tmp_path):
    path = on_port(example, free_port(), tmp_path)
    tag_map = load_tag_map(path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serve = subprocess.Popen(cli("hil", "serve", "--map", str(path), "--seconds", "60", "--json", "--priority", "40"),
                             cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while refused(tag_map.endpoint.port):
            assert serve.poll() is None, serve.communicate()[1]
            assert time.monotonic() < deadline, "hil serve did not listen"
            time.sleep(0.2)
        link = f"bench-any-{os.getpid()}-{tag_map.protocol.value}"
        run = subprocess.Popen(cli("rtcore", "run", "--map", str(path), "--seconds", "6", "--json", "--link", link,
                                   "--state-dir", str(tmp_path / "state")),
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(2.5)
        reset = subprocess.run(cli("rtcore", "reset", "--link", link), cwd=REPO_ROOT, capture_output=True,
                               text=True, timeout=30)
        assert reset.returncode == 0, reset.stderr
        time.sleep(1.5)
        bus = open_bus(dataclasses.replace(tag_map, timeout_s=2.0), Owner.SUPERVISOR)  # load is no timeout here
        try:
            permit, beat = bus.read([tag_map_role(tag_map, "discharge_permit"), tag_map_role(tag_map, "rtcore_heartbeat")])
        finally:
            bus.close()
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        summary = json.loads(out)
        assert summary["ticks"] >= 30, summary  # 6 s at 100 ms, whatever the load
        assert summary["link_lost_latches"] == 0, (summary, err[-3000:])
        assert summary["armed"] and not summary["safe_state"], summary
        assert beat.quality.usable and beat.value > 10, beat  # the core's heartbeat reached the PLC
        n_stations = bench_plant_layout(tag_map).n_stations
        assert permit.value == (True,) * n_stations, permit  # armed, no fault: every station permitted
        assert serve.poll() is None, "hil serve stopped under the core"
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    report = json.loads(out)
    assert report["plant_steps"] > 50 and report["stations"] == n_stations


def tag_map_role(tag_map, key: str) -> str:
    from tools.hil.bench_map import bench_tag

    return bench_tag(tag_map, key).name


def bench_plant_layout(tag_map):
    from tools.hil.bench_map import bench_layout

    return bench_layout(tag_map, 6)


CORE_ONLY = """\
connection:
  name: core-only
  protocol: modbus
  endpoint: {host: 127.0.0.1, port: 502}
  timeout_s: 0.05
scan_groups:
  fast: 100
tags:
  - {name: marker_temp_degc, address: input_register:300, type: "REAL[4]", access: read, owner: rtcore, unit: degC, scan_group: fast}
  - {name: zone_pressure_kpa, address: input_register:310, type: REAL, access: read, owner: rtcore, unit: kPa, scan_group: fast}
  - {name: rtcore_heartbeat, address: holding_register:4000, type: DINT, access: write, owner: rtcore, unit: "",
     limits: {min: 0, max: 2147483647}, safe_value: 0, scan_group: fast}
  - {name: discharge_permit, address: coil:100, type: BOOL, access: write, owner: rtcore, unit: "", safe_value: false, scan_group: fast}
  - {name: safe_state, address: coil:101, type: BOOL, access: write, owner: rtcore, unit: "", safe_value: true, scan_group: fast}
"""


def test_a_core_only_map_with_coils_at_100_and_101_runs_the_plant(tmp_path):
    """One station, a scalar permit and safe state at coils 100/101, no supervisor tags: the PLC
    program reads its defaults for the absent roles (no current, clamp 150 kPa) and the plant runs."""
    path = tmp_path / "core_only.yaml"
    path.write_text(CORE_ONLY)
    tag_map = load_tag_map(path)
    with open_server(tag_map) as server:
        bench = HilBench(Plant(load_cells(default_cells_path(), limit=1), bench_plant_config(tag_map)), server)
        for beat in range(1, 6):
            server.set("rtcore_heartbeat", beat)
            server.set("discharge_permit", True)
            bench.step(0.1)
        assert bench.steps == 5 and bench.failure is None
        assert bench.command.pressure_kpa.tolist() == [[150.0]] and bench.command.current_a.tolist() == [0.0]
        assert len(server.get("marker_temp_degc")) == 4 and server.get("zone_pressure_kpa") > 50.0  # clamping up to 150 (lag 0.5 s)


def test_hil_serve_refuses_a_map_its_processes_cannot_run_naming_the_line(tmp_path, capsys):
    from edge.cli import main

    text = (REPO_ROOT / "plc_tags" / "hil_modbus.yaml").read_text()
    path = tmp_path / "short_loaded_id.yaml"
    path.write_text(text.replace("address: {table: input_register, address: 132}\n    type: DINT[8]",
                                 "address: {table: input_register, address: 132}\n    type: DINT[7]"))
    assert main(["hil", "serve", "--map", str(path), "--port", "0", "--seconds", "1"]) == 1
    err = capsys.readouterr().err
    assert "refusing to serve: the tag map's roles have problems" in err
    assert f"{path}:248: tag 'station_loaded_id': has 7 elements; role 'station_loaded_id' needs one per station (8)" in err

"""`discharge-edge rtcore run|status|reset` as an operator uses them, against the HIL bench."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from edge import REPO_ROOT
from edge.tagmap import load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant, PlantConfig
from tools.hil.server_bench import HilBench, open_server

pytestmark = pytest.mark.hil


def cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_run_status_reset_against_the_bench(tmp_path):
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    server = open_server(tag_map)
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=8), PlantConfig()), server)
    bench.start(dt_s=0.05)
    map_path = tmp_path / "hil.yaml"
    map_path.write_text((REPO_ROOT / "plc_tags" / "hil_modbus.yaml").read_text().replace("port: 5020", f"port: {server.port}"))
    link = f"de-test-{uuid.uuid4().hex[:8]}"
    rt = subprocess.Popen([sys.executable, "-m", "edge.cli", "rtcore", "run", "--map", str(map_path), "--link", link,
                           "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        status = None
        for _ in range(50):
            time.sleep(0.2)
            done = cli("rtcore", "status", "--link", link, "--json")
            if done.returncode == 0:
                status = json.loads(done.stdout)
                if status["tick_count"] >= 5:
                    break
        assert status and status["tick_count"] >= 5 and status["alive"] and not status["safe_state"]
        assert server.get("rtcore_heartbeat") >= 4 and server.get("discharge_permit") is True
        server.cut()  # the link to the PLC drops: the loop goes safe and says why
        time.sleep(0.5)
        server.restore()
        time.sleep(1.0)
        status = json.loads(cli("rtcore", "status", "--link", link, "--json").stdout)
        assert status["safe_state"] and status["link_errors"] >= 1
        assert server.get("safe_state") is True and server.get("relief_first_kpa") == (400.0,) * 8
        assert cli("rtcore", "reset", "--link", link).returncode == 0
        time.sleep(0.5)
        status = json.loads(cli("rtcore", "status", "--link", link, "--json").stdout)
        assert not status["safe_state"] and status["resets_done"] == 1
        assert server.get("discharge_permit") is True
    finally:
        rt.send_signal(signal.SIGTERM)
        out, err = rt.communicate(timeout=20)
        bench.stop()
        server.close()
    assert rt.returncode == 0, err
    assert json.loads(out)["ticks"] >= 10


def test_status_without_a_running_loop_says_so():
    done = cli("rtcore", "status", "--link", "de-test-nobody-home")
    assert done.returncode == 1 and "is the rtcore process running?" in done.stderr

"""`discharge-edge rtcore run|status|reset` as an operator uses them.

The status and reset tests play the core's end of the link in this process (RtSide); the
instance test runs `rtcore run` as a process; the bench test (hil) runs it against the HIL
bench in this process, where the link to the PLC can be cut. The whole lifecycle over both
protocols is in test_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from edge import REPO_ROOT
from edge.cli import main
from edge.rtloop.cli import format_status
from edge.rtloop.link import RtSide, RtStatus
from edge.tagmap import load_tag_map
from edge.tagmap.resize import dump_tag_map
from rtcore.spec import Flag

pytestmark = pytest.mark.integration
OVER_TEMP, STUCK = int(Flag.OVER_TEMP), int(Flag.SENSOR_STUCK)


@pytest.fixture(autouse=True)
def private_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "shm"


def cli(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main(["rtcore", *args])
    out, err = capsys.readouterr()
    return code, out, err


def three_stations(**fields) -> RtStatus:
    values = dict(
        tick_count=42, armed=True, flags=int(Flag.STATION_ISOLATED | Flag.RELIEF_ACTIVE), bus_misses=3, n_stations=3,
        station_cause=(0, OVER_TEMP, STUCK | OVER_TEMP), station_fault_marker=(-1, 5, 9),
        station_hot_degc=(31.25, 61.5, float("nan")), station_current_limit_frac=(0.8, 0.0, 0.0),
        station_coolant_lpm=(1.5, 20.0, 20.0), station_relief_max_kpa=(0.0, 400.0, 400.0),
        station_permit=(True, False, False))
    return RtStatus(**{**values, **fields})


# -- status ----------------------------------------------------------------------------------------
def test_status_without_a_running_core_says_so(capsys):
    code, out, err = run_main(capsys, "status", "--link", "nobody-home")
    assert code == 1 and out == "" and "no rtcore running on link nobody-home" in err
    assert "is the rtcore process running?" in err


def test_status_decodes_flags_per_station(capsys):
    rt = RtSide("a")
    try:
        rt.write_status(three_stations())
        code, out, _ = run_main(capsys, "status", "--link", "a")
    finally:
        rt.close()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("rtcore on link a: alive (heartbeat ") and lines[0].endswith(", armed")
    assert "RELIEF_ACTIVE,STATION_ISOLATED" in out and "misses 3" in out
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0].isdigit()}
    assert rows["0"][:6] == ["0", "ok", "31.2", "80", "yes", "1.5"] and rows["0"][-1] == "-"
    assert rows["1"][:5] == ["1", "isolated", "61.5", "0", "no"] and "OVER_TEMP (marker 5)" in " ".join(rows["1"])
    assert rows["2"][1] == "isolated" and "SENSOR_STUCK,OVER_TEMP (marker 9)" in " ".join(rows["2"])


def test_status_json_keeps_the_numbers(capsys):
    rt = RtSide("a")
    try:
        rt.write_status(three_stations())
        code, out, _ = run_main(capsys, "status", "--link", "a", "--json")
    finally:
        rt.close()
    status = json.loads(out)
    assert code == 0 and status["alive"] is True and status["link"] == "a" and 0 <= status["heartbeat_age_s"] < 1
    assert status["station_cause"] == [0, OVER_TEMP, STUCK | OVER_TEMP]
    assert status["station_hot_degc"] == [31.25, 61.5, None]  # NaN is no JSON number
    assert status["station_permit"] == [True, False, False] and status["bus_misses"] == 3


def test_status_of_a_dead_core_reads_alive_false(capsys):
    rt = RtSide("a")
    try:
        rt.write_status(three_stations())
        deadline = time.monotonic() + 10
        code = 0
        while code == 0 and time.monotonic() < deadline:  # nobody writes any more
            code, out, err = run_main(capsys, "status", "--link", "a", "--json")
            time.sleep(0.05)
    finally:
        rt.close()
    assert code == 1 and json.loads(out)["alive"] is False
    assert "the rtcore on link a is not alive (last heartbeat 1." in err


def test_format_status_of_a_line_safe_and_not_armed():
    text = format_status("x", RtStatus(safe_state=True, safe_cause=int(Flag.LINK_LOST), alive=False, heartbeat_ns=1))
    assert "NOT ALIVE" in text and "NOT ARMED" in text and "line       SAFE: LINK_LOST" in text


# -- reset -----------------------------------------------------------------------------------------
class FakeCore:
    """The core's end of the link, answering resets the way the loop does."""

    def __init__(self, name: str, fault_persists: bool = False):
        self.rt = RtSide(name)
        self.fault_persists = fault_persists  # a cleared station latches again at once
        self.status = three_stations(armed=False)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-core")
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            _, _, reset = self.rt.poll_setpoints()
            s = self.status
            if reset:
                s = RtStatus(**{**s.__dict__, "armed": True, "resets_done": s.resets_done + 1,
                                "station_cause": (0, 0, 0)})
            for station in self.rt.poll_station_resets():
                causes = list(s.station_cause)
                causes[station] = causes[station] if self.fault_persists else 0
                s = RtStatus(**{**s.__dict__, "station_resets_done": s.station_resets_done + 1,
                                "station_cause": tuple(causes)})
            self.status = s
            self.rt.write_status(s)
            time.sleep(0.01)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.rt.close()


def test_reset_arms_and_reports_it(capsys):
    core = FakeCore("a")
    try:
        code, out, _ = run_main(capsys, "reset", "--link", "a", "--json")
        assert code == 0
        result = json.loads(out)
        assert result["carried_out"] and result["armed"] and core.status.resets_done == 1
        code, out, _ = run_main(capsys, "reset", "--link", "a", "--station", "2")
        assert code == 0 and "reset of station 2 carried out" in out
        assert core.status.station_resets_done == 1
        code, _, err = run_main(capsys, "reset", "--link", "a", "--station", "7")
        assert code == 1 and "station 7 is outside 0..2" in err
    finally:
        core.close()


def test_reset_of_a_station_that_latches_again_says_so(capsys):
    core = FakeCore("a", fault_persists=True)
    try:
        code, _, err = run_main(capsys, "reset", "--link", "a", "--station", "1")
        assert code == 0 and "latched again at once: station 1: OVER_TEMP (marker 5)" in err
    finally:
        core.close()


def test_reset_without_a_live_core_fails(capsys):
    rt = RtSide("a")
    try:
        rt.write_status(RtStatus(alive=False))
        code, _, err = run_main(capsys, "reset", "--link", "a")
    finally:
        rt.close()
    assert code == 1 and "is not alive; nothing to reset" in err


# -- run -------------------------------------------------------------------------------------------
def test_a_second_run_on_the_same_link_exits_3_and_touches_nothing(private_dir):
    code = ("import sys; from edge.rtloop.link import RtSide, RtStatus; r = RtSide('a'); "
            "r.write_status(RtStatus(tick_count=5)); print('ready', flush=True); sys.stdin.read(); r.close()")
    first = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert first.stdout.readline().strip() == "ready"
        block = (private_dir / "a").read_bytes()
        done = cli("rtcore", "run", "--map", str(REPO_ROOT / "plc_tags" / "hil_modbus.yaml"), "--link", "a")
        assert done.returncode == 3
        assert f"rtcore already running on link a (pid {first.pid})" in done.stderr
        assert "Traceback" not in done.stderr
        assert (private_dir / "a").read_bytes() == block
    finally:
        first.stdin.close()
        assert first.wait(timeout=10) == 0


def test_run_refuses_a_bad_map_after_taking_the_lock(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tags: [\n")
    done = cli("rtcore", "run", "--map", str(bad), "--link", "a")
    assert done.returncode == 1 and "refusing to start" in done.stderr
    assert (tmp_path / "state" / "rtcore.log").exists()


@pytest.mark.hil
def test_run_status_reset_against_the_bench(tmp_path):
    from tools.hil.cells import default_cells_path, load_cells
    from tools.hil.plant import Plant, PlantConfig
    from tools.hil.server_bench import HilBench, open_server

    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    server = open_server(tag_map, port=0)
    bench = HilBench(Plant(load_cells(default_cells_path(), limit=8), PlantConfig()), server)
    bench.start(dt_s=0.05)
    map_path = tmp_path / "hil.yaml"
    map_path.write_text(dump_tag_map(tag_map.with_endpoint("127.0.0.1", server.port)))
    link = f"de-test-{uuid.uuid4().hex[:8]}"
    rt = subprocess.Popen([sys.executable, "-m", "edge.cli", "rtcore", "run", "--map", str(map_path), "--link", link,
                           "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                          env=os.environ.copy())

    def status():
        done = cli("rtcore", "status", "--link", link, "--json")
        return json.loads(done.stdout) if done.stdout else None

    def wait_for(what, check, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout_s} s: {what}")

    try:
        first = wait_for("ticking", lambda: (s := status()) and s["tick_count"] >= 5 and s)
        assert first["alive"] and not first["armed"] and first["n_stations"] == 8
        assert server.get("discharge_permit") == (False,) * 8  # not armed: nothing may discharge
        assert cli("rtcore", "reset", "--link", link).returncode == 0
        wait_for("permits after the arm", lambda: server.get("discharge_permit") == (True,) * 8)
        server.cut()  # the link to the PLC drops for longer than the blind time: the line goes safe
        latched = wait_for("LINK_LOST", lambda: (s := status()) and s["safe_state"] and s)
        server.restore()
        assert latched["safe_cause"] & int(Flag.LINK_LOST) and latched["link_errors"] >= 1
        wait_for("safe outputs", lambda: server.get("safe_state") is True
                 and server.get("discharge_permit") == (False,) * 8)
        assert cli("rtcore", "reset", "--link", link).returncode == 0
        wait_for("permits after the reset", lambda: server.get("discharge_permit") == (True,) * 8)
        assert not status()["safe_state"]
    finally:
        rt.send_signal(signal.SIGTERM)
        out, err = rt.communicate(timeout=20)
        bench.stop()
        server.close()
    assert rt.returncode == 0, err
    assert json.loads(out)["ticks"] >= 10
    assert "stopped by SIGTERM" in err

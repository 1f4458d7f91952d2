"""`rtcore run --line` as systemd runs it: READY=1 once it ticks against the bench, WATCHDOG=1 while it
ticks, STOPPING=1 on SIGTERM, on a notify socket of the test's own (NOTIFY_SOCKET, WATCHDOG_USEC)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

from edge import REPO_ROOT
from edge.tagmap import load_tag_map
from edge.tagmap.resize import dump_tag_map

pytestmark = pytest.mark.hil

WAIT_S = 60.0


def wait_for(what, check, timeout_s=WAIT_S, explain=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}\n{explain()}")


def test_rtcore_run_from_the_line_file_tells_systemd_ready_watchdog_and_stopping(tmp_path):
    from tools.demo import write_line_file

    env = {**os.environ, "DISCHARGE_EDGE_SHM_DIR": str(tmp_path / "shm")}
    bench_err = open(tmp_path / "bench.err", "w+")
    bench = subprocess.Popen([sys.executable, "-m", "edge.cli", "hil", "serve", "--map",
                              str(REPO_ROOT / "plc_tags" / "hil_modbus.yaml"), "--port", "0"],
                             stdout=subprocess.DEVNULL, stderr=bench_err, env=env)
    core = None
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(1.0)
    try:
        port = wait_for("the bench's port", lambda: re.search(r" on 127\.0\.0\.1:(\d+)",
                                                                (tmp_path / "bench.err").read_text()),
                        explain=lambda: (tmp_path / "bench.err").read_text()[-2000:])
        map_path = tmp_path / "map.yaml"
        map_path.write_text(dump_tag_map(load_tag_map(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
                                         .with_endpoint("127.0.0.1", int(port.group(1)))))
        link = f"notify-{uuid.uuid4().hex[:8]}"
        line = write_line_file(tmp_path, map_path, link, tmp_path / "state")
        core_err = open(tmp_path / "core.err", "w+")
        core = subprocess.Popen([sys.executable, "-m", "edge.cli", "rtcore", "run", "--line", str(line)],
                                stdout=subprocess.DEVNULL, stderr=core_err,
                                env={**env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"})
        got: list[str] = []

        def messages():
            try:
                got.append(notify.recv(4096).decode())
            except socket.timeout:
                pass
            return sum(m == "WATCHDOG=1" for m in got) >= 3

        wait_for("READY and three WATCHDOG pings", messages, explain=lambda: f"{got}\n{core_err.read()}")
        assert got[0].startswith("READY=1\nSTATUS=not armed, line ok, 0 of 8 stations isolated, ")
        assert all(m.startswith(("READY=1", "WATCHDOG=1", "STATUS=")) for m in got)
        core.send_signal(signal.SIGTERM)
        assert core.wait(timeout=30) == 0
        while True:
            try:
                got.append(notify.recv(4096).decode())
            except socket.timeout:
                break
        assert got[-1] == "STOPPING=1\nSTATUS=stopping: writing the safe values"
        # the state dir came from the line file, as the supervisor's --spawn-rtcore uses it
        assert (tmp_path / "state" / "rtcore" / "rtcore.log").exists()
        assert "safe values written" in (tmp_path / "state" / "rtcore" / "events.jsonl").read_text()
    finally:
        notify.close()
        for proc in (core, bench):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

"""Test helper: `discharge-edge` processes as a service runs them, for tests/edge/rtloop's end-to-end
tests (test_lifecycle.py, test_run_exit_code.py; test_stop_reconnect.py polls with it): a bounded
poll (`wait_for`), a process with its output in files (`Proc`), and the bench served on a free
port with its map aimed there (`serve`)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from edge import REPO_ROOT
from edge.tagmap import load_tag_map
from edge.tagmap.resize import dump_tag_map

WAIT_S = 10.0


def wait_for(what: str, check, timeout_s: float = WAIT_S, explain=lambda: ""):
    """Poll `check` until it returns something true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}\n{explain()}")
        time.sleep(0.05)


class Proc:
    """A `discharge-edge ...` process with its output in files (no pipe can fill up)."""

    def __init__(self, tmp: Path, tag: str, *args: str):
        self.out_path, self.err_path = tmp / f"{tag}.out", tmp / f"{tag}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen([sys.executable, "-m", "edge.cli", *args], stdout=out, stderr=err,
                                          cwd=REPO_ROOT, env=os.environ.copy())
        self.pid = self.popen.pid

    def err(self) -> str:
        return self.err_path.read_text()

    def out(self) -> str:
        return self.out_path.read_text()

    def tail(self) -> str:
        return f"--- exit {self.popen.poll()}, stderr of pid {self.pid}:\n" + "\n".join(self.err().splitlines()[-25:])

    def stop(self, sig=signal.SIGTERM, timeout_s: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.popen.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def serve(tmp: Path, map_name: str) -> tuple[Proc, Path]:
    """The bench on a free port; returns it and a copy of the map aimed at that port."""
    bench = Proc(tmp, "bench", "hil", "serve", "--map", str(REPO_ROOT / "plc_tags" / map_name), "--port", "0")
    found = wait_for("the bench to say its port", lambda: re.search(r" on 127\.0\.0\.1:(\d+)", bench.err())
                     or bench.popen.poll() is not None, explain=bench.tail)
    assert bench.popen.poll() is None, bench.tail()
    map_path = tmp / map_name
    map_path.write_text(dump_tag_map(load_tag_map(REPO_ROOT / "plc_tags" / map_name)
                                     .with_endpoint("127.0.0.1", int(found.group(1)))))
    return bench, map_path

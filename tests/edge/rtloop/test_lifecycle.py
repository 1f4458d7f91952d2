"""The rtcore lifecycle end to end, as a service runs it, over both protocols.

`discharge-edge hil serve` serves the bench's PLC in one process, `discharge-edge rtcore run`
runs in another, and this test is the supervisor: it reads the PLC over the bus and the core
over the link. Steps: not armed at start (every output at its safe value), arm, a station
latch (a station limit below the station's temperature, sent over the link) that leaves the
other stations running, SIGTERM leaves the safe values on the PLC, a restart stays latched,
a second instance is refused and the first keeps ticking, an arm clears the restored latch,
`reset --station` clears one station's latch, kill -9 reads `alive false` within a
second, the bench's PLC drops permit and current when the core is dead, and the next start
replaces the dead core's block. Every wait is a bounded poll, never a fixed sleep.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.rtloop.link import SupervisorSide
from edge.tagmap import Owner, load_tag_map
from rtcore.spec import Flag, Setpoints, StationLimits

from .safe_outputs import is_safe_value
from .served import Proc, serve, wait_for

pytestmark = pytest.mark.hil

OVER_TEMP = int(Flag.OVER_TEMP)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DISCHARGE_EDGE_SHM_DIR", str(tmp_path / "shm"))
    monkeypatch.setenv("DISCHARGE_EDGE_STATE_DIR", str(tmp_path / "unused-state"))


class Supervisor:
    """The test's view: the PLC over the bus, the core over the link."""

    def __init__(self, map_path: Path, link: str):
        self.tag_map = load_tag_map(map_path)
        self.bus = open_bus(self.tag_map, Owner.SUPERVISOR)
        self.link_name = link
        self.side: SupervisorSide | None = None
        self.safe = {t.name: t.safe_value for t in self.tag_map.outputs(Owner.RTCORE) if t.name != "rtcore_heartbeat"}

    def plc(self, *names: str) -> dict:
        values = self.bus.read(list(names), timeout_s=2.0)
        return {v.name: v.value for v in values}

    def status(self):
        if self.side is None:
            try:
                self.side = SupervisorSide(self.link_name)
            except Exception:
                return None
        return self.side.read_status()

    def describe(self) -> str:
        try:
            s = self.status()
        except Exception as exc:  # a diagnostic must not hide the failure it explains
            return f"--- link: {exc}"
        if s is None:
            return "--- link: no status"
        return (f"--- link: alive {s.alive}, armed {s.armed}, ticks {s.tick_count}, line safe {s.safe_state} "
                f"({s.safe_cause:#x}), bus misses {s.bus_misses}, errors {s.link_errors}, station causes "
                f"{[hex(c) for c in s.station_cause]}, permits {s.station_permit}")

    def reattach(self) -> None:
        if self.side is not None:
            self.side.close()
        self.side = None

    def outputs_safe(self) -> bool:
        values = self.plc(*self.safe)
        return all(is_safe_value(values[name], safe) for name, safe in self.safe.items())

    def unsafe_outputs(self) -> str:
        values = self.plc(*self.safe)
        return "\n".join(f"{n}: {values[n]} (safe {s})" for n, s in self.safe.items() if not is_safe_value(values[n], s))

    def close(self) -> None:
        self.reattach()
        self.bus.close()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "rtcore", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO_ROOT)


def start_core(tmp: Path, tag: str, map_path: Path, link: str, state: Path, sup: Supervisor) -> Proc:
    core = Proc(tmp, tag, "rtcore", "run", "--map", str(map_path), "--link", link, "--state-dir", str(state), "--json")
    sup.reattach()
    wait_for(f"{tag} to tick", lambda: (core.popen.poll() is not None)
             or ((s := sup.status()) is not None and s.alive and s.tick_count >= 3 and s.n_stations > 0),
             explain=core.tail)
    assert core.popen.poll() is None, core.tail()
    return core


def events(state: Path) -> list[dict]:
    path = state / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("map_name", ["hil_modbus.yaml", "hil_logix.yaml"])
def test_lifecycle_on_the_served_bench(tmp_path, map_name):
    bench, map_path = serve(tmp_path, map_name)
    link, state = f"de-life-{uuid.uuid4().hex[:8]}", tmp_path / "state"
    sup = Supervisor(map_path, link)
    procs = [bench]

    def why() -> str:  # what a failed wait shows: the core's view, then the processes' logs
        return "\n".join([sup.describe(), *(p.tail() for p in procs[1:][-1:]), bench.tail()])

    try:
        # -- start: safe and not armed --------------------------------------------------------------
        sup.bus.write({"discharge_current_setpoint_a": (5.0,) * 8, "fixture_pressure_setpoint_kpa": (150.0,) * 8,
                       "coolant_base_lpm": (4.0,) * 8}, timeout_s=2.0)  # the supervisor asks for current
        core = start_core(tmp_path, "core1", map_path, link, state, sup)
        procs.append(core)
        status = sup.status()
        n = status.n_stations
        assert n == 8 and not status.armed and not any(status.station_permit)
        wait_for("safe outputs before the arm", sup.outputs_safe, explain=sup.unsafe_outputs)
        hb = sup.plc("rtcore_heartbeat")["rtcore_heartbeat"]
        wait_for("the heartbeat counting while not armed",
                 lambda: sup.plc("rtcore_heartbeat")["rtcore_heartbeat"] > hb, explain=why)

        # -- arm ------------------------------------------------------------------------------------------
        done = cli("reset", "--link", link)
        assert done.returncode == 0, done.stderr
        assert "arm carried out" in done.stdout
        wait_for("every permit after the arm",
                 lambda: sup.plc("discharge_permit")["discharge_permit"] == (True,) * n, explain=why)
        assert sup.status().armed

        # -- a station latch isolates that station only ---------------------------------------------
        temps = sup.plc("marker_temp_degc")["marker_temp_degc"]
        per = len(temps) // n
        hot = max(range(n), key=lambda s: min(temps[s * per:(s + 1) * per]))
        coldest_of_hot = min(temps[hot * per:(hot + 1) * per])
        assert coldest_of_hot > 28.0, f"the bench's hottest station is at {coldest_of_hot} degC; the test needs > 28"
        limits = tuple(StationLimits(2.0, 2.0, coldest_of_hot - 2.5, coldest_of_hot - 1.5) if s == hot
                       else StationLimits(2.0, 2.0, 45.0, 60.0) for s in range(n))
        sup.side.send_setpoints(Setpoints(station_limits=limits))
        latched = wait_for(f"station {hot} to latch OVER_TEMP",
                           lambda: (s := sup.status()) and s.station_cause[hot] & OVER_TEMP and s, explain=why)
        assert not latched.safe_state and latched.setpoints_rejected == 0  # the line runs on
        assert [bool(c) for c in latched.station_cause] == [s == hot for s in range(n)]
        want_permit = tuple(s != hot for s in range(n))
        wait_for("the hot station's permit off, the others on",
                 lambda: sup.plc("discharge_permit")["discharge_permit"] == want_permit, explain=why)
        plc = sup.plc("station_safe_state", "current_limit_pct")
        assert plc["station_safe_state"] == tuple(s == hot for s in range(n)) and plc["current_limit_pct"][hot] == 0
        wait_for("the latch in the state dir", lambda: (state / f"{link}.latch.json").exists()
                 and str(hot) in json.loads((state / f"{link}.latch.json").read_text())["stations"], explain=why)
        latch_events = [e for e in events(state) if e["kind"] == "latch"]
        assert latch_events and latch_events[0]["station"] == hot and "OVER_TEMP" in latch_events[0]["cause"]
        assert latch_events[0]["value"] >= coldest_of_hot - 1.5
        assert re.search(rf"ERROR edge.rtloop.events: rtcore event latch: OVER_TEMP station {hot}",
                         (state / "rtcore.log").read_text())  # the log file keeps it too

        # -- SIGTERM: the safe values stay on the PLC --------------------------------------------------
        assert core.stop(signal.SIGTERM) == 0, core.tail()
        assert sup.outputs_safe(), sup.unsafe_outputs()  # read after the exit: nothing rewrites them
        summary = json.loads(core.out())
        assert summary["safe_values_written"] is True
        assert [e["kind"] for e in events(state)][-1] == "stop"

        # -- restart: still latched, not armed ---------------------------------------------------------
        core = start_core(tmp_path, "core2", map_path, link, state, sup)
        procs.append(core)
        status = sup.status()
        assert not status.armed and status.station_cause[hot] & OVER_TEMP
        assert sum(bool(c) for c in status.station_cause) == 1
        assert sup.plc("discharge_permit")["discharge_permit"] == (False,) * n
        assert sup.plc("station_safe_state")["station_safe_state"][hot] is True
        text = cli("status", "--link", link)
        assert text.returncode == 0 and "NOT ARMED" in text.stdout
        assert re.search(rf"^\s+{hot}\s+isolated\s.*OVER_TEMP", text.stdout, re.M), text.stdout

        # -- a second instance is refused; the first keeps ticking ---------------------------------------
        ticks = sup.status().tick_count
        second = cli("run", "--map", str(map_path), "--link", link, "--state-dir", str(state), "--seconds", "1")
        assert second.returncode == 3, second.stderr
        assert f"rtcore already running on link {link} (pid {core.pid})" in second.stderr
        wait_for("the first instance still ticking",
                 lambda: (s := sup.status()).alive and s.tick_count > ticks + 3, explain=why)

        # -- arm again: the restored latch clears, current flows -----------------------------------------
        assert cli("reset", "--link", link).returncode == 0
        wait_for("every station discharging", lambda: (v := sup.plc("discharge_permit", "station_current_a"))
                 and all(v["discharge_permit"]) and min(v["station_current_a"]) > 1.0, explain=why)
        assert not any(sup.status().station_cause)
        assert json.loads((state / f"{link}.latch.json").read_text())["stations"] == {}
        assert any(e["kind"] == "clear" and e["station"] == hot for e in events(state))

        # -- one station: latch, the fault goes, `reset --station` clears it alone -------------------------
        sup.side.send_setpoints(Setpoints(station_limits=limits))
        wait_for(f"station {hot} to latch again", lambda: sup.status().station_cause[hot] & OVER_TEMP, explain=why)
        sup.side.send_setpoints(Setpoints())  # the line-wide limits again: the fault is gone, the latch stays
        assert sup.status().station_cause[hot] & OVER_TEMP
        done = cli("reset", "--link", link, "--station", str(hot))
        assert done.returncode == 0 and f"reset of station {hot} carried out" in done.stdout, done.stderr
        wait_for("every permit back",
                 lambda: sup.plc("discharge_permit")["discharge_permit"] == (True,) * n, explain=why)
        status = sup.status()
        assert not any(status.station_cause) and status.station_resets_done == 1 and status.resets_done == 1

        # -- kill -9: alive false within a second --------------------------------------------------------
        assert sup.status().alive
        core.popen.kill()
        killed = time.monotonic()
        core.popen.wait(timeout=10)
        wait_for("alive false after kill -9", lambda: not sup.status().alive, explain=why)
        assert time.monotonic() - killed < 1.5
        dead = cli("status", "--link", link, "--json")
        assert dead.returncode == 1 and json.loads(dead.stdout)["alive"] is False and "not alive" in dead.stderr
        # the bench's PLC watches the core's heartbeat: the permit it left on no longer discharges
        wait_for("the PLC's watchdog stopping the current", lambda: max(
            abs(a) for a in sup.plc("station_current_a")["station_current_a"]) < 0.05, explain=bench.tail)

        # -- the next start replaces the dead core's block -----------------------------------------------
        core = start_core(tmp_path, "core3", map_path, link, state, sup)
        procs.append(core)
        assert "removing the stale link" in core.err()
        assert core.stop(signal.SIGTERM) == 0, core.tail()
    finally:
        sup.close()
        for proc in reversed(procs):
            proc.kill()

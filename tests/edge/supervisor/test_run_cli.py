"""`discharge-edge run`: registered as a subcommand, a whole run in-process (in-memory PLC, the
stand-in of test_flow.py, real grading and planning without the tree) with --start --until-idle
--json, a second run on the same state dir (a restart, nothing recorded twice), and its refusals
(a broken model, a map without the robot cell's tags) with exit code 1 and the cause on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge import REPO_ROOT
from edge.bus import MemoryPlc
from edge.supervisor import cli

pytestmark = pytest.mark.integration

_spec = importlib.util.spec_from_file_location("supervisor_flow_harness", Path(__file__).with_name("test_flow.py"))
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.register(sub)
    return parser.parse_args(["run", *argv])


def test_run_is_a_subcommand_of_discharge_edge():
    out = subprocess.run([sys.executable, "-m", "edge.cli", "run", "--help"], capture_output=True, text=True,
                         timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    for option in ("--line", "--state-dir", "--json", "--spawn-rtcore", "--start", "--until-idle", "--scan-s"):
        assert option in out.stdout


def run_in_process(line, state_dir: Path, capsys, *extra: str) -> tuple[int, dict | None, str]:
    plc = MemoryPlc(line.supervisor_map)
    plant = harness.StandIn(plc) if all(line.supervisor_map.tag(t) for t in harness.PLACEMENT_TAGS) else None
    if plant is not None:
        for inbox in (state_dir / "inbox").glob("*.csv"):  # its batteries wait behind the robot
            plant.add(c.split(",", 1)[0] for c in inbox.read_text().splitlines()[1:])
    clock = harness.Clock()
    start = clock.t

    def after_scan():
        clock.t += 1.0
        assert clock.t < start + 2000, "the run did not end within 2000 scans"
        if plant is not None:
            plant.step(1.0)

    args = parse("--line", str(line.source), "--state-dir", str(state_dir), "--json", "--until-idle",
                 "--rest-s", "2", "--no-tree", *extra)
    code = cli.run(args, line=line, plc=plc, after_scan=after_scan, sleep=lambda s: None, clock=clock)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def test_a_run_from_the_inbox_to_the_json_summary_and_a_restart(line, tmp_path, capsys):
    state = tmp_path / "state"
    cells = harness.write_cells(tmp_path / "arrivals.csv", range(1, 5))
    (state / "inbox").mkdir(parents=True)
    shutil.move(tmp_path / "arrivals.csv", state / "inbox" / "arrivals.csv")
    code, summary, err = run_in_process(line, state, capsys, "--start")
    assert code == 0, err
    assert summary["batteries_processed"] == len(cells) and summary["batteries_waiting"] == 0
    assert summary["packml_state"] == "Execute" and summary["restarts"] == 0
    assert sorted(b["cell_id"] for b in summary["batteries"]) == sorted(cells)
    for b in summary["batteries"]:
        assert b["outcome"] == "done" and b["charge_removed_ah"] > 0
        assert b["soc_lo_pct"] <= b["soc_pct"] <= b["soc_hi_pct"] and b["soh_sd"] > 0
        assert b["end_s"] > b["start_s"] and 0 <= b["station"] < 8 and b["tier"] >= 0
    assert [s["state"] for s in summary["stations"]] == ["empty"] * 8
    assert summary["model_versions"]["soc_gan"]["sha256"] and summary["model_versions"]["rl_policy"]["sha256"]
    # started again on the same state dir: a restart, the line still in Execute, nothing twice
    more = harness.write_cells(state / "inbox" / "more.csv", range(4, 7))
    code, again, err = run_in_process(line, state, capsys)
    assert code == 0, err
    assert again["restarts"] == 1 and again["packml_state"] == "Execute"
    ids = [b["cell_id"] for b in again["batteries"]]
    assert sorted(ids) == sorted(set(cells + more)) and len(ids) == len(set(ids))


def test_a_broken_model_is_refused_with_exit_1(line, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(line.models.soc_gan_dir, models)
    onnx = models / "soc_gan.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-4] + b"XXXX")
    text = (REPO_ROOT / "lines" / "bench.yaml").read_text()
    text = text.replace("../plc_tags/", f"{REPO_ROOT}/plc_tags/").replace("../models/shipped", str(models))
    text = text.replace("state_dir: ../build/state/hil-bench", f"state_dir: {tmp_path / 'state'}")
    (tmp_path / "line.yaml").write_text(text)
    code = cli.run(parse("--line", str(tmp_path / "line.yaml"), "--json"))
    err = capsys.readouterr()
    assert code == 1 and err.out == ""
    assert "SOC model in" in err.err and str(models) in err.err


def test_a_map_without_the_robot_cell_tags_is_refused_with_exit_1(line, tmp_path, capsys):
    bare = dataclasses.replace(line, supervisor_map=harness.without_placement_tags(line.supervisor_map))
    code, summary, err = run_in_process(bare, tmp_path / "state", capsys, "--start")
    assert code == 1 and summary is None
    assert "robot_order_seq" in err and "vision_confidence_pct" in err


def test_a_run_under_systemd_says_ready_pings_the_watchdog_and_says_stopping(line, tmp_path, capsys, monkeypatch):
    import socket
    import threading

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    messages: list[str] = []
    done = threading.Event()

    def read() -> None:  # systemd's side: read every datagram as it comes
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "40000")  # a ping at most every 10 ms of real time
    state = tmp_path / "state"
    (state / "inbox").mkdir(parents=True)
    harness.write_cells(state / "inbox" / "arrivals.csv", range(1, 3))
    code, summary, err = run_in_process(line, state, capsys, "--start")
    deadline = time.monotonic() + 10.0
    while not any(m.startswith("STOPPING=1") for m in messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    reader.join(timeout=5.0)
    sock.close()
    assert code == 0, err
    kinds = [m.split("\n")[0] for m in messages]
    assert kinds[0] == "READY=1" and f"line {line.name}" in messages[0]
    assert kinds[-1] == "STOPPING=1"
    assert kinds.count("WATCHDOG=1") >= 1 and set(kinds) == {"READY=1", "WATCHDOG=1", "STOPPING=1"}

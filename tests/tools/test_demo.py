"""`discharge-edge demo` as `make demo` runs it (smaller: fewer batteries) and as a user mistypes it.

The batch runs the real processes: the bench PLC server, the rtcore process, and the supervisor
(`discharge-edge run`) in its own process, killed once with SIGKILL mid-batch. The slow suite
runs the default 16-battery batch on each protocol."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.hil


def demo(*args: str, timeout: float = 600.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", "demo", *args], capture_output=True, text=True,
                          timeout=timeout)


def check_batch(report: dict, modules: int, out) -> None:
    assert report["ok"] is True, json.dumps(report["batch"])
    batch = report["batch"]
    assert batch["batteries_recorded"] == modules and batch["each_recorded_once"] is True
    assert batch["batteries_missing"] == []
    assert report["rtcore"]["line_safe_state"] is False and report["rtcore"]["ticks"] > 0
    for b in report["batteries"]:
        assert b["outcome"] in ("done", "isolated"), b
        assert b["station"] in range(8) and b["tier"] in range(1, 5)
        assert b["soc_interval_pct"][0] <= b["soc_pct"] <= b["soc_interval_pct"][1]
        assert b["start_s"] < b["end_s"]
        assert set(b["model_versions"]) == {"soc_gan", "rl_policy"}
        assert all(len(v["sha256"]) == 64 for v in b["model_versions"].values())
        assert b["strategy"]["segments"]
        if b["outcome"] == "done":  # what the supervisor counted is what the bench's truth removed
            assert b["charge_removed_ah"] == pytest.approx(b["charge_removed_ah_truth"], abs=0.1)
        assert json.loads((out / "records" / f"{b['cell_id']}.json").read_text()) == b
        if b["outcome"] in ("done", "isolated"):  # placed by the robot, after vision passed the frame
            assert b["slot"] is not None and b["channel"] in {"A", "B"} and b["vision"]["ok"] is True
            p = b["placement"]
            assert p["station"] == b["station"] and p["ordered_s"] <= p["acked_s"] <= p["done_s"] <= b["start_s"]
            assert b["clamped_s"] is not None and b["clamp_kpa"] > 0
    assert json.loads((out / "batch.json").read_text()) == report
    assert batch["channels_one_tier_at_a_time"] is True
    assert batch["robot_moves"] >= 2 * modules - 1 and batch["robot_busy_s"] > 0 and batch["batteries_per_h"] > 0
    assert (out / "report.png").stat().st_size > 10_000 and (out / "gantt.png").stat().st_size > 5_000
    check_html(report, out)
    import numpy as np

    trace = np.load(out / "trace.npz")
    assert trace["current_a"].shape == (trace["t_s"].size, 8) and trace["t_s"][-1] >= report["batch"]["last_end_s"] - 10


def check_html(report: dict, out) -> None:
    """OUT/report.html: every battery of the batch in its table, the Gantt and the bench's figures inline."""
    import re

    assert report["html_error"] is None and report["files"]["html"] == str(out / "report.html")
    page = (out / "report.html").read_text()
    cells = re.findall(r'<tr class="battery \w+" data-cell-id="([^"]+)"', page)
    assert sorted(cells) == sorted(b["cell_id"] for b in report["batteries"])
    images = re.findall(r'<img id="([^"]+)" alt="[^"]*" src="data:image/png;base64,', page)
    assert images[0] == "gantt-img" and images[-2:] == ["extra-0", "extra-1"]
    assert "http://" not in page and "https://" not in page


ROWS = (1, 4, 6, 9, 10)  # rows of cells_train.csv: one with the hot cell (tier 4), four quick low-SOC ones


def some_rows(tmp_path, rows=ROWS):
    import csv

    from tools.hil.cells import default_cells_path

    with open(default_cells_path(), newline="") as f:
        table = list(csv.reader(f))
    path = tmp_path / "cells.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([table[0]] + [table[1 + r] for r in rows])
    return path


@pytest.mark.slow  # 34 s: in CI's slow suite, keeping `make test` well under its 10 minutes
def test_a_batch_with_a_hot_cell_and_a_supervisor_killed_mid_batch(tmp_path):
    out = tmp_path / "out"
    done = demo("--cells", str(some_rows(tmp_path)), "--modules", "5", "--short-module", "0",
                "--crash-supervisor-at", "12", "--out", str(out), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    check_batch(report, 5, out)
    assert report["batch"]["supervisor_restarts"] == 1 and report["run"]["supervisor_kills"] == 1
    crash = report["supervisor_crash"]
    assert crash["core_at_kill"]["alive"] and crash["core_at_restart"]["alive"]
    assert crash["core_ticks_while_down"] >= 10  # 3 s down at 100 ms: the core went on protecting
    assert crash["core_at_restart"]["armed"] and not crash["core_at_restart"]["line_safe_state"]
    hot = report["hot_battery"]
    assert hot["cell_id"] == report["run"]["short_battery"]
    assert hot["outcome"] == "isolated" and set(hot["cause"]) <= {"OVER_TEMP", "DTDT_ALARM"}
    assert report["batch"]["isolations"] == 1
    assert [b["outcome"] for b in report["batteries"] if b["cell_id"] != hot["cell_id"]] == ["done"] * 4
    log = (out / "supervisor.log").read_text()
    assert log.count("--- start") == 2


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_the_default_batch_on_each_protocol(tmp_path, protocol):
    done = demo("--protocol", protocol, "--out", str(tmp_path), "--json", timeout=900.0)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    check_batch(report, 16, tmp_path)
    assert report["run"]["protocol"] == protocol and report["batch"]["supervisor_restarts"] == 0


@pytest.mark.parametrize("argv, fragment", [
    (["--time-scale", "40"], "--time-scale 40 gives a core tick of 4 s of plant time"),
    (["--modules", "0"], "--modules 0: allowed: 1 or more"),
    (["--modules", "4", "--short-module", "4"], "--short-module 4: allowed: -1 (none) or a battery of the batch, 0..3"),
    (["--crash-supervisor-at", "-1"], "--crash-supervisor-at -1"),
    (["--modules", "5000"], "has 1000 rows; --modules 5000 needs that many"),
    (["--stations", "0"], "--stations 0: allowed on modbus: 1..128"),
    (["--robot-cycle-s", "-1"], "--robot-cycle-s -1: allowed: 0..600 plant seconds"),
    (["--slots", "65"], "--slots 65: allowed: 1..64"),
    (["--protocol", "logix", "--stations", "129"], "--stations 129: allowed on logix: 1..128"),
])
def test_bad_usage_is_refused_with_exit_2_and_nothing_on_stdout(argv, fragment, tmp_path):
    done = demo(*argv, "--out", str(tmp_path), "--json", timeout=60.0)
    assert done.returncode == 2 and done.stdout == ""
    assert fragment in done.stderr


def test_a_cells_file_that_is_not_one_is_refused_naming_it(tmp_path):
    bad = tmp_path / "cells.csv"
    bad.write_text("not,a,cells\nfile,at,all\n")
    done = demo("--cells", str(bad), "--out", str(tmp_path / "out"), "--json", timeout=60.0)
    assert done.returncode == 2 and done.stdout == ""
    assert str(bad) in done.stderr


def test_a_demo_stopped_with_sigterm_stops_its_supervisor_and_its_core(tmp_path):
    import signal
    import time

    import yaml

    from edge.rtloop.handle import RtcoreError, RtcoreHandle

    out = tmp_path / "out"
    demo_process = subprocess.Popen([sys.executable, "-m", "edge.cli", "demo", "--cells", str(some_rows(tmp_path)),
                                     "--modules", "5", "--out", str(out), "--json"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and "--- start 1" not in (
                (out / "supervisor.log").read_text() if (out / "supervisor.log").exists() else ""):
            time.sleep(0.2)
        link = yaml.safe_load((out / "line.yaml").read_text())["rtcore_link"]
        assert RtcoreHandle.attach_only(link).status().alive
        demo_process.send_signal(signal.SIGTERM)
        stdout, stderr = demo_process.communicate(timeout=60.0)
    finally:
        demo_process.kill()
    assert demo_process.returncode == 130 and stdout == ""
    assert "interrupted" in stderr
    supervisors = subprocess.run(["pgrep", "-f", str(out / "line.yaml")], capture_output=True, text=True)
    assert supervisors.stdout == ""  # no supervisor left running
    try:
        status = RtcoreHandle.attach_only(link).status()
        assert status is None or not status.alive
    except RtcoreError:
        pass  # the link is gone with its core

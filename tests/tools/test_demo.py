"""`discharge-edge demo` runs as `make demo` runs it and reports what it measured."""

import json
import subprocess
import sys


def test_demo_runs_and_reports_one_json_object():
    done = subprocess.run([sys.executable, "-m", "edge.cli", "demo", "--rounds", "20", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert {p["protocol"] for p in report["protocols"]} == {"modbus", "logix"}
    for protocol in report["protocols"]:
        assert protocol["reads_good"] and protocol["writes_good"] and protocol["plc_sees_safe_outputs"]
        assert protocol["heartbeat_on_plc"] == 19

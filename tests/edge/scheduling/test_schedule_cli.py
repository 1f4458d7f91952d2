"""`discharge-edge schedule` (edge/scheduling/cli.py) and the Gantt chart (gantt.py)."""

import json

import pytest

from edge.cli import main
from edge.scheduling.instance import load_instance
from edge.scheduling.plan import Placement, Plan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


def _plan_from_json(instance, channels):
    mods = {u.id: instance.modules[u.module].id for u in instance.units}
    return Plan(tuple(Placement(u["unit"], mods[u["unit"]], ch["channel"], u["start_min"], u["end_min"])
                      for ch in channels for u in ch["units"]), "cli")


def test_json_output_on_the_paper(paper_path, capsys, tmp_path):
    png = tmp_path / "g.png"
    assert main(["schedule", str(paper_path), "--json", "--time-limit", "5", "--gantt", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["makespan_min"] == 1080 and out["traditional_makespan_min"] == 2130
    assert out["lower_bound_min"] == 1080 and out["method"] == "best" and out["proven_optimal"]
    assert out["reduction_vs_traditional_pct"] == 49.3
    inst = load_instance(paper_path)
    assert check_plan(inst, _plan_from_json(inst, out["plan"])) == []
    units = out["plan"][0]["units"]
    assert units == sorted(units, key=lambda u: u["start_min"]) and set(units[0]) == {
        "unit", "module", "start_min", "end_min"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_aco_text_output(paper_path, capsys):
    assert main(["schedule", str(paper_path), "--method", "aco", "--time-limit", "1", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert "method aco" in text and "traditional 2130 min" in text and "CH2:" in text


def test_bad_instance_exits_1_naming_the_field(tmp_path, paper_path, capsys):
    data = json.loads(paper_path.read_text())
    data["modules"][0]["tasks"][0]["units"][0]["duration_min"] = -5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert main(["schedule", str(bad), "--json"]) == 1
    err = capsys.readouterr()
    assert err.out == "" and "bad.json" in err.err and "M1.T1.U1" in err.err and "duration_min" in err.err


def test_bad_usage_exits_2(paper_path):
    with pytest.raises(SystemExit) as exc:
        main(["schedule", str(paper_path), "--time-limit", "0"])
    assert exc.value.code == 2


def test_replan_from_the_command_line(paper_path, capsys, tmp_path):
    assert main(["schedule", str(paper_path), "--json", "--time-limit", "3"]) == 0
    running = tmp_path / "running.json"
    running.write_text(capsys.readouterr().out)
    data = json.loads(paper_path.read_text())
    data["channels"][1]["stations"].append("S6")           # a module arrives on a new station
    m6 = json.loads(json.dumps(data["modules"][0]).replace('"M1', '"M6'))
    m6["station"] = "S6"
    data["modules"].append(m6)
    new = tmp_path / "new.json"
    new.write_text(json.dumps(data))
    now = 400
    ch2 = json.loads(running.read_text())["plan"][1]["units"]
    on_ch2 = max((u for u in ch2 if u["start_min"] <= now), key=lambda u: u["start_min"])  # started last
    args = ["schedule", str(new), "--json", "--time-limit", "2", "--running", str(running), "--now-min", str(now),
            "--overrun", f"{on_ch2['unit']}={on_ch2['end_min'] - on_ch2['start_min'] + 30}"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    inst = load_instance(new)
    assert out["replanned_at_min"] == now and out["kept_units"]
    old = {u["unit"]: u for ch in json.loads(running.read_text())["plan"] for u in ch["units"]}
    got = {u["unit"]: u for ch in out["plan"] for u in ch["units"]}
    assert all(got[u]["start_min"] == old[u]["start_min"] for u in out["kept_units"])
    assert all(got[u]["start_min"] >= now for u in got if u not in out["kept_units"])
    assert {u for u in got if u.startswith("M6.")} and out["makespan_min"] >= 1080
    plan = _plan_from_json(inst, out["plan"])
    assert len(plan.placements) == 42


def test_replan_usage_and_input_errors(paper_path, capsys, tmp_path):
    assert main(["schedule", str(paper_path), "--now-min", "5"]) == 2
    assert main(["schedule", str(paper_path), "--running", str(paper_path)]) == 2
    assert "--now-min" in capsys.readouterr().err
    bad = tmp_path / "bad_plan.json"
    bad.write_text(json.dumps({"plan": [{"channel": "CH1", "units": [{"unit": "M9.X", "start_min": 0, "end_min": 5}]}]}))
    assert main(["schedule", str(paper_path), "--running", str(bad), "--now-min", "1"]) == 1
    assert "bad_plan.json: plan[0].units[0]: unit 'M9.X' is not in the instance" in capsys.readouterr().err
    ok = tmp_path / "empty_plan.json"
    ok.write_text(json.dumps({"plan": []}))
    assert main(["schedule", str(paper_path), "--running", str(ok), "--now-min", "1", "--overrun", "M1.T1.U1=x"]) == 2

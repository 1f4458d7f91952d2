"""Hostile and careless input to `schedule` (edge/scheduling/instance.py read_json and limits,
plan.py plan_from_json, bound.py): a clear refusal naming the file and the line or JSON path,
never a traceback or a wrong answer with exit code 0."""

import codecs
import json

import pytest

from edge.cli import main
from edge.scheduling.bound import lower_bound
from edge.scheduling.instance import (MAX_JSON_DEPTH, MAX_MINUTES, Channel, Instance, InstanceError, Module, Task,
                                      Unit, instance_from_dict, load_instance)
from edge.scheduling.best import solve

pytestmark = pytest.mark.unit


def _schedule(capsys, *args):
    code = main(["schedule", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_non_utf8_instance_names_the_file_and_line(tmp_path, paper_path, capsys):
    raw = paper_path.read_bytes().replace(b'"name": "', b'"name": "caf\xe9 ', 1)   # a Latin-1 e-acute
    bad = tmp_path / "latin1.json"
    bad.write_bytes(raw)
    line = raw[:raw.index(b"caf\xe9")].count(b"\n") + 1
    code, out, err = _schedule(capsys, bad, "--json")
    assert code == 1 and out == ""
    assert f"latin1.json: line {line} column" in err and "not UTF-8 (byte 0xe9)" in err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err


def test_json_nested_100000_deep_is_refused_with_its_line(tmp_path, capsys):
    bad = tmp_path / "deep.json"
    bad.write_text('{"schema": "x",\n "modules": ' + "[" * 100_000 + "]" * 100_000 + "}")
    code, out, err = _schedule(capsys, bad)
    assert code == 1 and out == ""
    assert f"deep.json: line 2: JSON nested deeper than {MAX_JSON_DEPTH} levels" in err
    assert "RecursionError" not in err


def test_utf8_bom_is_accepted(tmp_path, paper_path, capsys):
    bom = tmp_path / "bom.json"
    bom.write_bytes(codecs.BOM_UTF8 + paper_path.read_bytes())
    code, out, err = _schedule(capsys, bom, "--json", "--time-limit", "5")
    assert code == 0, err
    assert json.loads(out)["makespan_min"] == 1080


def test_unknown_channel_in_running_plan_is_named(tmp_path, paper_path, capsys):
    running = tmp_path / "running.json"
    running.write_text(json.dumps({"plan": [{"channel": "CH9", "units": [
        {"unit": "M1.T1.U1", "module": "M1", "start_min": 0, "end_min": 60}]}]}))
    code, out, err = _schedule(capsys, paper_path, "--running", running, "--now-min", "10")
    assert code == 1 and out == ""
    assert "running.json: plan[0].channel: channel 'CH9' is not in the instance (it has CH1, CH2)" in err
    assert "KeyError" not in err


def test_running_plan_with_a_bom_non_utf8_or_huge_minutes(tmp_path, paper_path, capsys):
    running = tmp_path / "running.json"
    running.write_bytes(codecs.BOM_UTF8 + json.dumps({"plan": []}).encode())
    assert _schedule(capsys, paper_path, "--running", running, "--now-min", "0", "--time-limit", "2")[0] == 0
    running.write_bytes(b'{"plan": "\xff"}')
    code, _, err = _schedule(capsys, paper_path, "--running", running, "--now-min", "0")
    assert code == 1 and "running.json: line 1 column 11: not UTF-8" in err
    running.write_text(json.dumps({"plan": [{"channel": "CH1", "units": [
        {"unit": "M1.T1.U1", "start_min": 10**30, "end_min": 10**30 + 60}]}]}))
    code, _, err = _schedule(capsys, paper_path, "--running", running, "--now-min", "0")
    assert code == 1 and "running.json: plan[0].units[0]: expected unit, start_min and end_min (integers" in err


@pytest.mark.parametrize("duration", [10**30, 1e30, MAX_MINUTES + 1])
def test_duration_1e30_is_refused_naming_the_field(paper_data, duration):
    paper_data["modules"][0]["tasks"][0]["units"][0]["duration_min"] = duration
    with pytest.raises(InstanceError) as exc:
        instance_from_dict(paper_data, "paper.json")
    msg = str(exc.value)
    assert "paper.json: modules[0] (module 'M1').tasks[0].units[0] (unit 'M1.T1.U1').duration_min" in msg
    assert len(exc.value.problems) == 1


@pytest.mark.parametrize("field", ["min_rest_before_min", "min_rest_after_min"])
def test_rest_1e30_is_refused_naming_the_field(paper_data, field):
    paper_data["modules"][1]["tasks"][0]["units"][0][field] = 10**30
    with pytest.raises(InstanceError, match=f"units\\[0\\] \\(unit 'M2.T1.U1'\\).{field}: expected an integer "
                                            f"from 0 to {MAX_MINUTES}"):
        instance_from_dict(paper_data, "paper.json")


def test_duration_at_the_physical_limit_is_planned(paper_data):
    paper_data["modules"][0]["tasks"][0]["units"][0]["duration_min"] = MAX_MINUTES
    inst = instance_from_dict(paper_data)
    sol = solve(inst, "best", 2)
    assert sol.lower_bound_min <= sol.makespan_min and sol.makespan_min >= MAX_MINUTES


def test_duration_1e30_bound_never_exceeds_the_makespan():
    # the loader refuses it; the bound itself is exact integer arithmetic anyway (it was
    # 1.00000000000000002e30 for a 1e30-minute unit alone on its channel)
    d = 10**30
    unit = Unit(0, "U", 0, 0, 0, d)
    inst = Instance("huge", (Channel(0, "CH1", ("S1",)),), (Module(0, "M", "S1", (Task("a", 0, (unit,)),)),))
    assert lower_bound(inst) == d


@pytest.mark.parametrize("args", [["--seed", "99999999999999999999"], ["--seed=-1"], ["--seed", "x"],
                                  ["--now-min", "1000000000000000000000000000000"], ["--now-min=-5"]])
def test_seed_and_now_min_out_of_range_are_usage_errors(paper_path, tmp_path, capsys, args):
    running = tmp_path / "running.json"
    running.write_text(json.dumps({"plan": []}))
    with pytest.raises(SystemExit) as exc:
        main(["schedule", str(paper_path), "--running", str(running), *args])
    assert exc.value.code == 2
    assert f"argument {args[0].split('=')[0]}" in capsys.readouterr().err


def test_plain_text_and_huge_integer_files(tmp_path, capsys):
    bad = tmp_path / "digits.json"
    bad.write_text("1" * 5000)
    code, _, err = _schedule(capsys, bad)
    assert code == 1 and "digits.json: not JSON" in err
    missing = tmp_path / "missing.json"
    code, _, err = _schedule(capsys, missing)
    assert code == 1 and "missing.json: cannot read" in err


def test_load_instance_names_the_file_for_every_problem(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_bytes(b"\xef\xbb\xbf{\"schema\": 1}")
    with pytest.raises(InstanceError) as exc:
        load_instance(bad)
    assert exc.value.source == str(bad) and exc.value.problems[0].startswith("schema: expected")

"""Instance loading and its errors (edge/scheduling/instance.py)."""

import copy

import pytest

from edge.scheduling.instance import InstanceError, TaskOrder, instance_from_dict, instance_to_dict, load_instance

pytestmark = pytest.mark.unit


def mutate(data, fn):
    out = copy.deepcopy(data)
    fn(out)
    return out


def test_paper_instance_loads(paper):
    inst = paper
    assert [c.id for c in inst.channels] == ["CH1", "CH2"]
    assert len(inst.modules) == 5 and len(inst.units) == 35
    assert inst.task_order is TaskOrder.FIXED and inst.fixed_wiring
    u = inst.unit_by_id()["M4.T2.U1"]
    assert (u.duration_min, u.rest_before_min, u.rest_after_min) == (60, 120, 120)


def test_round_trip_keeps_the_instance(paper):
    inst = paper
    again = instance_from_dict(instance_to_dict(inst))
    assert again.units == inst.units and again.channels == inst.channels


def _problems(data, source="x.json"):
    with pytest.raises(InstanceError) as err:
        instance_from_dict(data, source=source)
    return err.value, str(err.value)


def test_error_names_file_field_module_and_unit(paper_data):
    data = mutate(paper_data, lambda d: d["modules"][3]["tasks"][1]["units"][0].update(duration_min=0))
    exc, text = _problems(data, "line7.json")
    assert "line7.json" in text
    assert "modules[3] (module 'M4').tasks[1].units[0] (unit 'M4.T2.U1').duration_min" in text


def test_all_problems_reported_at_once(paper_data):
    def breakit(d):
        d["modules"][0]["tasks"][0]["units"][0]["duration_min"] = "60"
        d["modules"][1]["station"] = "S9"
        d["modules"][2]["station"] = "S1"
        d["channels"][1]["id"] = "CH1"
        d["task_order"] = "any"
    exc, text = _problems(mutate(paper_data, breakit))
    assert len(exc.problems) == 5, exc.problems
    assert "station 'S9' is not wired" in text and "one module per station" in text
    assert "duplicate channel id 'CH1'" in text and "task_order" in text and "expected an integer" in text


def test_required_fields_of_the_shared_schema_are_enforced(schema, paper_data):
    base = paper_data
    for key in schema["required"]:
        _, text = _problems(mutate(base, lambda d, k=key: d.pop(k)))
        assert key in text
    module_req = schema["properties"]["modules"]["items"]["required"]
    for key in module_req:
        _, text = _problems(mutate(base, lambda d, k=key: d["modules"][0].pop(k)))
        assert f"{key}: required field missing" in text
    task_req = schema["properties"]["modules"]["items"]["properties"]["tasks"]["items"]["required"]
    for key in task_req:
        _, text = _problems(mutate(base, lambda d, k=key: d["modules"][0]["tasks"][0].pop(k)))
        assert f"{key}: required field missing" in text
    unit_req = (schema["properties"]["modules"]["items"]["properties"]["tasks"]["items"]["properties"]
                ["units"]["items"]["required"])
    for key in unit_req:
        _, text = _problems(mutate(base, lambda d, k=key: d["modules"][0]["tasks"][0]["units"][0].pop(k)))
        assert f"{key}: required field missing" in text


def test_bad_files(tmp_path):
    with pytest.raises(InstanceError, match="cannot read"):
        load_instance(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": \n oops}')
    with pytest.raises(InstanceError, match=r"bad.json.*line 2"):
        load_instance(bad)


def test_unit_ids_default_and_duplicates_are_caught(tiny_data):
    d = tiny_data()
    del d["modules"][1]["tasks"][0]["units"][0]["id"]
    inst = instance_from_dict(d)
    assert "M2.T1.U1" in inst.unit_by_id()
    d = mutate(tiny_data(), lambda x: x["modules"][1]["tasks"][0]["units"][0].update(id="M1.a1"))
    _, text = _problems(d)
    assert "duplicate unit id" in text


def test_source_is_the_file(paper_path):
    assert load_instance(paper_path).source == str(paper_path)

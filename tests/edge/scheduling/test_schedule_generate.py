"""The seeded instance generator (edge/scheduling/generate.py)."""

import json

import pytest

from edge.scheduling.generate import generate_instance, main
from edge.scheduling.instance import instance_from_dict, load_instance
from edge.scheduling.plan import traditional_plan
from edge.scheduling.validate import check_plan

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("n", [20, 50, 200])
@pytest.mark.parametrize("wiring", ["fixed", "full"])
def test_generated_instances_load_and_are_seeded(n, wiring):
    data = generate_instance(n, wiring, seed=3)
    assert data == generate_instance(n, wiring, seed=3)
    assert data != generate_instance(n, wiring, seed=4)
    inst = instance_from_dict(data)
    assert len(inst.modules) == n and len(inst.channels) == -(-n // 4)
    assert inst.fixed_wiring == (wiring == "fixed")
    if wiring == "full":
        assert all(len(c.stations) == n for c in inst.channels)
    assert check_plan(inst, traditional_plan(inst)) == []


def test_rests_follow_max_of_both():
    inst = instance_from_dict(generate_instance(30, "fixed", seed=1))
    for m in inst.modules:
        seq = [u for t in m.tasks for u in t.units]
        for t in m.tasks:
            for u in t.units[1:]:
                assert u.rest_before_min == t.rest_class_min
        for a, b in zip(seq, seq[1:]):
            classes = {m.tasks[a.task].rest_class_min, m.tasks[b.task].rest_class_min}
            assert max(a.rest_after_min, b.rest_before_min) == max(classes)


def test_bad_arguments():
    with pytest.raises(ValueError, match="wiring"):
        generate_instance(5, "star")
    with pytest.raises(ValueError):
        generate_instance(0)


def test_command_line_writes_a_loadable_file(tmp_path):
    out = tmp_path / "g.json"
    assert main(["7", "--wiring", "full", "--seed", "2", "-o", str(out)]) == 0
    assert load_instance(out).name == json.loads(out.read_text())["name"]

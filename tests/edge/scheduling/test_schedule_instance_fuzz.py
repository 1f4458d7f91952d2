"""Fuzz the instance loader (edge/scheduling/instance.py: read_json, instance_from_dict): no
input raises anything but InstanceError, and every refusal names the source. Also a running
plan (plan.py plan_from_json): a Plan or a ValueError naming the file."""

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge.scheduling.instance import InstanceError, instance_from_dict, load_instance

pytestmark = pytest.mark.unit

PAPER = json.loads((Path(__file__).resolve().parents[3].parent / "shared" / "scheduling" /
                    "paper_instance.json").read_text(encoding="utf-8"))

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)


def _paths(node, prefix=()):
    """Every (container path, key) inside a decoded JSON value."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix, k
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix, i
            yield from _paths(v, prefix + (i,))


PAPER_PATHS = list(_paths(PAPER))


def _load(data, source="fuzz.json"):
    try:
        instance_from_dict(data, source)
    except InstanceError as exc:
        assert exc.source == source and exc.problems
        assert all(isinstance(p, str) and len(p) < 2000 for p in exc.problems)


@FUZZ
@given(json_values)
def test_any_json_value_is_an_instance_or_an_instance_error(data):
    _load(data)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PAPER_PATHS), json_values, st.booleans()), min_size=1, max_size=4))
def test_the_paper_with_fields_replaced_or_deleted(edits):
    data = copy.deepcopy(PAPER)
    for (prefix, key), value, delete in edits:
        node = data
        try:
            for k in prefix:
                node = node[k]
            if delete and isinstance(node, dict):
                node.pop(key, None)
            else:
                node[key] = value
        except (KeyError, IndexError, TypeError):
            continue        # an earlier edit changed the shape
    _load(data)


@FUZZ
@given(st.one_of(st.binary(max_size=300),
                 st.builds(lambda raw, cut: raw[:cut], st.just(json.dumps(PAPER).encode()), st.integers(0, 4000)),
                 st.builds(lambda pre, body: pre + body, st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe"]),
                           st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))))
def test_any_bytes_in_a_file_are_an_instance_or_an_instance_error(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.json"
        path.write_bytes(raw)
        try:
            load_instance(path)
        except InstanceError as exc:
            assert exc.source == str(path)


@FUZZ
@given(st.one_of(json_values,
                 st.builds(lambda ch, units: {"method": "best", "plan": [{"channel": ch, "units": units}]},
                           st.one_of(st.sampled_from(["CH1", "CH2", "CH9"]), json_values),
                           st.lists(st.fixed_dictionaries({"unit": st.one_of(st.sampled_from(["M1.T1.U1", "X"]),
                                                                             json_values),
                                                           "start_min": json_values, "end_min": json_values}),
                                    max_size=3))))
def test_a_running_plan_is_a_plan_or_a_value_error_naming_the_file(data):
    from edge.scheduling.plan import Plan, plan_from_json

    inst = instance_from_dict(PAPER)
    try:
        assert isinstance(plan_from_json(inst, data, "running.json"), Plan)
    except ValueError as exc:
        assert str(exc).startswith("running.json: ")

"""Fixtures of the scheduling tests: the paper instance, the shared schema, a tiny instance."""

from __future__ import annotations

import json

import pytest

from edge import REPO_ROOT
from edge.scheduling.instance import instance_from_dict, load_instance

SHARED = REPO_ROOT.parent / "shared" / "scheduling"


@pytest.fixture
def paper_path():
    return SHARED / "paper_instance.json"


@pytest.fixture
def paper(paper_path):
    return load_instance(paper_path)


@pytest.fixture
def paper_data(paper_path):
    return json.loads(paper_path.read_text(encoding="utf-8"))


@pytest.fixture
def schema():
    return json.loads((SHARED / "instance_schema.json").read_text(encoding="utf-8"))


def _unit(uid, d, rest=10):
    return {"id": uid, "duration_min": d, "min_rest_before_min": rest, "min_rest_after_min": rest}


def tiny_dict(task_order: str = "fixed", wiring: str = "fixed") -> dict:
    """Two modules on two stations and two channels; M1 has 3 tasks (2 + 1 + 1 units), M2 2 tasks."""
    stations = [["S1"], ["S2"]] if wiring == "fixed" else [["S1", "S2"], ["S1", "S2"]]
    return {
        "schema": "discharge-edge/test-schedule-instance/v1",
        "name": "tiny",
        "task_order": task_order,
        "channels": [{"id": "CH1", "stations": stations[0]}, {"id": "CH2", "stations": stations[1]}],
        "modules": [
            {"id": "M1", "station": "S1", "tasks": [
                {"item": "a", "rest_class_min": 10, "units": [_unit("M1.a1", 30), _unit("M1.a2", 20)]},
                {"item": "b", "rest_class_min": 10, "units": [_unit("M1.b1", 15)]},
                {"item": "c", "rest_class_min": 10, "units": [_unit("M1.c1", 25)]}]},
            {"id": "M2", "station": "S2", "tasks": [
                {"item": "a", "rest_class_min": 10, "units": [_unit("M2.a1", 40)]},
                {"item": "b", "rest_class_min": 10, "units": [_unit("M2.b1", 10)]}]},
        ],
    }


@pytest.fixture
def tiny_data():
    return tiny_dict


@pytest.fixture
def tiny():
    return lambda task_order="fixed", wiring="fixed": instance_from_dict(tiny_dict(task_order, wiring))

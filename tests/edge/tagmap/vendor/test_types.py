"""The vendor type tables (edge/tagmap/vendor/types.py) against this build's DataType."""

from __future__ import annotations

import pytest

from edge.tagmap.model import DataType
from edge.tagmap.vendor.types import (
    KEPWARE_TO_MAP,
    LOGIX_TO_MAP,
    MAP_TO_KEPWARE,
    NO_COUNTERPART,
    kepware_type,
    map_type,
)

pytestmark = pytest.mark.unit


def test_every_map_type_has_a_kepware_type_and_back():
    assert set(MAP_TO_KEPWARE) == {t.value for t in DataType}
    assert {k: KEPWARE_TO_MAP[v.lower()] for k, v in MAP_TO_KEPWARE.items()} == {k: k for k in MAP_TO_KEPWARE}


@pytest.mark.parametrize("table", [KEPWARE_TO_MAP, LOGIX_TO_MAP], ids=["kepware", "logix"])
def test_every_vendor_type_with_a_counterpart_names_a_map_type(table):
    assert all(isinstance(map_type(name), DataType) for name in table.values())
    assert not set(table) & set(NO_COUNTERPART)


def test_the_types_without_counterpart_say_why():
    assert {"char", "byte", "bcd", "lbcd", "date", "SINT", "USINT"} <= set(NO_COUNTERPART)
    assert map_type("SINT") is None and map_type(None) is None
    assert kepware_type(" Float Array ") == ("float", True) and kepware_type("Word") == ("word", False)

"""The draft map written as YAML (edge/tagmap/vendor/draft.py): what is missing on the lines the
loader names, and the bounded reading of a vendor file."""

from __future__ import annotations

import os

import pytest

from edge.tagmap import load_tag_map
from edge.tagmap.checker import TagMapError
from edge.tagmap.model import Protocol
from edge.tagmap.vendor import draft as draft_module
from edge.tagmap.vendor.draft import DraftMap, DraftTag, ImportReport, read_vendor_text, unique_name, write_draft

pytestmark = pytest.mark.unit


def _draft(**kwargs) -> DraftMap:
    tag = DraftTag("relief_kpa", "f.csv:2", address="holding_register:0", type="REAL", access="write",
                   owner="rtcore", unit="kPa", scan_group="fast")
    defaults = dict(name="m", protocol=Protocol.MODBUS, tags=[tag], report=ImportReport("f.csv"),
                    scan_groups={"fast": 100}, host="10.0.0.1", port=502)
    defaults.update(kwargs)
    return DraftMap(**defaults)


def test_a_write_tag_lacks_limits_and_a_safe_value():
    tag = _draft().tags[0]
    assert tag.missing() == ["limits", "safe_value"]
    tag.limits, tag.safe_value = (0.0, 400.0), 0.0
    assert tag.missing() == []
    assert DraftTag("b", "x", type="BOOL", access="write").missing() == [
        "address", "owner", "unit", "scan_group", "safe_value"]


@pytest.mark.parametrize("change, expected_fields", [
    (dict(host=None), ("connection.endpoint.host",)),
    (dict(protocol=None), ("connection.protocol",)),
    (dict(scan_groups={}), ("scan_groups",)),
])
def test_each_missing_connection_field_is_on_the_line_the_loader_names(tmp_path, change, expected_fields):
    draft = _draft(**change)
    draft.tags[0].limits, draft.tags[0].safe_value = (0.0, 400.0), 0.0
    if not draft.scan_groups:
        draft.tags[0].scan_group = None
    text, missing = write_draft(draft, header="one\ntwo")
    assert text.startswith("# one\n# two\n")
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(TagMapError) as refused:
        load_tag_map(path)
    connection = [m for m in missing if m.tag is None]
    assert [m.fields for m in connection] == [expected_fields]
    assert connection[0].line in {p.line for p in refused.value.problems}
    assert connection[0].text(path) == f"{path}:{connection[0].line}: missing {expected_fields[0]}"


def test_a_complete_draft_loads_equal_to_what_it_says(tmp_path):
    draft = _draft()
    draft.tags[0].limits, draft.tags[0].safe_value, draft.tags[0].scaling = (0.0, 400.0), 0.0, (0.1, -5.0)
    text, missing = write_draft(draft)
    assert missing == []
    path = tmp_path / "m.yaml"
    path.write_text(text)
    tag = load_tag_map(path).tag("relief_kpa")
    assert (tag.scaling.gain, tag.scaling.offset, tag.limits.max, tag.safe_value) == (0.1, -5.0, 400.0, 0.0)


def test_unique_names_fit_the_map():
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in ("a.b", "a_b", "1x", "", "a b")] == ["a_b", "a_b_2", "t_1x", "tag", "a_b_3"]


def test_a_vendor_file_is_read_bounded(tmp_path, monkeypatch):
    path = tmp_path / "v.csv"
    path.write_bytes(b"\xef\xbb\xbfTag Name\n")  # a byte-order mark, as Windows tools write
    assert read_vendor_text(path) == "Tag Name\n"
    monkeypatch.setattr(draft_module, "MAX_VENDOR_BYTES", 4)
    with pytest.raises(ValueError, match=r"v.csv: 12 bytes; an import reads at most 4"):
        read_vendor_text(path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):  # refused before open: nothing blocks
        read_vendor_text(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_vendor_text("/dev/zero")


def test_required_roles_no_tag_plays_are_listed_on_line_1_as_tags_check_does(tmp_path):
    from edge.tagmap.roles import role_problems
    from edge.tagmap.vendor.roles_guess import unplayed_roles

    draft = _draft()
    draft.tags[0].limits, draft.tags[0].safe_value = (0.0, 400.0), 0.0
    draft.unplayed_roles = unplayed_roles(draft)  # an rtcore tag: the core's required roles
    assert draft.unplayed_roles == ["marker_temp_degc", "zone_pressure_kpa", "rtcore_heartbeat"]
    text, missing = write_draft(draft)
    assert [(m.line, m.fields) for m in missing] == [(1, ("role marker_temp_degc", "role zone_pressure_kpa",
                                                          "role rtcore_heartbeat"))]
    path = tmp_path / "m.yaml"
    path.write_text(text)
    problems = role_problems(load_tag_map(path))
    assert {p.line for p in problems} == {1}
    assert all(any(role in p.message for p in problems) for role in draft.unplayed_roles)

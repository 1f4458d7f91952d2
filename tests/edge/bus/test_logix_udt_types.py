"""A UDT member's type over EtherNet/IP, against the bench's controller (its templates uploaded by
pycomm3 with the tag list, as a ControlLogix serves them): the live check names a member of
another type or size with file:line and its real type, for controller- and program-scoped UDT
tags and nested members; a read of another type is `bad_type` with both types named, never a
converted value, also when the tag-list check could not tell (pycomm3's answer carries its type);
a write to such a member is never sent. Modbus has no types on the wire: nothing to check there.

The user trial this came from: `inbox_confidence_pct` (`RobotCell[1].SlotConfidence`, REAL[4] in
the controller) mapped as DINT[4] passed `tags check --live` and read [95, 95, 96, 96].
"""

from __future__ import annotations

import pytest

from edge import REPO_ROOT
from edge.bus import Quality, open_bus
from edge.tagmap import Owner, load_tag_map
from edge.tagmap.live import check_live
from tools.hil.server_logix import LogixPlcServer

pytestmark = pytest.mark.contract

EXAMPLE = REPO_ROOT / "plc_tags" / "examples" / "program_udt_logix.yaml"
CONFIDENCE_REAL = 'address: "RobotCell[1].SlotConfidence", type: "REAL[4]"'
CONFIDENCE_DINT = 'address: "RobotCell[1].SlotConfidence", type: "DINT[4]"'
ORDER_DINT = ('address: "RobotCell[1].OrderSeq", type: DINT, access: write, owner: supervisor, unit: "", '
              'limits: {min: 0, max: 2147483647}')
ORDER_INT = ('address: "RobotCell[1].OrderSeq", type: INT, access: write, owner: supervisor, unit: "", '
             'limits: {min: 0, max: 32767}')
HEARTBEAT_TAG = "plc_scan_counter"  # the bare server runs no program: its counter stands still

SCOPES = """\
connection:
  name: udt-scopes
  protocol: logix
  endpoint: {host: 127.0.0.1, port: 44818}
  timeout_s: 0.5
scan_groups:
  slow: 1000
tags:
  - {name: cell_temp_degc, address: "Cell[1].Temp", type: REAL, access: read, owner: supervisor, unit: degC, scan_group: slow}
  - {name: feed_volts_v, address: Program:Main.Feed.Volts, type: "REAL[4]", access: read, owner: supervisor, unit: V, scan_group: slow}
  - {name: cntrl_cmd, address: PackTags.Command.CntrlCmd, type: DINT, access: read, owner: supervisor, unit: "", scan_group: slow}
  - {name: state_current, address: PackTags.Status.StateCurrent, type: INT, access: read, owner: supervisor, unit: "", scan_group: slow}
"""


@pytest.fixture(scope="module")
def example():
    with LogixPlcServer(load_tag_map(EXAMPLE)) as server:
        server.set("inbox_confidence_pct", (90.6, 96.1, 93.6, 96.2))
        server.set("robot_order_no", 7)
        yield server


def aimed(server, tmp_path, text: str, name: str = "copy.yaml"):
    """`text` as a map file in tmp_path, aimed at `server`."""
    path = tmp_path / name
    path.write_text(text)
    return load_tag_map(path).with_endpoint("127.0.0.1", server.port)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def tag_problems(report) -> dict:
    """(line, tag) -> message of every problem but the heartbeat's."""
    return {(p.line, p.tag): p.message for p in report.problems if p.tag != HEARTBEAT_TAG}


def test_the_example_map_passes_with_every_member_checked(example, tmp_path):
    report = check_live(aimed(example, tmp_path, EXAMPLE.read_text()), heartbeat_wait_s=0.1)
    assert tag_problems(report) == {}


def test_the_live_check_names_a_members_real_type_and_line(example, tmp_path):
    text = EXAMPLE.read_text()
    assert text.count(CONFIDENCE_REAL) == 1
    text = text.replace(CONFIDENCE_REAL, CONFIDENCE_DINT)
    copy = aimed(example, tmp_path, text)
    report = check_live(copy, heartbeat_wait_s=0.1)
    line = line_of(text, CONFIDENCE_DINT)
    assert tag_problems(report) == {(line, "inbox_confidence_pct"): "PLC member 'RobotCell[1].SlotConfidence' of "
                                    "BENCH_ROBOTCELL is REAL[4], the map says DINT[4]"}
    shown = [str(p) for p in report.problems if p.tag == "inbox_confidence_pct"]
    assert shown == [f"{copy.source}:{line}: tag 'inbox_confidence_pct': PLC member 'RobotCell[1].SlotConfidence' "
                     "of BENCH_ROBOTCELL is REAL[4], the map says DINT[4]"]


def test_program_scoped_and_nested_members_are_checked(tmp_path):
    served = tmp_path / "served.yaml"
    served.write_text(SCOPES)
    with LogixPlcServer(load_tag_map(served)) as server:
        wrong = (SCOPES.replace('"Cell[1].Temp", type: REAL', '"Cell[1].Temp", type: DINT')
                 .replace('Program:Main.Feed.Volts, type: "REAL[4]"', 'Program:Main.Feed.Volts, type: "REAL[6]"')
                 .replace("PackTags.Command.CntrlCmd, type: DINT", "PackTags.Command.CntrlCmd, type: LINT")
                 .replace("PackTags.Status.StateCurrent", "PackTags.Status.StateNow"))
        report = check_live(aimed(server, tmp_path, wrong, "wrong.yaml"), heartbeat_wait_s=0.1)
        right = check_live(aimed(server, tmp_path, SCOPES, "right.yaml"), heartbeat_wait_s=0.1)
    assert tag_problems(right) == {}
    assert tag_problems(report) == {
        (line_of(wrong, "Cell[1].Temp"), "cell_temp_degc"):
            "PLC member 'Cell[1].Temp' of BENCH_CELL is REAL, the map says DINT",
        (line_of(wrong, "Feed.Volts"), "feed_volts_v"):
            "PLC member 'Program:Main.Feed.Volts' of BENCH_FEED has 4 elements, the map needs 6",
        (line_of(wrong, "CntrlCmd"), "cntrl_cmd"):
            "PLC member 'PackTags.Command.CntrlCmd' of BENCH_COMMAND is DINT, the map says LINT",
        (line_of(wrong, "StateNow"), "state_current"):
            "PLC member 'PackTags.Status' is BENCH_STATUS, which has no member 'StateNow'; its members: StateCurrent",
    }


def test_a_read_of_another_type_is_bad_type_and_a_write_is_never_sent(example, tmp_path):
    text = EXAMPLE.read_text().replace(CONFIDENCE_REAL, CONFIDENCE_DINT).replace(ORDER_DINT, ORDER_INT)
    with open_bus(aimed(example, tmp_path, text), Owner.SUPERVISOR) as bus:
        confidence, polarity = bus.read(["inbox_confidence_pct", "inbox_polarity"])
        written = bus.write({"robot_order_no": 9})[0]
    # was GOOD, (90, 96, 93, 96): each REAL cut to an int
    assert (confidence.quality, confidence.value) == (Quality.BAD_TYPE, None)
    assert confidence.detail == ("PLC member 'RobotCell[1].SlotConfidence' of BENCH_ROBOTCELL is REAL[4], "
                                 "the map says DINT[4]")
    assert polarity.quality is Quality.GOOD and len(polarity.value) == 4  # the rest of the read is served
    assert (written.quality, written.detail) == (
        Quality.BAD_TYPE, "PLC member 'RobotCell[1].OrderSeq' of BENCH_ROBOTCELL is DINT, the map says INT")
    assert example.get("robot_order_no") == 7  # never sent (pycomm3 would have sent 9 as the DINT it knows)


def test_the_reply_type_is_checked_even_where_the_tag_list_cannot_tell(example, tmp_path, monkeypatch):
    """With the tag-list check blind (as it was for every member), the read alone still refuses:
    pycomm3 decodes a reply as the controller types it and names that type in its answer."""
    monkeypatch.setattr("edge.bus.logix.type_problem", lambda tag, plc_tags: "")
    text = EXAMPLE.read_text().replace(CONFIDENCE_REAL, CONFIDENCE_DINT)
    with open_bus(aimed(example, tmp_path, text), Owner.SUPERVISOR) as bus:
        assert bus.remote_problems() == []  # blind indeed
        confidence, terminal = bus.read(["inbox_confidence_pct", "inbox_terminal_x_mm"])
    assert (confidence.quality, confidence.value) == (Quality.BAD_TYPE, None)
    assert confidence.detail == ("the PLC answered RobotCell[1].SlotConfidence as REAL[4], the map says DINT[4]: "
                                 "not converted")
    assert terminal.quality is Quality.GOOD and len(terminal.value) == 8  # the rest of the read is served


def test_the_right_type_reads_the_plcs_values(example, tmp_path):
    with open_bus(aimed(example, tmp_path, EXAMPLE.read_text()), Owner.SUPERVISOR) as bus:
        confidence = bus.read(["inbox_confidence_pct"])[0]
    assert confidence.quality is Quality.GOOD
    assert confidence.value == pytest.approx((90.6, 96.1, 93.6, 96.2), abs=1e-5)

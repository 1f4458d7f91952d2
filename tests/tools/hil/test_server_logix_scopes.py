"""The Logix bench serves program-scoped tags and UDT members as a controller holds them: the tag
list pycomm3 uploads (programs, structures with their templates, array dimensions), member and
element paths, nested structures, and clear refusals (tools/hil/server_logix.py `_Symbols`)."""

from __future__ import annotations

import dataclasses

import pytest
from pycomm3 import LogixDriver

from edge import REPO_ROOT
from edge.tagmap import DataType, load_tag_map
from tools.hil.server_logix import LogixPlcServer

pytestmark = pytest.mark.contract

EXAMPLE = REPO_ROOT / "plc_tags" / "examples" / "program_udt_logix.yaml"


@pytest.fixture(scope="module")
def served():
    with LogixPlcServer(load_tag_map(EXAMPLE)) as server:
        yield server


def test_the_tag_list_has_the_programs_tags_and_the_structures(served):
    with LogixDriver(f"127.0.0.1:{served.port}") as plc:
        tags = plc.tags
        assert set(plc.info["programs"]) == {"Discharge", "Recipe"}
    assert tags["Program:Discharge.RunEnable"]["data_type"] == "BOOL" and tags["Program:Discharge.RunEnable"]["dimensions"][0] == 6
    assert tags["Program:Recipe.CurrentSp"]["data_type"] == "REAL"
    robot = tags["RobotCell"]
    assert robot["tag_type"] == "struct" and robot["dimensions"][0] == 2  # [1] addressed: elements 0 and 1
    members = robot["data_type"]["internal_tags"]
    assert members["TerminalX"]["data_type"] == "REAL" and members["TerminalX"]["array"] == 8
    assert members["State"]["data_type"] == "INT"
    packtags = tags["PackTags"]["data_type"]["internal_tags"]
    assert packtags["Command"]["data_type"]["internal_tags"]["CmdChangeRequest"]["data_type"] == "DINT"  # nested
    assert "ReliefFirst" not in tags and "Program:Discharge" not in tags  # program tags only in their scope


def test_members_elements_and_nesting_read_what_the_plant_set(served):
    served.set("fixture_tc_degc", tuple(20.0 + i for i in range(24)))
    served.set("robot_fault", 6)
    served.set("packtags_cmd_change_request", 41)
    served.set("inbox_terminal_x_mm", tuple(float(i) for i in range(8)))
    with LogixDriver(f"127.0.0.1:{served.port}") as plc:
        got = {t.tag: t for t in plc.read("Fixture.MarkerTemp[5]", "Fixture.MarkerTemp[22]{2}", "RobotCell[1].FaultCode",
                                          "RobotCell[0].FaultCode", "PackTags.Command.CmdChangeRequest",
                                          "RobotCell[1].TerminalX[6]{2}", "Fixture.MarkerTemp[24]", "RobotCell[2].State",
                                          "Fixture.NoSuchMember")}
        assert plc.write(("Program:Discharge.IpcWatchdog", 12345)).error is None
    assert got["Fixture.MarkerTemp[5]"].value == 25.0 and got["Fixture.MarkerTemp[22]"].value == [42.0, 43.0]
    assert got["RobotCell[1].FaultCode"].value == 6 and got["RobotCell[0].FaultCode"].value == 0  # element 1, not 0
    assert got["PackTags.Command.CmdChangeRequest"].value == 41
    assert got["RobotCell[1].TerminalX[6]"].value == [6.0, 7.0]
    for beyond in ("Fixture.MarkerTemp[24]", "RobotCell[2].State", "Fixture.NoSuchMember"):
        assert got[beyond].error, beyond  # past the array, past the UDT array, no such member
    assert served.get("ipc_watchdog") == 12345


def test_what_the_bench_cannot_hold_is_refused_naming_the_tag():
    tag_map = load_tag_map(EXAMPLE)
    first = tag_map.tags[0]
    as_dint = dataclasses.replace(first, name="clash", address="Fixture.MarkerTemp", data_type=DataType.DINT, source_line=999)
    with pytest.raises(ValueError, match=r"program_udt_logix.yaml:999: tag 'clash': 'Fixture.MarkerTemp' is DINT; "
                                         r"the same PLC tag is REAL"):
        LogixPlcServer(dataclasses.replace(tag_map, tags=(*tag_map.tags, as_dint)))
    text = dataclasses.replace(first, name="recipe_names", address="Program:Recipe.Names", data_type=DataType.STRING,
                               count=2, source_line=998)
    with pytest.raises(ValueError, match=r":998: tag 'recipe_names': the bench serves one STRING a tag"):
        LogixPlcServer(dataclasses.replace(tag_map, tags=(*tag_map.tags, text)))


def test_io_module_tags_serve_as_structures():
    from edge.bus import Quality, open_bus
    from edge.tagmap import Owner

    tag_map = dataclasses.replace(load_tag_map(EXAMPLE), timeout_s=2.0)  # a loaded machine is no timeout here
    base = tag_map.tag("plc_scan_counter")
    modules = (dataclasses.replace(base, name="ch0_raw", address="Local:3:I.Ch0Data", data_type=DataType.REAL),
               dataclasses.replace(base, name="out_word_2", address="Rack1:1:O.Data[2]", data_type=DataType.DINT))
    with LogixPlcServer(dataclasses.replace(tag_map, tags=(*tag_map.tags, *modules))) as server:
        server.set("ch0_raw", 12.5)
        server.set("out_word_2", -7)
        with open_bus(server.tag_map, Owner.RTCORE) as bus:
            assert bus.remote_problems() == []
            reads = bus.read(["ch0_raw", "out_word_2"])
    assert [(r.quality, r.value) for r in reads] == [(Quality.GOOD, 12.5), (Quality.GOOD, -7)]

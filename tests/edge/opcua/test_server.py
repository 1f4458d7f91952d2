"""OPC UA on a real line (edge/opcua/server.py): the flow's rig (a FlowEngine over an in-memory PLC,
the bench's robot cell, a stand-in core) scanned by the test's thread, a LineHub, and the server on
a free port of 127.0.0.1, read and commanded by asyncua clients over Basic256Sha256: the operator
reads the line and holds/unholds it (carried out by the scan loop's `apply`), acknowledges an
alarm; an anonymous client, a client without security and a wrong token are refused; an operator
may not write a setpoint, an engineer may (through the tag map's limits)."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import ua

from edge.opcua.server import start_opcua
from edge.supervisor.packml import State
from rtcore.spec import Flag
from tests.edge.opcua.conftest import Driven, call_raw, connect, options, session_without_security
from tests.edge.supervisor.conftest import line, models  # noqa: F401 (fixtures)
from tests.edge.supervisor.test_flow import Rig, currents

pytestmark = pytest.mark.integration


@pytest.fixture
def driven(line, models, state_dir):  # noqa: F811
    rig = Rig(line, models, state_dir)
    d = Driven(rig)
    yield d
    rig.engine.close()


@pytest.fixture
def served(driven, access, certs, state_dir):
    server = start_opcua(driven.hub, "127.0.0.1", 0, access=access, state_dir=state_dir, options=options(certs))
    try:
        yield server
    finally:
        server.stop()


def running(d: Driven, batteries: int = 5) -> list[str]:
    rig = d.rig
    cells = rig.inbox("batch.csv", range(1, 1 + batteries))
    assert rig.engine.start()
    for _ in range(400):
        d.scan()
        if ((currents(rig) > 0) & (rig.plant.current_a > 0)).any():
            break
    d.scan()
    return cells


async def until(node, wanted, timeout_s: float = 15.0):
    """The node's value once it equals `wanted` (the server follows the hub's snapshots)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await node.read_value()
        if value == wanted or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


def test_the_operator_reads_the_line_and_holds_and_unholds_it(driven, served, access, certs):
    cells = running(driven)
    snap = driven.hub.latest()
    discharging = [s for s in snap.stations if s.state == "discharging"]
    assert discharging and snap.packml_state == "Execute"

    async def work():
        client = await connect(served.url, certs, user="operator", password=access.token("operator"))
        async with client:
            idx = await client.get_namespace_index("urn:discharge-edge:line:hil-bench")
            node = lambda path: client.get_node(ua.NodeId(path, idx))  # noqa: E731
            seen = {"state": await until(node("Line.PackMLState"), "Execute"),
                    "number": await node("Line.PackMLStateNumber").read_value(),
                    "name": await node("Line.Name").read_value(),
                    "total": await node("Line.Batch.Total").read_value(),
                    "max_current_a": await node("Line.Setpoints.MaxCurrentA").read_value(),
                    "stations": {}}
            children = await node("Line.Stations").get_children()
            seen["station_count"] = len(children)
            for s in discharging:
                p = f"Line.Stations.{s.index:02d}"
                await until(node(f"{p}.Battery.Id"), s.battery)
                # one Read request: the server applies a snapshot between requests, never inside one
                names = ("Seq", "Battery.Id", "Battery.Tier", "Battery.SocPct", "TempDegC", "CurrentA", "State")
                values = await client.read_values([node("Line.Seq")] + [node(f"{p}.{n}") for n in names[1:]])
                seen["stations"][s.index] = dict(zip(names, values, strict=True))
                seen["stations"][s.index]["eu"] = await node(f"{p}.TempDegC.EngineeringUnits").read_value()
            # every station's battery in one request: a station without one has no SOC (BadNoValue)
            dvs = await client.read_attributes([node("Line.Seq")] + [node(f"Line.Stations.{i:02d}.Battery.SocPct")
                                                                     for i in range(len(snap.stations))])
            seen["socs"] = (dvs[0].Value.Value, [(dv.StatusCode.name, dv.Value.Value if dv.Value else None)
                                                 for dv in dvs[1:]])
            line_obj = node("Line")
            seen["hold"] = (await line_obj.call_method(ua.QualifiedName("Hold", idx)))
            seen["held"] = await until(node("Line.PackMLState"), "Held")
            seen["unhold"] = (await line_obj.call_method(ua.QualifiedName("Unhold", idx)))
            seen["resumed"] = await until(node("Line.PackMLState"), "Execute")
            seen["last"] = (await node("Line.LastCommand.Command").read_value(),
                            await node("Line.LastCommand.Ok").read_value(),
                            await node("Line.LastCommand.Role").read_value())
            return seen

    seen = driven.drive(work)
    assert (seen["state"], seen["number"], seen["name"]) == ("Execute", 6, "hil-bench")
    assert seen["total"] == 5 and seen["max_current_a"] == 15.0 and seen["station_count"] == 8
    for s in discharging:
        got = seen["stations"][s.index]
        published = driven.published[got["Seq"]].stations[s.index]  # the snapshot the values came from
        assert got["Battery.Id"] in cells and got["Battery.Id"] == published.battery == s.battery
        assert got["Battery.Tier"] == published.tier and got["State"] == published.state
        assert got["Battery.SocPct"] == published.soc_pct and 0 < got["Battery.SocPct"] <= 100
        assert got["TempDegC"] == published.temp_degc == 30.0 and got["CurrentA"] == published.current_a
        assert got["eu"].DisplayName.Text == "°C" and got["eu"].UnitId == 0x43454C  # UNECE CEL
    seq, socs = seen["socs"]
    published = driven.published[seq].stations
    assert any(p.battery is None for p in published) and any(p.battery for p in published)
    for p, got in zip(published, socs, strict=True):
        assert got == (("BadNoValue", None) if p.soc_pct is None else ("Good", p.soc_pct))
    assert seen["hold"].startswith("PackML Hold: Execute -> ")
    assert seen["held"] == "Held" and seen["resumed"] == "Execute"
    assert seen["unhold"].startswith("PackML Unhold: Held")
    assert seen["last"] == ("unhold", True, "operator")
    assert driven.rig.engine.machine.state is State.EXECUTE
    events = [e for e in driven.rig.engine.store.events() if e.kind == "line_command"]
    assert [e.data["command"]["kind"] for e in events] == ["hold", "unhold"]
    assert all(e.data["role"] == "operator" and e.data["command"]["by"] == "opcua user operator"
               for e in events)


def test_an_alarm_is_a_node_and_the_operator_acknowledges_it(driven, served, access, certs):
    running(driven)
    rig = driven.rig
    s = next(v.index for v in driven.hub.latest().stations if v.state == "discharging")
    rig.core.cause[s] = int(Flag.OVER_TEMP)
    rig.core.hot_degc[s] = 58.5
    driven.scan()
    alarm = next(a for a in driven.hub.latest().alarms if a.key == f"core.station.{s}")

    async def work():
        client = await connect(served.url, certs, user="operator", password=access.token("operator"))
        async with client:
            idx = await client.get_namespace_index("urn:discharge-edge:line:hil-bench")
            node = lambda path: client.get_node(ua.NodeId(path, idx))  # noqa: E731
            p = f"Line.Alarms.{alarm.id}"
            seen = {"key": await until(node(f"{p}.Key"), alarm.key), "state": await node(f"{p}.State").read_value(),
                    "priority": await node(f"{p}.Priority").read_value(),
                    "count": await node("Line.Alarms.ActiveCount").read_value(),
                    "isolated": await until(node(f"Line.Stations.{s:02d}.Isolated"), True),
                    "temp": await node(f"Line.Stations.{s:02d}.TempDegC").read_value()}
            missing = await call_raw(client, node("Line").nodeid, node("Line.Acknowledge").nodeid,
                                     ua.Variant(999999, ua.VariantType.Int64))
            seen["missing"] = (missing.StatusCode.name, missing.OutputArguments[0].Value)
            seen["ack"] = await node(p).call_method(ua.QualifiedName("Acknowledge", idx))
            seen["after"] = await until(node(f"{p}.State"), "acked")
            return seen

    seen = driven.drive(work)
    assert (seen["key"], seen["state"], seen["priority"]) == (alarm.key, "unack", alarm.priority)
    assert seen["count"] >= 1 and seen["isolated"] is True and seen["temp"] == 58.5
    assert seen["missing"] == ("BadInvalidArgument", "refused: no alarm 999999")
    assert seen["ack"].startswith(f"alarm {alarm.id} ({alarm.key}) acknowledged")
    assert seen["after"] == "acked"
    assert rig.engine.alarms.get(alarm.id).acked_at is not None


def test_refused_clients_and_a_refused_command(driven, served, access, certs):
    driven.scan()  # the line's first snapshot: Stopped

    async def work():
        out = {}
        for name, kwargs in {"anonymous": {}, "no_security": {"secure": False, "user": "operator",
                                                              "password": access.token("operator")},
                             "wrong_token": {"user": "operator", "password": access.token("engineer")},
                             "unknown_user": {"user": "admin", "password": access.token("engineer")}}.items():
            try:
                client = await connect(served.url, certs, **kwargs)
            except Exception as exc:  # noqa: BLE001 (the refusal is the result)
                out[name] = type(exc).__name__
            else:
                await client.disconnect()
                out[name] = "connected"
        out["plain_session"] = await session_without_security(served.url, "operator", access.token("operator"))
        client = await connect(served.url, certs, user="operator", password=access.token("operator"),
                               mode=ua.MessageSecurityMode.Sign)
        async with client:
            idx = await client.get_namespace_index("urn:discharge-edge:line:hil-bench")
            node = lambda path: client.get_node(ua.NodeId(path, idx))  # noqa: E731
            out["state"] = await until(node("Line.PackMLState"), "Stopped")
            res = await call_raw(client, node("Line").nodeid, node("Line.Unhold").nodeid)
            out["unhold"] = (res.StatusCode.name, res.OutputArguments[0].Value)
            try:
                await node("Line.Name").write_value(ua.Variant("other", ua.VariantType.String))
            except ua.UaStatusCodeError as exc:
                out["write_name"] = type(exc).__name__
        return out

    out = driven.drive(work)
    assert out["anonymous"] == "BadIdentityTokenRejected"
    assert out["no_security"] == "UaError"  # the asyncua client finds no endpoint without security
    # one that opens a channel without security anyway is refused at activation, with the right token
    assert out["plain_session"] == {"create": "ok", "activate": "BadUserAccessDenied",
                                    "read": "BadSessionNotActivated"}
    assert out["wrong_token"] == "BadUserAccessDenied" and out["unknown_user"] == "BadUserAccessDenied"
    assert out["state"] == "Stopped"
    status, message = out["unhold"]
    assert status == "BadInvalidState"
    assert message.startswith("refused: PackML Unhold in state Stopped; the state takes") and "Reset" in message
    assert out["write_name"] == "BadUserAccessDenied"


def test_only_an_engineer_writes_a_setpoint(driven, served, access, certs):
    driven.scan()

    async def write(role: str, value: float):
        client = await connect(served.url, certs, user=role, password=access.token(role))
        async with client:
            idx = await client.get_namespace_index("urn:discharge-edge:line:hil-bench")
            sp = client.get_node(ua.NodeId("Line.Setpoints.MaxCurrentA", idx))
            await until(sp, 15.0)
            try:
                await sp.write_value(ua.Variant(value, ua.VariantType.Double))
                status = "Good"
            except ua.UaStatusCodeError as exc:
                status = type(exc).__name__
            message = await client.get_node(ua.NodeId("Line.LastCommand.Message", idx)).read_value()
            return status, message, await sp.read_value()

    status, message, value = driven.drive(lambda: write("operator", 10.0))
    assert status == "BadUserAccessDenied" and "needs the role engineer" in message and value == 15.0
    assert driven.rig.engine.line.limits.max_current_a == 15.0
    status, message, value = driven.drive(lambda: write("engineer", 20.0))  # the map's limit is 15 A
    assert status == "BadOutOfRange" and "discharge_current_setpoint_a" in message and value == 15.0
    assert driven.rig.engine.line.limits.max_current_a == 15.0
    status, message, value = driven.drive(lambda: write("engineer", 12.0))
    assert (status, value) == ("Good", 12.0) and message.startswith("max_current_a: 15 -> 12 A")
    assert driven.rig.engine.line.limits.max_current_a == 12.0
    changed = [e for e in driven.rig.engine.store.events() if e.kind == "setpoint_changed"]
    assert len(changed) == 1 and changed[0].data["by"] == "opcua user engineer"

"""OPC UA's options on a hub fed by hand (no line): `anonymous: true` lets an anonymous client over
Basic256Sha256 read but never command; the endpoints offered are Basic256Sha256 Sign and
SignAndEncrypt only, for the user name token; the address space follows the hub (a station and an
alarm appear, the alarm's node goes when it clears); `trusted_clients` admits only the client
certificates in its folder; with no scan loop a command is answered BadTimeout and withdrawn; a
port in use is a ServeError; stop() closes the port."""

from __future__ import annotations

import asyncio
import socket

import pytest
from asyncua import Client, ua

from edge.lineview.model import AlarmView, BatchView, LineHub, LineSnapshot, StationView
from edge.lineview.serve import ServeError
from edge.opcua.server import start_opcua
from tests.edge.opcua.conftest import call_raw, connect, options

pytestmark = pytest.mark.integration


def snapshot(alarms=()) -> LineSnapshot:
    return LineSnapshot(line="line-7", packml_state="Idle", mode="Production", time_s=3.0,
                        stations=(StationView(0, "B-1", 2, 71.5, 29.0, 0.0, "clamping", False),),
                        alarms=tuple(alarms), batch=BatchView(0, 1, 0), packml_state_number=4,
                        allowed_commands=("start", "stop", "abort"), setpoints={"max_current_a": 15.0})


ALARM = AlarmView(41, "plc.write", "plc", "medium", "the PLC refused a write", "write_refused", "unack", 2.0)


async def until(node, wanted, timeout_s: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            value = await node.read_value()
        except ua.UaStatusCodeError as exc:
            value = type(exc).__name__
        if value == wanted or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


def test_anonymous_reads_but_never_commands_and_the_space_follows_the_hub(access, certs, state_dir):
    hub = LineHub()
    hub.publish(snapshot([ALARM]))
    server = start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir,
                         options=options(certs, anonymous=True))
    try:
        async def work():
            out = {}
            # discovery (GetEndpoints) over a channel without security, as SCADA tools do first
            endpoints = await Client(server.url).connect_and_get_server_endpoints()
            out["endpoints"] = sorted((e.SecurityPolicyUri.rsplit("#", 1)[1], e.SecurityMode.name,
                                       tuple(t.TokenType.name for t in e.UserIdentityTokens)) for e in endpoints)
            out["endpoint_urls"] = {e.EndpointUrl for e in endpoints}
            client = await connect(server.url, certs)  # anonymous, SignAndEncrypt
            async with client:
                idx = await client.get_namespace_index("urn:discharge-edge:line:line-7")
                node = lambda path: client.get_node(ua.NodeId(path, idx))  # noqa: E731
                out["state"] = await until(node("Line.PackMLState"), "Idle")
                out["alarm"] = await until(node("Line.Alarms.41.Message"), ALARM.message)
                try:  # the Call service itself is refused to anonymous (a ServiceFault)
                    res = await call_raw(client, node("Line").nodeid, node("Line.Start").nodeid)
                    out["start"] = res.StatusCode.name
                except ua.UaStatusCodeError as exc:
                    out["start"] = type(exc).__name__
                try:
                    await node("Line.Setpoints.MaxCurrentA").write_value(ua.Variant(1.0, ua.VariantType.Double))
                    out["write"] = "Good"
                except ua.UaStatusCodeError as exc:
                    out["write"] = type(exc).__name__
                hub.publish(snapshot([]))  # the alarm clears
                out["gone"] = await until(node("Line.Alarms.41.Message"), "BadNodeIdUnknown")
                out["count"] = await until(node("Line.Alarms.ActiveCount"), 0)
                out["soc"] = await node("Line.Stations.00.Battery.SocPct").read_value()
            return out

        out = asyncio.run(work())
    finally:
        server.stop()
    assert out["endpoints"] == [("Basic256Sha256", "Sign", ("Anonymous", "UserName")),
                                ("Basic256Sha256", "SignAndEncrypt", ("Anonymous", "UserName"))]
    assert out["endpoint_urls"] == {server.url}
    assert (out["state"], out["alarm"]) == ("Idle", ALARM.message)
    assert out["start"] == "BadUserAccessDenied" and out["write"] == "BadUserAccessDenied"
    assert out["gone"] == "BadNodeIdUnknown" and out["count"] == 0 and out["soc"] == 71.5
    assert hub.waiting_commands() == 0  # nothing reached the scan loop's queue


@pytest.mark.slow  # 10 s: two server starts; in make test-slow
def test_a_port_in_use_is_refused_and_stop_closes_the_port(access, certs, state_dir):
    hub = LineHub()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError, match=rf"OPC UA could not listen on 127.0.0.1:{port}"):
            start_opcua(hub, "127.0.0.1", port, access=access, state_dir=state_dir, options=options(certs))
    server = start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir, options=options(certs),
                         line_name="line-9")
    assert server.url == f"opc.tcp://127.0.0.1:{server.port}/" and server.port > 0
    assert hub.subscribers() == 1
    server.stop()
    assert hub.subscribers() == 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0


@pytest.mark.slow  # 11 s: three client handshakes; in make test-slow
def test_trusted_clients_admit_only_their_certificates(access, certs, state_dir, tmp_path):
    import shutil

    from edge.opcua.certs import ensure_certificate

    hub = LineHub()
    hub.publish(snapshot())
    with pytest.raises(ServeError, match="trusted_clients: .*missing-folder is not a folder"):
        start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir,
                    options=options(certs, trusted_clients="missing-folder"))
    (state_dir / "empty").mkdir()
    with pytest.raises(ServeError, match="holds no certificate"):
        start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir,
                    options=options(certs, trusted_clients="empty"))
    ours, other = state_dir / "scada", tmp_path / "other"
    ours.mkdir()
    shutil.copy(certs["client"].cert_path, ours / "scada-client.der")
    other.mkdir()
    shutil.copy(ensure_certificate(tmp_path / "stranger", hostname="stranger").cert_path, other / "stranger.der")
    results = {}
    for name, folder in (("listed", "scada"), ("not_listed", str(other))):
        server = start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir,
                             options=options(certs, trusted_clients=folder))
        try:
            async def work():
                try:
                    client = await connect(server.url, certs, user="operator", password=access.token("operator"))
                except ua.UaStatusCodeError as exc:
                    return type(exc).__name__
                async with client:
                    idx = await client.get_namespace_index("urn:discharge-edge:line:line-7")
                    return await until(client.get_node(ua.NodeId("Line.PackMLState", idx)), "Idle")

            results[name] = asyncio.run(work())
        finally:
            server.stop()
    assert results == {"listed": "Idle", "not_listed": "BadUserAccessDenied"}


def test_a_command_the_scan_loop_does_not_take_is_withdrawn(access, certs, state_dir):
    hub = LineHub()  # nobody carries out commands: the scan loop is stuck or gone
    hub.publish(snapshot())
    server = start_opcua(hub, "127.0.0.1", 0, access=access, state_dir=state_dir, options=options(certs))
    try:
        async def work():
            client = await connect(server.url, certs, user="operator", password=access.token("operator"))
            async with client:
                idx = await client.get_namespace_index("urn:discharge-edge:line:line-7")
                node = lambda path: client.get_node(ua.NodeId(path, idx))  # noqa: E731
                await until(node("Line.PackMLState"), "Idle")
                res = await call_raw(client, node("Line").nodeid, node("Line.Start").nodeid)
                return res.StatusCode.name, res.OutputArguments[0].Value

        status, message = asyncio.run(work())
    finally:
        server.stop()
    assert status == "BadTimeout"
    assert message == "not carried out: the scan loop did not take it within 1.5 s (is the line running?)"
    assert hub.waiting_commands() == 0  # withdrawn: a later scan never carries it out

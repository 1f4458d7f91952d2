"""OPC UA's fixtures: the server's and a SCADA client's certificates (made once a session: an RSA
key takes seconds), the access file of a state dir, asyncua clients with or without security and
a user, and `drive`, which runs a client on another thread while the test's thread scans the flow's
rig (the store's SQLite connections belong to the scan thread)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from edge.lineview.model import LineHub, apply, snapshot_of
from edge.lineview.serve import load_access
from edge.opcua.certs import ensure_certificate
from tests.edge.lineview.driving import drive_while_scanning


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("opcua-certs")
    server_dir = base / "server"
    client = ensure_certificate(base / "client", hostname="scada-client")
    server = ensure_certificate(server_dir)
    return {"server_dir": server_dir, "server": server, "client": client}


@pytest.fixture
def state_dir(tmp_path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture
def access(state_dir):
    return load_access(state_dir)


def options(certs, **extra) -> dict:
    return {"certificate_dir": str(certs["server_dir"])} | extra


async def connect(url: str, certs: dict, *, user: str | None = None, password: str | None = None,
                  secure: bool = True, mode=ua.MessageSecurityMode.SignAndEncrypt) -> Client:
    client = Client(url, timeout=10)
    if secure:
        cc = certs["client"]
        client.application_uri = cc.application_uri
        await client.set_security(SecurityPolicyBasic256Sha256, str(cc.cert_path), str(cc.key_path),
                                  server_certificate=str(certs["server"].cert_path), mode=mode)
    if user is not None:
        client.set_user(user)
    if password is not None:
        client.set_password(password)
    await client.connect()
    return client


async def call_raw(client: Client, object_id: ua.NodeId, method_id: ua.NodeId, *args: ua.Variant):
    """The method's full answer (status and output arguments), which Node.call_method drops on a Bad status."""
    req = ua.CallMethodRequest()
    req.ObjectId, req.MethodId, req.InputArguments = object_id, method_id, list(args)
    (result,) = await client.uaclient.call([req])
    return result


class Driven:
    """A flow rig with a hub: `scan()` is one pass of the supervisor's loop (commands, the scan,
    the snapshot); `drive(work)` runs `work()` (an async client) on a thread while scanning here."""

    def __init__(self, rig):
        self.rig = rig
        self.hub = LineHub()
        self.published: dict = {}  # seq -> the snapshot published

    def scan(self) -> None:
        self.hub.carry_out(lambda c, r: apply(self.rig.engine, c, r))
        self.rig.scan()
        snap = self.hub.publish(snapshot_of(self.rig.engine))
        self.published[snap.seq] = snap

    def drive(self, work, max_scans: int = 4000, scan_wait_s: float = 0.02):
        return drive_while_scanning(self.scan, self.hub, lambda: asyncio.run(work()), max_scans=max_scans,
                                    scan_wait_s=scan_wait_s, name="opcua-client")


async def session_without_security(url: str, user: str, password: str) -> dict:
    """What a client that ignores the endpoints gets: a channel with security None (asyncua's server
    opens it for discovery), a session, then ActivateSession with the user's token in the clear
    and a read. Returns each step's outcome (a status name or "ok")."""
    import os

    client = Client(url, timeout=10)
    out = {}
    await client.connect_socket()
    try:
        await client.send_hello()
        await client.open_secure_channel()
        params = ua.CreateSessionParameters()
        params.ClientDescription = ua.ApplicationDescription(ApplicationUri="urn:test:plain-client")
        params.EndpointUrl, params.SessionName, params.ClientNonce = url, "plain", os.urandom(32)
        params.RequestedSessionTimeout, params.MaxResponseMessageSize = 60000, 0
        await client.uaclient.create_session(params)
        out["create"] = "ok"
        act = ua.ActivateSessionParameters()
        act.LocaleIds = ["en"]
        act.UserIdentityToken = ua.UserNameIdentityToken(PolicyId="username", UserName=user,
                                                         Password=password.encode())
        for step, coro in (("activate", lambda: client.uaclient.activate_session(act)),
                           ("read", lambda: client.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_State))
                            .read_value())):
            try:
                await coro()
                out[step] = "ok"
            except ua.UaStatusCodeError as exc:
                out[step] = type(exc).__name__
        await client.close_secure_channel()
    finally:
        client.disconnect_socket()
    return out

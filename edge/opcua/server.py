"""OPC UA for SCADA (issue 18 items 2 and 4): the line model served by asyncua on a thread of the
supervisor process.

Owns `start_opcua(hub, host, port, access=, state_dir=, options=) -> OpcuaServer` (listening when
it returns; `.url`, `.port`, `.stop()` = `.close()`), `parse_options` (`OpcuaOptions`) and the
address space. The server's asyncio loop runs in its own thread ("opcua"); it only reads the hub
(`subscribe()`, bounded, newest wins) and queues commands on it (`hub.submit`, run on a small
thread pool so the loop never blocks): the scan loop stays the one thread that drives the PLC.

Address space (namespace `urn:discharge-edge:line:LINE`, string node ids `Line...`), built at the
first snapshot that names the line:

    Objects/Line                Name, PackMLState, PackMLStateNumber, UnitMode, AllowedCommands, TimeS [s], Seq
      methods                   Start, Stop, Hold, Unhold, Reset, Clear, Abort () -> Message
                                Acknowledge(AlarmId: Int64) -> Message
      LastCommand               Command, Ok, Message, Role, By (the last command given over OPC UA)
      Setpoints                 MaxCurrentA [A], MaxCoolantLpm [L/min]: writable, engineer only
      Batch                     Recorded, Total, Waiting, ReportPath
      Stations/Station_NN       Index, State, Isolated, Cause[], Channel, TempDegC [°C], CurrentA [A],
                                CurrentSetpointA [A], SinceS [s], Battery/{Id, Tier, SocPct [%]}
      Alarms                    ActiveCount; Alarm_<id>/{Id, Key, Source, Priority, Message, Cause, State,
                                RaisedS [s], Station, Battery, Value, Unit} + method Acknowledge () -> Message

Measured values carry their unit twice: in the browse name (the house style) and as an OPC UA
`EngineeringUnits` property (EUInformation, UNECE codes). A value the model has as None (unknown,
or nothing: an empty station's battery) is a null value with status BadNoValue. Alarm objects
come and go with the active alarms (at most `max_alarms`, the oldest first; `ActiveCount` counts
all). One Read request sees one snapshot (a snapshot is applied between requests).

Commands: each method and each setpoint write becomes `hub.submit(LineCommand, role)`; the hub's
role check and the scan loop's `apply` decide (the PackML machine, the alarm book, the setpoint
through the tag map's own write check: there is no other write path). Refused: a Bad status
(BadUserAccessDenied: the role may not; BadInvalidState: PackML refused; BadInvalidArgument: no
such alarm; BadOutOfRange: a setpoint the map refuses; BadTimeout: the scan loop did not take it
within `COMMAND_TIMEOUT_S`, 1.5 s, and it was withdrawn, never carried out later)
with the reason as the method's output argument `Message` and in `LastCommand/Message`.

Security: endpoints Basic256Sha256 with Sign and with SignAndEncrypt only; the server's certificate
and key from `ensure_certificate(options.certificate_dir or <state dir>/opcua)` (made at the first
start when the install did not make them: `discharge-edge opcua cert --dir DIR`). Users: user name
= the role (`operator`, `engineer`), password = that role's token in the access file
(edge/lineview/serve.py); a wrong pair, and any session over a channel without security, is
refused at activation (BadUserAccessDenied). Anonymous is off; the line file's
`serve: opcua: {anonymous: true}` lets an anonymous client over a secured channel read and browse
(never call or write). Any client application certificate may open the secured channel unless
`trusted_clients` names a folder of them: then a session from any other certificate is refused
at activation, whatever its token; the user token decides what a client may do.

Options (`serve: opcua:` keys besides host and port): `anonymous` (bool, false),
`certificate_dir` (folder; relative: under the state dir; default `opcua`), `max_alarms`
(1..10000, 256), `trusted_clients` (folder of client certificates, .der/.pem/.crt; relative: under
the state dir; default none: any). Tests: tests/edge/opcua/.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole
from asyncua.server.user_managers import UserManager

from edge.lineview.model import (PACKML_COMMANDS, SETPOINTS, CommandResult, LineCommand, LineHub, LineSnapshot,
                                 Role, check_role)
from edge.lineview.serve import Access, Endpoint, ServeError
from edge.opcua.certs import CertificateError, ensure_certificate

log = logging.getLogger(__name__)

OPTION_KEYS = ("anonymous", "certificate_dir", "max_alarms", "trusted_clients")
DEFAULT_CERT_DIR = "opcua"
DEFAULT_MAX_ALARMS = 256
START_TIMEOUT_S = 30.0  # the first start makes an RSA key (about 2 s on the bench IPC)
SUBMIT_WORKERS = 4  # commands waiting for the scan loop at once (each waits at most 2 x COMMAND_TIMEOUT_S)
COMMAND_TIMEOUT_S = 1.5  # the scan loop takes a command within this or it is withdrawn (BadTimeout): the
#                          answer comes within 3 s, before a client's own request timeout (asyncua's: 4 s)
UNITS_URI = "http://www.opcfoundation.org/UA/units/un/cefact"
#: unit -> (UNECE common code, display name, description)
UNITS = {"A": ("AMP", "A", "ampere"), "degC": ("CEL", "°C", "degree Celsius"), "%": ("P1", "%", "percent"),
         "s": ("SEC", "s", "second"), "L/min": ("L2", "L/min", "litre per minute")}
PACKML_METHODS = {k: k.capitalize() for k in PACKML_COMMANDS}  # start -> Start ...

# the user of the request being served: set by the permission check, which asyncua runs in the
# connection's task just before the service (a method call runs in that same task)
_caller: contextvars.ContextVar[User | None] = contextvars.ContextVar("opcua_caller", default=None)
_READ_ONLY_TYPES = frozenset(ua.NodeId(t) for t in USER_TYPES) - {
    ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary),
    ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary),
    ua.NodeId(ua.ObjectIds.HistoryReadRequest_Encoding_DefaultBinary)}
_USER_TYPES = frozenset(ua.NodeId(t) for t in USER_TYPES)


# -- options ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpcuaOptions:
    anonymous: bool = False
    certificate_dir: Path | None = None  # None: <state dir>/opcua
    max_alarms: int = DEFAULT_MAX_ALARMS
    trusted_clients: Path | None = None  # None: any client application certificate opens a secured channel


def parse_options(options: Mapping[str, Any] | None, source: str = "line file") -> OpcuaOptions:
    """The `serve: opcua:` keys for this package; ServeError lists every problem with the key."""
    options = dict(options or {})
    problems = [f"{source}: serve.opcua.{k}: unknown key; allowed: host, port, {', '.join(OPTION_KEYS)}"
                for k in options if k not in OPTION_KEYS]
    anonymous = options.get("anonymous", False)
    if not isinstance(anonymous, bool):
        problems.append(f"{source}: serve.opcua.anonymous: is {anonymous!r}; allowed: true or false")
    cert_dir = options.get("certificate_dir")
    if cert_dir is not None and (not isinstance(cert_dir, str) or not cert_dir.strip()):
        problems.append(f"{source}: serve.opcua.certificate_dir: is {cert_dir!r}; allowed: a folder "
                        "(relative: under the state dir)")
    max_alarms = options.get("max_alarms", DEFAULT_MAX_ALARMS)
    if isinstance(max_alarms, bool) or not isinstance(max_alarms, int) or not 1 <= max_alarms <= 10000:
        problems.append(f"{source}: serve.opcua.max_alarms: is {max_alarms!r}; allowed: an integer 1..10000")
    trusted = options.get("trusted_clients")
    if trusted is not None and (not isinstance(trusted, str) or not trusted.strip()):
        problems.append(f"{source}: serve.opcua.trusted_clients: is {trusted!r}; allowed: a folder of client "
                        "certificates (.der, .pem; relative: under the state dir)")
    if problems:
        raise ServeError("\n".join(problems))
    return OpcuaOptions(anonymous=anonymous, certificate_dir=Path(cert_dir) if cert_dir else None,
                        max_alarms=max_alarms, trusted_clients=Path(trusted) if trusted else None)


def load_trusted_clients(folder: Path) -> dict[bytes, str]:
    """The client application certificates in `folder` (*.der, *.pem): DER bytes -> file name.
    ServeError when the folder is missing, holds none, or a file is no certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if not folder.is_dir():
        raise ServeError(f"serve.opcua.trusted_clients: {folder} is not a folder; it holds the client "
                         "certificates (.der, .pem) that may connect")
    trusted: dict[bytes, str] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".der", ".pem", ".crt"):
            continue
        try:
            data = path.read_bytes()
            cert = (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
                    else x509.load_der_x509_certificate(data))
        except (OSError, ValueError) as exc:
            raise ServeError(f"serve.opcua.trusted_clients: {path}: not a certificate: {exc}") from None
        trusted[cert.public_bytes(Encoding.DER)] = path.name
    if not trusted:
        raise ServeError(f"serve.opcua.trusted_clients: {folder} holds no certificate (.der, .pem, .crt); no "
                         "client could connect")
    return trusted


# -- who may do what -------------------------------------------------------------------------------
class _Users(UserManager):
    """user name = role, password = the role's token; nothing over a channel without security."""

    def __init__(self, access: Access, anonymous: bool, trusted: dict[bytes, str] | None = None):
        self.access, self.anonymous, self.trusted = access, anonymous, trusted

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if not certificate:  # the channel's peer certificate: none (b"" on asyncua's None channel) is no security
            log.warning("OPC UA: session refused: the channel has no security (Basic256Sha256 is required)")
            return None
        if self.trusted is not None and bytes(certificate) not in self.trusted:
            log.warning("OPC UA: session refused: the client's application certificate is not in trusted_clients")
            return None
        if username is None and password is None:
            if self.anonymous:
                return User(role=UserRole.Anonymous, name="anonymous")
            log.warning("OPC UA: anonymous session refused (serve: opcua: anonymous is off)")
            return None
        if isinstance(password, bytes):
            try:
                password = password.decode()
            except UnicodeDecodeError:
                password = None
        role = self.access.role_of(password) if isinstance(password, str) else None
        if role is None or username != role.value:
            log.warning("OPC UA: session refused for user %r: not a role with its token from %s", username,
                        self.access.path)
            return None
        return User(role=UserRole.User, name=role.value)


class _Rules(PermissionRuleset):
    """A role's user may use every user service; anonymous (when allowed) only reads and browses.
    Records the request's user for the method callbacks (`_caller`)."""

    def __init__(self, anonymous: bool):
        self.anonymous = anonymous

    def check_validity(self, user, action_type_id, body):
        _caller.set(user)
        if user is not None and user.role is UserRole.User:
            return action_type_id in _USER_TYPES
        if user is not None and user.role is UserRole.Anonymous and self.anonymous:
            return action_type_id in _READ_ONLY_TYPES
        return False


def _role_of(user: User | None) -> Role | None:
    if user is None or user.role is not UserRole.User:
        return None
    try:
        return Role(user.name)
    except ValueError:
        return None


def _status_of(result: CommandResult, command: LineCommand, role: Role | None) -> int:
    if result.ok:
        return ua.StatusCodes.Good
    if role is None or check_role(command, role) is not None:
        return ua.StatusCodes.BadUserAccessDenied
    if result.message.startswith(("not carried out", "taken by the scan loop")):
        return ua.StatusCodes.BadTimeout
    if command.kind == "acknowledge":
        return ua.StatusCodes.BadInvalidArgument
    if command.kind == "setpoint":
        return ua.StatusCodes.BadOutOfRange
    return ua.StatusCodes.BadInvalidState


# -- values ------------------------------------------------------------------------------------------
def _eu(unit: str) -> ua.EUInformation:
    code, display, description = UNITS[unit]
    unit_id = 0
    for c in code:
        unit_id = (unit_id << 8) | ord(c)
    return ua.EUInformation(NamespaceUri=UNITS_URI, UnitId=unit_id, DisplayName=ua.LocalizedText(display),
                            Description=ua.LocalizedText(description))


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


@dataclass(frozen=True)
class _Var:
    name: str  # browse name
    vtype: ua.VariantType
    unit: str | None = None
    array: bool = False


STATION_VARS = {"index": _Var("Index", ua.VariantType.Int32), "state": _Var("State", ua.VariantType.String),
                "isolated": _Var("Isolated", ua.VariantType.Boolean),
                "cause": _Var("Cause", ua.VariantType.String, array=True),
                "channel": _Var("Channel", ua.VariantType.String),
                "temp_degc": _Var("TempDegC", ua.VariantType.Double, "degC"),
                "current_a": _Var("CurrentA", ua.VariantType.Double, "A"),
                "current_setpoint_a": _Var("CurrentSetpointA", ua.VariantType.Double, "A"),
                "since_s": _Var("SinceS", ua.VariantType.Double, "s")}
BATTERY_VARS = {"battery": _Var("Id", ua.VariantType.String), "tier": _Var("Tier", ua.VariantType.Int32),
                "soc_pct": _Var("SocPct", ua.VariantType.Double, "%")}
ALARM_VARS = {"id": _Var("Id", ua.VariantType.Int64), "key": _Var("Key", ua.VariantType.String),
              "source": _Var("Source", ua.VariantType.String), "priority": _Var("Priority", ua.VariantType.String),
              "message": _Var("Message", ua.VariantType.String), "cause": _Var("Cause", ua.VariantType.String),
              "state": _Var("State", ua.VariantType.String), "raised_s": _Var("RaisedS", ua.VariantType.Double, "s"),
              "station": _Var("Station", ua.VariantType.Int32), "battery": _Var("Battery", ua.VariantType.String),
              "value": _Var("Value", ua.VariantType.Double), "unit": _Var("Unit", ua.VariantType.String)}
LINE_VARS = {"line": _Var("Name", ua.VariantType.String), "packml_state": _Var("PackMLState", ua.VariantType.String),
             "packml_state_number": _Var("PackMLStateNumber", ua.VariantType.Int32),
             "mode": _Var("UnitMode", ua.VariantType.String),
             "allowed_commands": _Var("AllowedCommands", ua.VariantType.String, array=True),
             "time_s": _Var("TimeS", ua.VariantType.Double, "s"), "seq": _Var("Seq", ua.VariantType.Int64)}
BATCH_VARS = {"recorded": _Var("Recorded", ua.VariantType.Int32), "total": _Var("Total", ua.VariantType.Int32),
              "waiting": _Var("Waiting", ua.VariantType.Int32),
              "report_path": _Var("ReportPath", ua.VariantType.String)}
LAST_VARS = {"command": _Var("Command", ua.VariantType.String), "ok": _Var("Ok", ua.VariantType.Boolean),
             "message": _Var("Message", ua.VariantType.String), "role": _Var("Role", ua.VariantType.String),
             "by": _Var("By", ua.VariantType.String)}


def _variant(value: Any, var: _Var) -> ua.Variant:
    if value is None:
        return ua.Variant(None, ua.VariantType.Null)
    if var.array:
        return ua.Variant([str(v) for v in value], var.vtype, is_array=True)
    if var.vtype is ua.VariantType.Double:
        value = float(value)
    elif var.vtype in (ua.VariantType.Int32, ua.VariantType.Int64):
        value = int(value)
    elif var.vtype is ua.VariantType.Boolean:
        value = bool(value)
    elif var.vtype is ua.VariantType.String:
        value = str(value)
    return ua.Variant(value, var.vtype)


def _datavalue(value: Any, var: _Var) -> ua.DataValue:
    """A value now; None (unknown, or nothing: an empty station's battery) is a null value with
    status BadNoValue (asyncua keeps a variable's type, so a null is written only with a Bad status)."""
    now = dt.datetime.now(dt.timezone.utc)
    if value is None:
        return ua.DataValue(ua.Variant(None, ua.VariantType.Null), StatusCode_=ua.StatusCode(ua.StatusCodes.BadNoValue),
                            SourceTimestamp=now, ServerTimestamp=now)
    return ua.DataValue(_variant(value, var), SourceTimestamp=now, ServerTimestamp=now)


# -- the address space -------------------------------------------------------------------------------
class _Space:
    """The nodes of the line and their last values (written only when they change). Runs in the
    server's loop."""

    def __init__(self, server: Server, hub: LineHub, options: OpcuaOptions, pool: concurrent.futures.Executor):
        self.server, self.hub, self.options, self.pool = server, hub, options, pool
        self.idx: int | None = None
        self.line: str | None = None
        self.values: dict[ua.NodeId, Any] = {}
        self.stations: dict[int, str] = {}  # station -> its node id prefix
        self.alarms: dict[int, Any] = {}  # alarm id -> its object Node
        self.setpoints: dict[ua.NodeId, str] = {}  # node -> SETPOINTS key
        self.line_node = None
        self.stations_node = None
        self.alarms_node = None

    def nid(self, path: str) -> ua.NodeId:
        return ua.NodeId(path, self.idx)

    async def _var(self, parent, path: str, var: _Var, value: Any = None, writable: bool = False):
        nodeid = self.nid(path)
        datatype = ua.NodeId(var.vtype.value)
        node = await parent.add_variable(nodeid, ua.QualifiedName(var.name, self.idx), _variant(value, var),
                                         datatype=datatype)
        if var.array:
            await node.write_value_rank(1)
        if var.unit is not None:
            await node.add_property(self.nid(path + ".EngineeringUnits"), ua.QualifiedName("EngineeringUnits", 0),
                                    ua.Variant(_eu(var.unit), ua.VariantType.ExtensionObject),
                                    datatype=ua.NodeId(ua.ObjectIds.EUInformation))
        if writable:
            await node.set_writable(True)
        if value is None:
            await self.server.write_attribute_value(nodeid, _datavalue(None, var))
        self.values[nodeid] = value
        return node

    async def _object(self, parent, path: str, name: str):
        return await parent.add_object(self.nid(path), ua.QualifiedName(name, self.idx))

    async def _folder(self, parent, path: str, name: str):
        return await parent.add_folder(self.nid(path), ua.QualifiedName(name, self.idx))

    async def build(self, line: str) -> None:
        self.line = line
        self.idx = await self.server.register_namespace(f"urn:discharge-edge:line:{line}")
        objects = self.server.nodes.objects
        self.line_node = line_node = await self._object(objects, "Line", "Line")
        for key, var in LINE_VARS.items():
            await self._var(line_node, f"Line.{var.name}", var)
        for kind, name in PACKML_METHODS.items():
            await line_node.add_method(self.nid(f"Line.{name}"), ua.QualifiedName(name, self.idx),
                                       self._packml_method(kind), [], [_arg("Message", "what was done or why not")])
        await line_node.add_method(self.nid("Line.Acknowledge"), ua.QualifiedName("Acknowledge", self.idx),
                                   self._ack_method(None), [_arg("AlarmId", "the alarm's id (Alarms/Alarm_<id>/Id)",
                                                                 ua.VariantType.Int64)],
                                   [_arg("Message", "what was done or why not")])
        last = await self._object(line_node, "Line.LastCommand", "LastCommand")
        for var in LAST_VARS.values():
            await self._var(last, f"Line.LastCommand.{var.name}", var)
        sp = await self._object(line_node, "Line.Setpoints", "Setpoints")
        for key, (_tag, unit) in SETPOINTS.items():
            var = _Var(_camel(key), ua.VariantType.Double, unit if unit in UNITS else None)
            node = await self._var(sp, f"Line.Setpoints.{var.name}", var, writable=True)
            self.setpoints[node.nodeid] = key
        batch = await self._object(line_node, "Line.Batch", "Batch")
        for var in BATCH_VARS.values():
            await self._var(batch, f"Line.Batch.{var.name}", var)
        self.stations_node = await self._folder(line_node, "Line.Stations", "Stations")
        self.alarms_node = await self._folder(line_node, "Line.Alarms", "Alarms")
        await self._var(self.alarms_node, "Line.Alarms.ActiveCount", _Var("ActiveCount", ua.VariantType.Int32), 0)
        log.info("OPC UA: line %s in namespace %d (urn:discharge-edge:line:%s)", line, self.idx, line)

    async def _station(self, index: int) -> str:
        prefix = self.stations.get(index)
        if prefix is not None:
            return prefix
        prefix = f"Line.Stations.{index:02d}"
        st = await self._object(self.stations_node, prefix, f"Station_{index:02d}")
        for var in STATION_VARS.values():
            await self._var(st, f"{prefix}.{var.name}", var)
        battery = await self._object(st, f"{prefix}.Battery", "Battery")
        for var in BATTERY_VARS.values():
            await self._var(battery, f"{prefix}.Battery.{var.name}", var)
        self.stations[index] = prefix
        return prefix

    async def _alarm(self, alarm_id: int) -> str:
        prefix = f"Line.Alarms.{alarm_id}"
        if alarm_id in self.alarms:
            return prefix
        obj = await self._object(self.alarms_node, prefix, f"Alarm_{alarm_id}")
        for var in ALARM_VARS.values():
            await self._var(obj, f"{prefix}.{var.name}", var)
        await obj.add_method(self.nid(f"{prefix}.Acknowledge"), ua.QualifiedName("Acknowledge", self.idx),
                             self._ack_method(alarm_id), [], [_arg("Message", "what was done or why not")])
        self.alarms[alarm_id] = obj
        return prefix

    async def set(self, path: str, value: Any, var: _Var) -> None:
        nodeid = self.nid(path)
        if nodeid in self.values and self.values[nodeid] == value:
            return
        await self.server.write_attribute_value(nodeid, _datavalue(value, var))
        self.values[nodeid] = value

    async def update(self, snap: LineSnapshot) -> None:
        if self.idx is None:
            if not snap.line:
                return
            await self.build(snap.line)
        d = snap.to_dict()
        for key, var in LINE_VARS.items():
            value = d.get(key)
            await self.set(f"Line.{var.name}", tuple(value) if isinstance(value, list) else value, var)
        for key, var in BATCH_VARS.items():
            await self.set(f"Line.Batch.{var.name}", d["batch"].get(key), var)
        for key in SETPOINTS:
            await self.set(f"Line.Setpoints.{_camel(key)}", d["setpoints"].get(key),
                           _Var(_camel(key), ua.VariantType.Double))
        for st in d["stations"]:
            prefix = await self._station(int(st["index"]))
            for key, var in STATION_VARS.items():
                value = st.get(key)
                await self.set(f"{prefix}.{var.name}", tuple(value) if isinstance(value, list) else value, var)
            for key, var in BATTERY_VARS.items():
                await self.set(f"{prefix}.Battery.{var.name}", st.get(key), var)
        alarms = sorted(d["alarms"], key=lambda a: (a["raised_s"] or 0.0, a["id"]))[: self.options.max_alarms]
        await self.set("Line.Alarms.ActiveCount", len(d["alarms"]), _Var("ActiveCount", ua.VariantType.Int32))
        keep = set()
        for a in alarms:
            prefix = await self._alarm(int(a["id"]))
            keep.add(a["id"])
            for key, var in ALARM_VARS.items():
                await self.set(f"{prefix}.{var.name}", a.get(key), var)
        for alarm_id in [i for i in self.alarms if i not in keep]:
            obj = self.alarms.pop(alarm_id)
            await self.server.delete_nodes([obj], recursive=True)
            prefix = f"Line.Alarms.{alarm_id}"
            for nodeid in [n for n in self.values if isinstance(n.Identifier, str)
                           and n.Identifier.startswith(prefix + ".")]:
                del self.values[nodeid]

    # -- commands
    async def submit(self, command: LineCommand, role: Role | None) -> tuple[int, CommandResult]:
        if role is None:
            result = CommandResult(False, command.describe(), "refused: this session has no role (an operator's or "
                                   "engineer's user name and token is needed)")
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self.pool, self.hub.submit, command, role, COMMAND_TIMEOUT_S)
        status = _status_of(result, command, role)
        if self.idx is not None:
            for key, value in (("command", result.command), ("ok", result.ok), ("message", result.message),
                               ("role", role.value if role else None), ("by", command.by)):
                await self.set(f"Line.LastCommand.{LAST_VARS[key].name}", value, LAST_VARS[key])
        return status, result

    def _caller(self) -> tuple[Role | None, str]:
        user = _caller.get()
        role = _role_of(user)
        return role, f"opcua user {getattr(user, 'name', None) or 'anonymous'}"

    def _packml_method(self, kind: str):
        async def call(parent, *args):
            role, by = self._caller()
            status, result = await self.submit(LineCommand.packml(kind, by=by), role)
            return _method_result(status, result.message)
        return call

    def _ack_method(self, alarm_id: int | None):
        async def call(parent, *args):
            role, by = self._caller()
            ident = alarm_id
            if ident is None:
                value = args[0].Value if args and isinstance(args[0], ua.Variant) else (args[0] if args else None)
                if isinstance(value, bool) or not isinstance(value, int):
                    return _method_result(ua.StatusCodes.BadInvalidArgument,
                                          f"refused: AlarmId is {value!r}; allowed: an alarm's id (Int64)")
                ident = value
            status, result = await self.submit(LineCommand.acknowledge(ident, by=by), role)
            return _method_result(status, result.message)
        return call

    async def write_setpoint(self, nodeid: ua.NodeId, value: ua.DataValue, user: User) -> ua.StatusCode:
        name = self.setpoints[nodeid]
        raw = value.Value.Value if value is not None and value.Value is not None else None
        role = _role_of(user)
        by = f"opcua user {getattr(user, 'name', None) or 'anonymous'}"
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        command = LineCommand.setpoint(name, float(raw), by=by)
        status, result = await self.submit(command, role)
        if result.ok:
            await self.set(f"Line.Setpoints.{_camel(name)}", float(raw), _Var(_camel(name), ua.VariantType.Double))
        return ua.StatusCode(status)


def _arg(name: str, description: str, vtype: ua.VariantType = ua.VariantType.String) -> ua.Argument:
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = ua.NodeId(vtype.value)
    arg.ValueRank = -1
    arg.Description = ua.LocalizedText(description)
    return arg


def _method_result(status: int, message: str) -> ua.CallMethodResult:
    res = ua.CallMethodResult()
    res.StatusCode = ua.StatusCode(status)
    res.OutputArguments = [ua.Variant(message, ua.VariantType.String)]
    return res


def _guard_writes(server: Server, space: _Space) -> None:
    """Client writes to a setpoint go to the hub as the engineer's command (the role decides);
    every other client write keeps asyncua's check (the node's access level: read only)."""
    service = server.iserver.attribute_service
    original = service.write

    async def write(params: ua.WriteParameters, user: User = User(role=UserRole.Admin)):
        if user.role is UserRole.Admin:  # the server itself (its internal session)
            return await original(params, user=user)
        results = []
        for wv in params.NodesToWrite:
            if wv.NodeId in space.setpoints and wv.AttributeId == ua.AttributeIds.Value:
                results.append(await space.write_setpoint(wv.NodeId, wv.Value, user))
            elif wv.NodeId in space.setpoints:
                results.append(ua.StatusCode(ua.StatusCodes.BadUserAccessDenied))
            else:
                results.extend(await original(ua.WriteParameters(NodesToWrite=[wv]), user=user))
        return results

    service.write = write


# -- the server thread -----------------------------------------------------------------------------
class OpcuaServer:
    def __init__(self, hub: LineHub, endpoint: Endpoint, access: Access, cert_dir: Path, options: OpcuaOptions,
                 line_name: str | None = None):
        self.hub, self.endpoint, self.access, self.cert_dir = hub, endpoint, access, cert_dir
        self.options, self.line_name = options, line_name
        self.trusted = load_trusted_clients(options.trusted_clients) if options.trusted_clients else None
        self.port = endpoint.port
        self.certificate = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="opcua", daemon=True)
        self._pool = concurrent.futures.ThreadPoolExecutor(SUBMIT_WORKERS, thread_name_prefix="opcua-submit")
        self.updates = 0  # snapshots applied to the address space
        self.space: _Space | None = None

    @property
    def url(self) -> str:
        return Endpoint(self.endpoint.host, self.port).url("opc.tcp")

    def start(self, timeout_s: float = START_TIMEOUT_S) -> OpcuaServer:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise ServeError(f"OPC UA did not start within {timeout_s:g} s")
        if self._error is not None:
            self._thread.join(5.0)
            self._pool.shutdown(wait=False)
            err = self._error
            if isinstance(err, (ServeError, CertificateError)):
                raise err
            raise ServeError(f"OPC UA could not listen on {self.endpoint.host}:{self.endpoint.port}: "
                             f"{type(err).__name__}: {err}") from err
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 (reported to start() or logged)
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("OPC UA server thread ended")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        cert = ensure_certificate(self.cert_dir)
        self.certificate = cert
        if cert.days_left < 30:
            log.warning("OPC UA: the server certificate %s expires in %.0f days (renew: discharge-edge opcua cert "
                        "--dir %s --renew)", cert.cert_path, cert.days_left, self.cert_dir)
        users = _Users(self.access, self.options.anonymous, self.trusted)
        server = Server(user_manager=users)
        await server.init()
        server.set_endpoint(Endpoint(self.endpoint.host, self.endpoint.port).url("opc.tcp"))
        server.set_server_name("discharge-edge OPC UA server")
        server.product_uri = "urn:discharge-edge"
        server.manufacturer_name = "discharge-edge"
        await server.set_application_uri(cert.application_uri)
        await server.load_certificate(str(cert.cert_path))
        await server.load_private_key(str(cert.key_path))
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                                    ua.SecurityPolicyType.Basic256Sha256_Sign],
                                   permission_ruleset=_Rules(self.options.anonymous))
        tokens = [ua.UserNameIdentityToken] + ([ua.AnonymousIdentityToken] if self.options.anonymous else [])
        server.set_identity_tokens(tokens)
        space = self.space = _Space(server, self.hub, self.options, self._pool)
        _guard_writes(server, space)
        sub = self.hub.subscribe(maxlen=2)
        try:
            await server.start()
            try:
                self.port = int(server.bserver.port)
                self._fix_endpoint_urls(server)
                first = self.hub.latest()
                if first.line or self.line_name:
                    if self.line_name and not first.line:
                        await space.build(self.line_name)
                    else:
                        await space.update(first)
                self._ready.set()
                await self._follow(sub, space)
            finally:
                await server.stop()
        finally:
            sub.close()

    def _fix_endpoint_urls(self, server: Server) -> None:
        """Port 0 asked for a free port: the endpoints name the port taken."""
        url = self.url
        server.set_endpoint(url)
        for edp in server.iserver.endpoints:
            edp.EndpointUrl = url
            edp.Server.DiscoveryUrls = [url]

    async def _follow(self, sub, space: _Space) -> None:
        while not self._stop.is_set():
            snap = await sub.aget(0.25)
            if snap is None:
                continue
            while sub.pending():  # newest wins: a slow update never queues stale snapshots
                snap = sub.get(0) or snap
            try:
                await space.update(snap)
                self.updates += 1
            except Exception:  # a bad snapshot must not end the server
                log.exception("OPC UA: updating the address space from snapshot %s", snap.seq)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop closed already
                pass
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    close = stop

    def __enter__(self) -> OpcuaServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_opcua(hub: LineHub, host: str, port: int, *, access: Access, state_dir: Path | str | None = None,
                options: Mapping[str, Any] | None = None, line_name: str | None = None,
                start_timeout_s: float = START_TIMEOUT_S) -> OpcuaServer:
    """Serve the line of `hub` over OPC UA on host:port (0: a free port; `.port` and `.url` say
    which); returns when it listens. ServeError: the options, the certificate directory, a port in use."""
    if logging.getLogger("asyncua").level == logging.NOTSET:
        logging.getLogger("asyncua").setLevel(logging.WARNING)  # asyncua logs every request at INFO
    opts = parse_options(options)
    base = Path(state_dir) if state_dir is not None else Path.cwd()
    cert_dir = opts.certificate_dir or Path(DEFAULT_CERT_DIR)
    if not cert_dir.is_absolute():
        cert_dir = base / cert_dir
    if opts.trusted_clients is not None and not opts.trusted_clients.is_absolute():
        opts = dataclasses.replace(opts, trusted_clients=base / opts.trusted_clients)
    return OpcuaServer(hub, Endpoint(host, int(port)), access, cert_dir, opts, line_name=line_name).start(
        start_timeout_s)

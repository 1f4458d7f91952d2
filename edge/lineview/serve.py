"""The line file's `serve:` section and who may command: what `discharge-edge run` serves, where, and
the role behind a token.

Owns `ServeConfig` (`http`: the operator page, `opcua`: OPC UA, each an `Endpoint` or None;
`access_file`; the raw `opcua_options` and `sparkplug` mappings for edge/opcua and edge/sparkplug),
`serve_config(line, http_port=, opcua_port=)`, `parse_serve`, `ServeError`, and `Access` (tokens to
roles). Tests: tests/edge/lineview/test_serve.py.

The section (LineConfig.serve, a raw mapping; absent or empty: nothing is served unless an option asks):

    serve:
      http: {host: 127.0.0.1, port: 8080}     # the operator page (edge/hmi); `http: true` = these defaults
      opcua: {host: 127.0.0.1, port: 4840}    # OPC UA (edge/opcua); its other keys go to it as they are
      sparkplug: {...}                        # Sparkplug B (edge/sparkplug), as it is
      access: access.json                     # the tokens file; relative: under the state dir (the default)

`serve.http` takes what it does not say from the line file's `operator_page: {host, port}` (whose
defaults are 127.0.0.1 and 8080). The host is 127.0.0.1 unless the line file names another address; `--http-port` and `--opcua-port`
change only the port (0: a free port, printed when served); `--sparkplug-broker URL` sets
`serve.sparkplug.broker` (edge/sparkplug/publisher.py `sparkplug_options` checks that mapping).

Access: `<state dir>/access.json`, `{"operator": TOKEN, "engineer": TOKEN}`, made at the first serve
with random tokens (mode 0600, the supervisor's user); refused when group or others may read it.
A client sends its token (`Authorization: Bearer TOKEN` on the page; OPC UA: user name = the role,
password = the token); a token the file does not hold is refused. Reading the line needs no token;
every command does. Rotate a token by editing the file (read at each serve start).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.lineview.model import Role

DEFAULT_HTTP_PORT = 8080
DEFAULT_OPCUA_PORT = 4840
DEFAULT_HOST = "127.0.0.1"
ACCESS_FILE = "access.json"
SERVE_KEYS = ("http", "opcua", "sparkplug", "access")


class ServeError(ValueError):
    """The serve section is wrong (every problem listed, each as `FILE: serve.KEY: what is allowed`),
    or the access file cannot be used (the message names it)."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int  # 0: a free port

    def url(self, scheme: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"


@dataclass(frozen=True)
class ServeConfig:
    http: Endpoint | None = None
    opcua: Endpoint | None = None
    access_file: Path | None = None  # None: <state dir>/access.json
    opcua_options: dict[str, Any] = field(default_factory=dict)
    sparkplug: dict[str, Any] | None = None

    @property
    def any(self) -> bool:
        return self.http is not None or self.opcua is not None or self.sparkplug is not None


def _at(where: str, node: Any, key: Any) -> str:
    """`FILE:LINE` of `key` in `node` when the loader kept its lines (edge.tagmap.checker.Node), else `FILE`."""
    line = getattr(node, "key_lines", {}).get(key) if isinstance(node, Mapping) else None
    return f"{where}:{line}" if line else where


def _endpoint(raw: Any, key: str, default_port: int, where: str, problems: list[str], top: Mapping,
              extra: dict[str, Any] | None = None) -> Endpoint | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return Endpoint(DEFAULT_HOST, default_port)
    if not isinstance(raw, Mapping):
        problems.append(f"{_at(where, top, key)}: serve.{key}: is {raw!r}; allowed: true or a mapping with host and port")
        return None
    host = raw.get("host", DEFAULT_HOST)
    port = raw.get("port", default_port)
    ok = True
    try:
        ipaddress.ip_address(str(host))
    except ValueError:
        problems.append(f"{_at(where, raw, 'host')}: serve.{key}.host: is {host!r}; allowed: an IP address "
                        "(127.0.0.1: this machine only)")
        ok = False
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        problems.append(f"{_at(where, raw, 'port')}: serve.{key}.port: is {port!r}; allowed: a TCP port 0..65535 "
                        "(0: a free port)")
        ok = False
    for k, v in raw.items():
        if k in ("host", "port"):
            continue
        if extra is None:
            problems.append(f"{_at(where, raw, k)}: serve.{key}.{k}: unknown key; allowed: host, port")
            ok = False
        else:
            extra[str(k)] = v
    return Endpoint(str(host), int(port)) if ok else None


def parse_serve(raw: Mapping[str, Any] | None, source: Path | str = "line file") -> ServeConfig:
    """Check the raw `serve:` mapping; `ServeError` lists every problem, each `FILE[:LINE]: serve.KEY: ...`
    (the line when the mapping kept its lines, as LineConfig.serve does)."""
    if not raw:
        return ServeConfig()
    where = str(source)
    if not isinstance(raw, Mapping):
        raise ServeError(f"{where}: serve: is {raw!r}; allowed: a mapping with {', '.join(SERVE_KEYS)}")
    problems = [f"{_at(where, raw, k)}: serve.{k}: unknown key; allowed: {', '.join(SERVE_KEYS)}"
                for k in raw if k not in SERVE_KEYS]
    opcua_options: dict[str, Any] = {}
    http = _endpoint(raw.get("http"), "http", DEFAULT_HTTP_PORT, where, problems, raw)
    opcua = _endpoint(raw.get("opcua"), "opcua", DEFAULT_OPCUA_PORT, where, problems, raw, extra=opcua_options)
    sparkplug = raw.get("sparkplug")
    if sparkplug is not None and not isinstance(sparkplug, Mapping):
        problems.append(f"{_at(where, raw, 'sparkplug')}: serve.sparkplug: is {sparkplug!r}; allowed: a mapping")
    access = raw.get("access")
    if access is not None and (not isinstance(access, str) or not access.strip()):
        problems.append(f"{_at(where, raw, 'access')}: serve.access: is {access!r}; allowed: a file name "
                        "(relative: under the state dir)")
    if problems:
        raise ServeError("\n".join(problems))
    return ServeConfig(http=http, opcua=opcua, access_file=Path(access) if access else None,
                       opcua_options=opcua_options, sparkplug=dict(sparkplug) if sparkplug else None)


def serve_config(line, *, http_port: int | None = None, opcua_port: int | None = None,
                 sparkplug_broker: str | None = None) -> ServeConfig:
    """The line file's `serve:` (LineConfig.serve; read with getattr while line.py may lack it) with
    the command line's options over it: a port option serves that endpoint even without a section,
    on the section's host (127.0.0.1 when it names none); a broker publishes Sparkplug B there
    (the section's other sparkplug keys kept)."""
    raw = getattr(line, "serve", None) or {}
    config = parse_serve(raw, getattr(line, "source", "line file"))
    http, opcua = config.http, config.opcua
    page = getattr(line, "operator_page", None)  # the line file's older operator_page: {host, port}
    if page is not None and isinstance(raw, Mapping):
        given = raw.get("http")
        given = given if isinstance(given, Mapping) else {}
        if http is not None:  # serve.http's own keys first, then operator_page's
            http = Endpoint(str(given.get("host", page.host)), int(given.get("port", page.port)))
        elif http_port is not None:
            http = Endpoint(page.host, page.port)
    if http_port is not None:
        http = Endpoint(http.host if http else DEFAULT_HOST, http_port)
    if opcua_port is not None:
        opcua = Endpoint(opcua.host if opcua else DEFAULT_HOST, opcua_port)
    sparkplug = config.sparkplug
    if sparkplug_broker is not None:
        sparkplug = dict(sparkplug or {}, broker=sparkplug_broker)
    return ServeConfig(http=http, opcua=opcua, access_file=config.access_file, opcua_options=config.opcua_options,
                       sparkplug=sparkplug)


@dataclass(frozen=True)
class Access:
    """Tokens to roles (compared in constant time)."""

    path: Path
    tokens: Mapping[str, str]  # role value -> token

    def role_of(self, token: str | None) -> Role | None:
        if not token:
            return None
        for role in Role:
            expected = self.tokens.get(role.value)
            if expected and hmac.compare_digest(expected.encode(), token.encode()):
                return role
        return None

    def token(self, role: Role | str) -> str:
        return self.tokens[Role(role).value]


def load_access(state_dir: Path, config: ServeConfig | None = None, *, create: bool = True) -> Access:
    """The tokens file (`config.access_file` under the state dir, default access.json): made with
    random tokens when missing; refused (ServeError naming it) when group or others may read or
    write it, when it is not the running user's, or when it is no `{"operator": .., "engineer": ..}`."""
    name = (config.access_file if config is not None and config.access_file else Path(ACCESS_FILE))
    path = name if name.is_absolute() else Path(state_dir) / name
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        tokens = {r.value: secrets.token_urlsafe(24) for r in Role}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(tokens, f, indent=1)
            f.write("\n")
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ServeError(f"{path}: missing; the tokens of the roles (operator, engineer) are kept there") from None
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid() or mode & 0o077:
        raise ServeError(f"refusing {path}: owner uid {st.st_uid}, mode {mode:04o}; it must be the supervisor's "
                         f"(uid {os.geteuid()}) and neither readable nor writable by group or others (chmod 600)")
    try:
        tokens = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServeError(f"{path}: not JSON: {exc}") from None
    roles = [r.value for r in Role]
    if (not isinstance(tokens, dict) or set(tokens) - set(roles)
            or not all(isinstance(v, str) and len(v) >= 16 for v in tokens.values()) or not tokens):
        raise ServeError(f"{path}: allowed: a JSON object with keys among {', '.join(roles)}, each a token of at "
                         "least 16 characters")
    return Access(path, dict(tokens))

"""Read a tag map from YAML and check every field before anything uses it.

A map with any problem is refused whole: `load_tag_map` raises `TagMapError` carrying every
problem found, each naming the file, the line, the tag and what is allowed. The optional
`roles:` and `fixture:` sections are read by edge/tagmap/roles.py and refused when they are
wrong on their own; a role the map lacks is not a load problem but `roles.role_problems`'s (what
`tags check` and `rtcore run` refuse). The fields are documented in plc_tags/README.md.
Tests: tests/edge/tagmap/test_load.py, test_roles.py, test_commissioning.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from edge.tagmap.checker import Checker, MapProblem, Node, TagMapError, read_yaml
from edge.tagmap.addresses import check_address_overlaps
from edge.tagmap.model import Endpoint, Protocol, ScanGroup, Tag, TagMap
from edge.tagmap.roles import declared_problems, load_fixture, load_roles
from edge.tagmap.tag_fields import NAME_RE, load_tag

TOP_KEYS = {"connection", "scan_groups", "tags", "roles", "fixture"}
REQUIRED_KEYS = ("connection", "scan_groups", "tags")
CONNECTION_KEYS = {"name", "protocol", "endpoint", "timeout_s"}
ENDPOINT_KEYS = {"host", "port", "unit_id", "route"}
DEFAULT_PORT = {Protocol.LOGIX: 44818, Protocol.MODBUS: 502}
MAX_TIMEOUT_S = 10.0


def load_tag_map(path: str | Path) -> TagMap:
    """Load and check one tag map; raise `TagMapError` listing every problem."""
    path = Path(path)
    document, problems = read_yaml(path)
    check = Checker(path, problems)
    top = check.mapping(document, 1, "the file", TOP_KEYS)
    if top is None:
        raise TagMapError(problems)
    for key in (k for k in REQUIRED_KEYS if k not in top):
        check.fail(1, f"missing top-level key {key!r}")
    connection = _load_connection(check, top)
    groups = _load_scan_groups(check, top)
    tags = _load_tags(check, top, connection[1] if connection else _protocol_of(top), {g.name for g in groups})
    roles = load_roles(check, top, tags)
    fixture = load_fixture(check, top)
    if problems or connection is None:
        if not problems:  # never a refusal without its reason
            check.fail(top.key_lines.get("connection", 1), "connection is not usable")
        raise TagMapError(sorted(problems, key=lambda p: p.line))
    name, protocol, endpoint, timeout_s = connection
    tag_map = TagMap(name, protocol, endpoint, timeout_s, tuple(groups), tuple(tags), path, roles=roles,
                     fixture=fixture)
    declared = declared_problems(tag_map)
    if declared:
        raise TagMapError(sorted(declared, key=lambda p: p.line))
    return tag_map


def _protocol_of(top: Node) -> Protocol | None:
    """The protocol the file names, also when its connection has other problems (a missing host):
    its tags' addresses are checked against it (they were not checked at all)."""
    connection = top.get("connection")
    try:
        return Protocol(connection.get("protocol")) if isinstance(connection, dict) else None
    except ValueError:
        return None  # reported by _load_connection


def _load_connection(check: Checker, top: Node):
    if "connection" not in top:
        return None  # reported as a missing top-level key
    raw = top["connection"]
    conn = check.mapping(raw, top.key_lines["connection"], "connection", CONNECTION_KEYS)
    if conn is None:
        return None
    line = conn.line
    name = conn.get("name")
    if not isinstance(name, str) or not name:
        check.fail(conn.key_lines.get("name", line), "connection.name must be a non-empty string")
    protocol = check.enum(Protocol, conn.get("protocol"), conn.key_lines.get("protocol", line), "connection.protocol")
    timeout_s = check.number(conn.get("timeout_s", 0.5), conn.key_lines.get("timeout_s", line), "connection.timeout_s")
    if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:
        check.fail(conn.key_lines.get("timeout_s", line), f"connection.timeout_s is {timeout_s}; allowed: > 0 and <= {MAX_TIMEOUT_S}")
    ep_raw = conn.get("endpoint")
    ep = check.mapping(ep_raw, conn.key_lines.get("endpoint", line), "connection.endpoint", ENDPOINT_KEYS)
    if ep is None:
        return None
    host = ep.get("host")
    if not isinstance(host, str) or not host:
        check.fail(ep.key_lines.get("host", ep.line), "connection.endpoint.host must be a host name or IP address")
    port = ep.get("port", DEFAULT_PORT.get(protocol, 0))
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        check.fail(ep.key_lines.get("port", ep.line), f"connection.endpoint.port is {port!r}; allowed: 1..65535")
    unit_id = ep.get("unit_id", 1)
    if protocol is Protocol.MODBUS and (isinstance(unit_id, bool) or not isinstance(unit_id, int) or not 0 <= unit_id <= 255):
        check.fail(ep.key_lines.get("unit_id", ep.line), f"connection.endpoint.unit_id is {unit_id!r}; allowed: 0..255")
    if protocol is Protocol.LOGIX and "unit_id" in ep:
        check.fail(ep.key_lines["unit_id"], "connection.endpoint.unit_id applies to modbus only")
    route = ep.get("route", "")
    if protocol is Protocol.MODBUS and "route" in ep:
        check.fail(ep.key_lines["route"], "connection.endpoint.route applies to logix only")
    if not isinstance(route, str) or (route and not re.fullmatch(r"\d+/\d+(/\d+/\d+)*", route)):
        check.fail(ep.key_lines.get("route", ep.line), f"connection.endpoint.route is {route!r}; allowed: port/link pairs like '1/0'")
    if check.problems or protocol is None:
        return None
    return name, protocol, Endpoint(host, port, unit_id if protocol is Protocol.MODBUS else 1, route), timeout_s


def _load_scan_groups(check: Checker, top: Node) -> list[ScanGroup]:
    if "scan_groups" not in top:
        return []  # reported as a missing top-level key
    raw = top["scan_groups"]  # `scan_groups:` with nothing after it is None: refused as no mapping
    if not isinstance(raw, Node):
        check.fail(top.key_lines["scan_groups"], "scan_groups must be a mapping of name: period in ms, like "
                                                 "{fast: 100, slow: 1000}")
        return []
    groups = check.mapping(raw, top.key_lines["scan_groups"], "scan_groups", set(raw))
    if groups is None:
        return []
    out = []
    for name, period in groups.items():
        line = groups.key_lines[name]
        if not isinstance(name, str) or not NAME_RE.match(name):
            check.fail(line, f"scan group name {name!r} must be an identifier")
        elif isinstance(period, bool) or not isinstance(period, int) or not 10 <= period <= 3_600_000:
            check.fail(line, f"scan group {name!r} period is {period!r} ms; allowed: an integer 10..3600000")
        else:
            out.append(ScanGroup(name, period))
    if not out and not check.problems:
        check.fail(top.key_lines["scan_groups"], "scan_groups is empty; declare at least one, e.g. fast: 100")
    return out


def _load_tags(check: Checker, top: Node, protocol: Protocol | None, groups: set[str]) -> list[Tag]:
    if "tags" not in top:
        return []  # reported as a missing top-level key
    raw = top["tags"]  # `tags:` with nothing after it is None: refused as an empty list (it loaded, 0 tags)
    if not isinstance(raw, list) or not raw:
        check.fail(top.key_lines["tags"], "tags must be a non-empty list of tag entries")
        return []
    tags: list[Tag] = []
    first_line: dict[str, int] = {}
    for entry in raw:
        name = entry.get("name") if isinstance(entry, Node) else None
        if isinstance(name, str) and name in first_line:
            check.fail(entry.line, f"duplicate tag name (first on line {first_line[name]})", name)
            continue
        if isinstance(name, str):
            first_line[name] = entry.line
        tag = load_tag(check, entry, protocol, groups, top.key_lines["tags"])
        if tag is not None:
            tags.append(tag)
    check_address_overlaps(check, tags, protocol)
    return tags


__all__ = ["MapProblem", "TagMapError", "load_tag_map"]

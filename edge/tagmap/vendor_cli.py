"""`discharge-edge tags import kepware|studio5000 FILE --out MAP.yaml` and `tags export kepware`.

`register(actions)` adds the two actions to the `tags` command's subparsers (edge/tagmap/cli.py
calls it). Import writes the map the vendor file gives (edge/tagmap/vendor/): what it knows, no
placeholders; it prints what it did not carry over (vendor columns with no map field, counted by
value; vendor types with no map type and every skipped row, named) and what the map still lacks
(owner, access, unit, limits, safe values, scan group, endpoint, roles), each with the written
map's line: the lines `tags check` names for it. Exit 0 when the map passes `tags check`, 1 when
something is missing, 2 for an input it cannot read (edge.cli's one path) or an --out that is the
vendor file. Export writes a Kepware tag CSV of a map the loader accepts (exit 1 and its problems
when it does not, as `tags check`; roles are not asked: a partial map exports too; exit 2 for an --out that is the map) and lists the map
fields Kepware has no column for. `--json` prints one JSON object. Tests:
tests/edge/tagmap/vendor/test_vendor_cli.py, test_commissioning_vendor.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edge.cli import EXIT_PROBLEM, INPUT_ERRORS, InputError, input_error, print_json, read_input
from edge.tagmap.checker import TagMapError
from edge.tagmap.load import load_tag_map
from edge.tagmap.model import Protocol
from edge.tagmap.vendor.draft import write_draft
from edge.tagmap.vendor.kepware import read_kepware, write_kepware
from edge.tagmap.vendor.studio5000 import read_studio5000

DEFAULT_PORT = {Protocol.MODBUS: 502, Protocol.LOGIX: 44818}
SHOWN = 12  # names shown per line of the text report (--json lists all)


def register(actions) -> None:
    """Add `import` and `export` to the `tags` command's subparsers `actions`."""
    imp = actions.add_parser("import", help="a Kepware CSV or Studio 5000 tag export (CSV, L5X) as a tag map")
    imp.add_argument("vendor", choices=("kepware", "studio5000"))
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--out", type=Path, required=True, metavar="MAP.yaml")
    imp.add_argument("--protocol", choices=("modbus", "logix"), help="the PLC's protocol (Kepware: read from "
                     "the addresses when not given; Studio 5000: logix)")
    imp.add_argument("--endpoint", metavar="HOST:PORT", help="the PLC's address (vendor files do not hold it)")
    imp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    imp.set_defaults(func=run_import)
    exp = actions.add_parser("export", help="a tag map as a Kepware tag CSV")
    exp.add_argument("vendor", choices=("kepware",))
    exp.add_argument("map", type=Path, metavar="MAP.yaml")
    exp.add_argument("--out", type=Path, required=True, metavar="FILE.csv")
    exp.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    exp.set_defaults(func=run_export)


def parse_endpoint(text: str, protocol: Protocol | None) -> tuple[str, int | None]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if not host or (port and not (port.isdigit() and 1 <= int(port) <= 65535)):
        raise InputError(f"--endpoint {text!r}: give HOST:PORT (port 1..65535) or HOST")
    return host, int(port) if port else DEFAULT_PORT.get(protocol)


def run_import(args: argparse.Namespace) -> int:
    protocol = Protocol(args.protocol) if args.protocol else None
    if args.vendor == "studio5000":
        if protocol is Protocol.MODBUS:
            raise InputError("--protocol modbus: a Studio 5000 export is a Logix controller's (--protocol logix)")
        draft = read_input(args.file, read_studio5000)
    else:
        draft = read_input(args.file, read_kepware, protocol)
    if args.out.exists() and args.out.resolve() == args.file.resolve():
        raise InputError(f"--out {args.out} is the vendor file itself; write the map to another file")
    if args.endpoint:
        draft.host, draft.port = parse_endpoint(args.endpoint, draft.protocol)
    header = (f"imported by `discharge-edge tags import {args.vendor} {args.file}`: what the file gives;\n"
              "`tags check` names what is missing (owner, access, unit, limits, safe_value, scan_group, roles)")
    text, missing = write_draft(draft, header)
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write: {exc.strerror}") from exc
    result = import_result(draft, args.out, missing)
    if args.json:
        print_json(result)
    else:
        print_import(result, args.out)
    return 0 if result["ok"] else 1


def import_result(draft, out: Path, missing) -> dict:
    """The import's report as one JSON-able dict, with the `tags check` of the written map."""
    check = check_problems(out)
    by_field: dict[str, int] = {}
    for place in missing:
        for name in place.fields:
            by_field[name] = by_field.get(name, 0) + 1
    return {
        "ok": not missing and not check,
        "out": str(out),
        "protocol": draft.protocol.value if draft.protocol else None,
        "tag_count": len(draft.tags),
        "roles": draft.roles,
        "missing_count": by_field,
        "missing": [m.as_dict() for m in missing],
        "check_problems": check,
        **draft.report.as_dict(),
    }


def check_problems(path: Path) -> list[dict]:
    """What `tags check` says of the map at `path` (roles included when this build checks them)."""
    try:
        tag_map = load_tag_map(path)
    except TagMapError as exc:
        return [{"line": p.line, "tag": p.tag, "message": p.message, "text": str(p)} for p in exc.problems]
    try:
        from edge.tagmap.roles import role_problems
    except ImportError:
        return []
    return [{"line": p.line, "tag": p.tag, "message": p.message, "text": str(p)} for p in role_problems(tag_map)]


def print_import(result: dict, out: Path) -> None:
    print(f"wrote {out}: {result['tag_count']} tags from {result['source']} ({result['vendor_rows']} rows), "
          f"protocol {result['protocol'] or 'unknown'}")
    for column, info in result["unmapped_columns"].items():
        values = ", ".join(f"{v!r} x{n}" for v, n in list(info["values"].items())[:SHOWN])
        print(f"  not carried: column {column!r} in {info['rows']} rows ({values})")
    for vendor_type, info in result["unsupported_types"].items():
        print(f"  no map type: {vendor_type!r}, {info['count']} tags: {_names(info['names'])}")
    for skip in result["skipped"]:
        print(f"  skipped: {skip['origin']}: {skip['name']!r}: {skip['reason']}")
    if result["renamed"]:
        print(f"  renamed to fit the map: {len(result['renamed'])}: "
              + _names([f"{r['vendor_name']} -> {r['name']}" for r in result["renamed"]]))
    for note in result["notes"]:
        print(f"  note: {note}")
    if result["roles"]:
        print("  roles named by their tags' vendor names: " + ", ".join(f"{k} = {v}" for k, v in result["roles"].items()))
    if result["missing"]:
        counts = ", ".join(f"{k} {n}" for k, n in result["missing_count"].items())
        print(f"missing, for you to fill in {out} ({counts}):")
        for place in result["missing"]:
            where = f"{out}:{place['line']}"
            what = "missing " + ", ".join(place["fields"])
            print(f"  {where}: tag {place['tag']!r}: {what}" if place["tag"] else f"  {where}: {what}")
    named = {(m["line"], m["tag"]) for m in result["missing"]}
    incomplete = {f"'{m['tag']}'" for m in result["missing"] if m["tag"]}
    other = [p for p in result["check_problems"] if (p["line"], p["tag"]) not in named]
    follow = [p for p in other if any(name in p["message"] for name in incomplete)]
    for problem in other:
        if problem not in follow:
            print(f"  {problem['text']}")
    if follow:
        print(f"  {len(follow)} more problems name tags above that miss a field (roles of them); --json lists them")
    state = "passes" if result["ok"] else f"does not pass yet ({len(result['check_problems'])} problems)"
    print(f"`discharge-edge tags check {out}` {state}")


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f", ... ({len(names) - SHOWN} more; --json lists all)" if len(names) > SHOWN else "")


def run_export(args: argparse.Namespace) -> int:
    try:
        tag_map = load_tag_map(args.map)
    except TagMapError as exc:
        if args.json:
            print_json({"ok": False, "map": str(args.map), "problems": [str(p) for p in exc.problems]})
        else:
            for problem in exc.problems:
                print(problem)
            print(f"{args.map}: not exported: the map must load first (its problems above)")
        return 1
    except INPUT_ERRORS as exc:  # not UTF-8: one line naming the file and byte, exit 1 as `tags check`
        raise InputError(input_error(args.map, exc), EXIT_PROBLEM) from exc
    if args.out.exists() and args.out.resolve() == Path(args.map).resolve():
        raise InputError(f"--out {args.out} is the map itself; write the CSV to another file")  # it overwrote the map
    text, report = write_kepware(tag_map)
    try:
        args.out.write_text(text, newline="")
    except OSError as exc:
        raise InputError(f"{args.out}: cannot write: {exc.strerror}") from exc
    result = {"ok": True, "map": str(args.map), "out": str(args.out), **report}
    if args.json:
        print_json(result)
        return 0
    print(f"wrote {args.out}: {report['tags']} tags of {args.map} ({tag_map.protocol.value})")
    for field_name, info in report["not_carried"].items():
        print(f"  no Kepware column for {field_name}: {info['count']} tags: {_names(info['names'])}")
    print(f"  not in a tag CSV: connection {', '.join(report['connection_not_carried'])}")
    return 0

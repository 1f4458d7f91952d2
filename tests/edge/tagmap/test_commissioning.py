"""Maps an engineer writes by hand for their own line, found wrong while commissioning: each
refusal names file, line, tag and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.tagmap import TagMapError, load_tag_map

pytestmark = pytest.mark.unit

HEAD = """\
connection:
  name: line5
  protocol: modbus
  endpoint: {host: 127.0.0.1, port: 502}
  timeout_s: 0.2
scan_groups:
  fast: 100
tags:
"""


def write(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "line5.yaml"
    path.write_text(HEAD + "".join(f"  - {e}\n" for e in entries))
    return path


READ = 'access: read, owner: rtcore, unit: "", scan_group: fast'
WRITE = 'access: write, owner: rtcore, unit: "", scan_group: fast'


@pytest.mark.parametrize("entry, last", [
    ('{name: i_lim, address: "465535", type: "REAL[5]", ' + WRITE + ', limits: {min: 0, max: 100}, safe_value: 0}',
     "holding_register:65543"),
    ('{name: cycles, address: "input_register:65534", type: ULINT, ' + READ + '}', "input_register:65537"),
    ('{name: run_ok, address: "coil:65533", type: "BOOL[5]", ' + WRITE + ', safe_value: false}', "coil:65537"),
    ('{name: recipe, address: "input_register:65530", type: STRING(20), ' + READ + '}', "input_register:65539"),
])
def test_a_tag_running_past_the_last_modbus_address_is_refused(tmp_path, entry, last):
    path = write(tmp_path, entry)
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    (problem,) = caught.value.problems
    assert problem.file == path and problem.line == 9
    assert f"ends at {last}, past the last address 65535" in problem.message
    assert "allowed: a start of at most" in problem.message


def test_a_tag_ending_at_the_last_modbus_address_loads(tmp_path):
    tag_map = load_tag_map(write(
        tmp_path,
        '{name: i_lim, address: "465527", type: "REAL[5]", ' + WRITE + ', limits: {min: 0, max: 100}, safe_value: 0}',
        '{name: line_safe, address: "coil:65535", type: BOOL, ' + WRITE + ', safe_value: true}',
        '{name: beat, address: "input_register:65534", type: DINT, ' + READ + '}'))
    assert [t.address.address + t.register_count for t in tag_map.tags] == [65536, 65536, 65536]


def test_watch_refuses_an_every_faster_than_a_scan_group(capsys):
    from edge import REPO_ROOT
    from edge.cli import main

    hil = str(REPO_ROOT / "plc_tags" / "hil_modbus.yaml")
    assert main(["tags", "watch", "--map", hil, "--every", "1e-9", "plc_heartbeat"]) == 2  # read ~1900/s before
    err = capsys.readouterr().err
    assert "--every 1e-09 s is faster than a map's fastest scan group; allowed: 0.01 s or more" in err


def test_the_logix_span_tree_finds_the_same_earlier_tag_as_comparing_every_pair():
    """The overlap check looks earlier Logix tags up in a tree (8000 members of one UDT array took
    27 s compared pair by pair, 2.8 s now); on random paths it names the same earlier tag."""
    import random

    from edge.tagmap.addresses import _logix_meet, _SpanNode, parse_logix_path

    rng = random.Random(15)
    names = ["Cell", "cell", "Stn", "Data"]
    members = ["Temp", "Volt", "Status", "Hist"]
    checked = 0
    for _round in range(40):
        root, earlier = _SpanNode(), []
        for order in range(60):
            path = rng.choice(names)
            if rng.random() < 0.7:
                path += f"[{rng.randrange(6)}]"
            for _depth in range(rng.randrange(3)):
                path += "." + rng.choice(members) + (f"[{rng.randrange(4)}]" if rng.random() < 0.4 else "")
            if rng.random() < 0.2:
                path += f".{rng.randrange(3)}"
            count = 1 if rng.random() < 0.6 else rng.randrange(1, 5)
            try:
                _scope, parts = parse_logix_path(path).span(count)
            except ValueError:
                continue
            expected = next(((o, p) for o, s, p in earlier if _logix_meet(s, parts)), None)
            found = root.first_meeting(parts)
            assert (found[0] if found else None) == (expected[0] if expected else None), (path, expected, found)
            checked += found is not None
            root.insert(parts, (order, path))
            earlier.append((order, parts, path))
    assert checked > 500  # the random maps overlap often enough to test the rule


ROLES_HEAD = HEAD.replace("tags:\n", "roles:\n  plc_heartbeat: plc_beat\ntags:\n")


def test_an_unquoted_coil_number_read_as_octal_is_named_as_written(tmp_path):
    path = tmp_path / "octal.yaml"
    path.write_text(ROLES_HEAD + '  - {name: plc_beat, address: 01001, type: BOOL, ' + READ + '}\n')
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    (problem,) = caught.value.problems  # not also 'roles: plc_heartbeat names tag plc_beat, which the map lacks'
    assert problem.line == 11 and problem.tag == "plc_beat"
    assert problem.message == ("address is 513: a coil number needs its leading zeros, quoted: '00513' = coil:512; "
                               "written 01001 unquoted, YAML read it as an octal number: quote it, '01001' = coil:1000")


CONNECTION = HEAD[:HEAD.index("scan_groups:")]
ONE_TAG = '  - {name: beat, address: "input_register:0", type: DINT, ' + READ + '}\n'


@pytest.mark.parametrize("text, line, message", [
    # `connection:` with nothing under it: refused with no problem at all (exit 1, not a word)
    ("connection:\nscan_groups:\n  fast: 100\ntags:\n" + ONE_TAG, 1,
     "connection must be a mapping of endpoint, name, protocol, timeout_s, got nothing"),
    # `tags:` with nothing under it: 'OK, 0 tags'
    (CONNECTION + "scan_groups:\n  fast: 100\ntags:\n", 8, "tags must be a non-empty list of tag entries"),
    (CONNECTION + "scan_groups:\ntags:\n" + ONE_TAG.replace("fast", "slow"), 6,
     "scan_groups must be a mapping of name: period in ms, like {fast: 100, slow: 1000}"),
    (CONNECTION.replace("endpoint: {host: 127.0.0.1, port: 502}", "endpoint: 127.0.0.1:502")
     + "scan_groups:\n  fast: 100\ntags:\n" + ONE_TAG, 4,
     "connection.endpoint must be a mapping of host, port, route, unit_id, got '127.0.0.1:502'"),
])
def test_an_empty_or_flat_section_is_refused_naming_its_line_and_form(tmp_path, text, line, message):
    path = tmp_path / "sections.yaml"
    path.write_text(text)
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    assert (caught.value.problems[0].line, caught.value.problems[0].message) == (line, message)


def test_a_tag_missing_a_key_still_has_its_address_checked(tmp_path):
    """An imported map lacks owners; its address problems came only once every owner was filled in."""
    path = write(tmp_path, '{name: flags, address: "input_register:0", type: "BOOL[4]", access: read, unit: "", '
                           'scan_group: fast}')
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    messages = [p.message for p in caught.value.problems]
    assert messages[0] == "missing 'owner'"
    assert messages[1].startswith("type BOOL cannot live in input_register")


def test_a_map_without_its_host_still_has_its_addresses_checked(tmp_path):
    """An imported map has no host until --endpoint or the user gives one; its tags' addresses
    went unchecked until then (the protocol was taken only from a connection without problems)."""
    path = tmp_path / "nohost.yaml"
    path.write_text(write(tmp_path, '{name: flags, address: "input_register:0", type: "BOOL[4]", ' + READ + '}')
                    .read_text().replace("endpoint: {host: 127.0.0.1, port: 502}", "endpoint: {}"))
    with pytest.raises(TagMapError) as caught:
        load_tag_map(path)
    assert [(p.line, p.message[:40]) for p in caught.value.problems] == [
        (4, "connection.endpoint.host must be a host "), (9, "type BOOL cannot live in input_register;")]

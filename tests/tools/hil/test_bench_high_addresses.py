"""The Modbus bench serves tags at the top of the address space: a coil at 65535 and registers
ending at 65535 (`hil serve` raised pymodbus's TypeError '1 <= count < 65536' for any coil from
65520 on). A client reads and writes them through the map."""

from __future__ import annotations

import dataclasses

import pytest

from edge.bus import open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.server_bench import open_server

pytestmark = pytest.mark.integration

HIGH = """\
connection:
  name: high
  protocol: modbus
  endpoint: {host: 127.0.0.1, port: 502}
  timeout_s: 2.0
scan_groups:
  fast: 100
tags:
  - {name: beat, address: "input_register:65534", type: DINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: i_lim, address: "465527", type: "REAL[5]", access: write, owner: rtcore, unit: pct,
     limits: {min: 0, max: 100}, safe_value: 0, scan_group: fast}
  - {name: run_ok, address: "coil:65530", type: "BOOL[5]", access: write, owner: rtcore, unit: "", safe_value: false, scan_group: fast}
  - {name: line_safe, address: "coil:65535", type: BOOL, access: write, owner: rtcore, unit: "", safe_value: true, scan_group: fast}
  - {name: door, address: "discrete_input:65535", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
"""


def test_tags_at_the_last_modbus_addresses_are_served(tmp_path):
    path = tmp_path / "high.yaml"
    path.write_text(HIGH)
    with open_server(load_tag_map(path)) as server:
        server.set_many({"beat": 123456, "door": True})
        bus = open_bus(dataclasses.replace(server.tag_map, timeout_s=2.0), Owner.RTCORE)
        try:
            results = bus.write({"i_lim": [10.0, 20.0, 30.0, 40.0, 50.0], "run_ok": [True, False, True, False, True],
                                 "line_safe": True})
            assert [r.quality.value for r in results] == ["good"] * 3, results
            beat, door, i_lim, run_ok, safe = bus.read(["beat", "door", "i_lim", "run_ok", "line_safe"])
        finally:
            bus.close()
    assert (beat.value, door.value, safe.value) == (123456, True, True)
    assert i_lim.value == (10.0, 20.0, 30.0, 40.0, 50.0) and run_ok.value == (True, False, True, False, True)

"""The Modbus bench serves tags at the top of the address space: a coil at 65535 and registers
ending at 65535 (`hil serve` raised pymodbus's TypeError '1 <= count < 65536' for any coil from
65520 on). A client reads and writes them through the map. The example of a line's own map
(plc_tags/examples/line5x5_modbus.yaml: roles, 4xxxx spellings, bits of a status word, LREAL,
ULINT, STRING(20), coils at 9000 and 65535) is served with its plant."""

from __future__ import annotations

import dataclasses

import pytest

from edge import REPO_ROOT
from edge.bus import open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.cells import default_cells_path, load_cells
from tools.hil.plant import Plant
from tools.hil.server_bench import HilBench, bench_plant_config, open_server

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


def test_the_line5x5_example_is_served_with_its_plant():
    tag_map = load_tag_map(REPO_ROOT / "plc_tags" / "examples" / "line5x5_modbus.yaml")
    with open_server(tag_map) as server:
        bench = HilBench(Plant(load_cells(default_cells_path(), limit=5), bench_plant_config(tag_map)), server)
        bus = open_bus(dataclasses.replace(server.tag_map, timeout_s=2.0), Owner.RTCORE)
        try:
            for beat in range(1, 6):
                bus.write({"ipc_beat": beat, "run_ok": [True] * 5, "i_lim": [100.0] * 5, "line_safe": False})
                bench.step(0.1)
            names = [t.name for t in tag_map.tags]
            readings = dict(zip(names, bus.read(names)))
        finally:
            bus.close()
    assert bench.failure is None and bench.steps == 5
    assert {n: r.quality.value for n, r in readings.items()} == dict.fromkeys(names, "good")
    temps, pressures = readings["cell_t"].value, readings["clamp_p"].value
    assert len(temps) == 25 and all(10.0 < t < 60.0 for t in temps), temps
    assert len(pressures) == 5 and all(0.0 < p < 200.0 for p in pressures), pressures
    assert readings["plc_beat"].value >= 5 and readings["run_ok"].value == (True,) * 5
    assert readings["line_safe"].value is False and readings["recipe_name"].value == ""

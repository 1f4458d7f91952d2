"""The bench's servers serve every type of the tag map (edge/bus/codec.py's wire forms): UINT,
UDINT, LINT, ULINT, LREAL, Modbus STRING(N) and bits of registers; on Logix the same numbers, the
Logix STRING (program-scoped, and a UDT's member) and a bit of a DINT, program-scoped and UDT members. Each value set on the plant side reads back
through the controller's bus, and each value the bus writes is what the plant side reads; a bit
written by the bus (Modbus FC 22, CIP read-modify-write) leaves the register's other bits."""

from __future__ import annotations

import pytest

from edge.bus import Quality, open_bus
from edge.tagmap import Owner, load_tag_map
from tools.hil.server_bench import open_server

pytestmark = pytest.mark.contract

HEAD = """\
connection:
  name: served-types
  protocol: {protocol}
  endpoint: {{host: 127.0.0.1, port: 1}}
  timeout_s: 2.0
scan_groups:
  fast: 100
tags:
"""
MODBUS = """\
  - {name: count_u16, address: input_register:0, type: UINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: total_u32, address: "300002", type: UDINT, access: read, owner: rtcore, unit: "", scan_group: fast, byte_order: CDAB}
  - {name: energy_wh, address: input_register:3, type: "LINT[2]", access: read, owner: rtcore, unit: Wh, scan_group: fast, byte_order: DCBA}
  - {name: voltage_v, address: input_register:15, type: LREAL, access: read, owner: rtcore, unit: V, scan_group: fast, byte_order: BADC}
  - {name: recipe, address: input_register:19, type: STRING(9), access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: door_open, address: "input_register:24.0", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: fan_on, address: "input_register:24.15", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: lamp, address: "holding_register:40.3", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: horn, address: "holding_register:40.5", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: big_count, address: holding_register:1000, type: ULINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 18446744073709551615}, safe_value: 0, byte_order: CDAB}
  - {name: gain, address: holding_register:2000, type: "LREAL[2]", access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: -1.0e+6, max: 1.0e+6}, safe_value: 0.0, byte_order: DCBA}
  - {name: label, address: holding_register:70, type: STRING(5), access: write, owner: rtcore, unit: "", scan_group: fast,
     safe_value: "", byte_order: BADC}
  - {name: run, address: coil:101, type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
"""
LOGIX = """\
  - {name: count_u16, address: Program:Main.CountU16, type: UINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: total_u32, address: "Meter[2].Total", type: UDINT, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: energy_wh, address: "Meter[2].EnergyWh", type: "LINT[2]", access: read, owner: rtcore, unit: Wh, scan_group: fast}
  - {name: voltage_v, address: Program:Main.Feed.VoltageV, type: LREAL, access: read, owner: rtcore, unit: V, scan_group: fast}
  - {name: door_open, address: "Program:Main.Status.0", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: fan_on, address: "Program:Main.Status.31", type: BOOL, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: lamp, address: "Panel.Lamps.3", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: horn, address: "Panel.Lamps.5", type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: big_count, address: Program:Main.BigCount, type: ULINT, access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: 0, max: 18446744073709551615}, safe_value: 0}
  - {name: gain, address: Panel.Gain, type: "LREAL[2]", access: write, owner: rtcore, unit: "", scan_group: fast,
     limits: {min: -1.0e+6, max: 1.0e+6}, safe_value: 0.0}
  - {name: run, address: Panel.Run, type: BOOL, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: false}
  - {name: recipe, address: Program:Main.RecipeName, type: STRING, access: read, owner: rtcore, unit: "", scan_group: fast}
  - {name: label, address: Panel.Label, type: STRING, access: write, owner: rtcore, unit: "", scan_group: fast, safe_value: ""}
"""
PLANT_SIDE = {"count_u16": 65535, "total_u32": 4_000_000_000, "energy_wh": (-(2**62), 2**62 + 7),
              "voltage_v": 400.125, "recipe": "NMC-811", "door_open": True, "fan_on": True}
WRITTEN = {"lamp": True, "big_count": 2**64 - 2, "gain": (1.5e-3, -2.25e5), "label": "T-05", "run": True}


@pytest.mark.parametrize("protocol", ["modbus", "logix"])
def test_every_type_serves_both_ways(protocol, tmp_path):
    path = tmp_path / f"{protocol}.yaml"
    path.write_text(HEAD.format(protocol=protocol) + (MODBUS if protocol == "modbus" else LOGIX))
    served = load_tag_map(path)
    with open_server(served) as server:
        plant_side = {k: v for k, v in PLANT_SIDE.items() if k in served}
        server.set_many(plant_side)
        server.set("horn", True)  # the PLC's own bit in the register (DINT) the bus writes another bit of
        with open_bus(server.tag_map, Owner.RTCORE) as bus:
            reads = {r.name: r for r in bus.read(list(plant_side))}
            assert {k: r.quality for k, r in reads.items()} == {k: Quality.GOOD for k in plant_side}
            assert {k: r.value for k, r in reads.items()} == plant_side  # exact: every value fits its type
            written = {k: v for k, v in WRITTEN.items() if k in served}
            results = bus.write(written)
            assert [w.quality for w in results] == [Quality.GOOD] * len(written), results
        assert server.get_many(list(written)) == written
        assert server.get("horn") is True, "writing one bit lost another bit of its register"
        assert server.get("door_open") is True and server.get("fan_on") is True

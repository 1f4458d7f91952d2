"""Loopback PLCs for the tag-bus tests: memory, Modbus TCP and EtherNet/IP, with one interface.

A harness has `tag_map` (aimed at its port), `get`/`set` (the PLC side, engineering units) and
the faults `cut`/`restore` (the link), `stop_plc`/`start_plc` (the PLC itself) and `delay_s`.
`open_bus(owner)` gives a bus for the harness. Every harness is closed at the end of its test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bus import Backoff, MemoryPlc, open_bus
from edge.tagmap import Owner, load_tag_map

HERE = Path(__file__).parent


class MemoryHarness:
    def __init__(self, tag_map):
        self.plc = MemoryPlc(tag_map)
        self.tag_map = tag_map
        self.get = self.plc.get
        self.set = self.plc.set

    @property
    def delay_s(self):
        return self.plc.delay_s

    @delay_s.setter
    def delay_s(self, value):
        self.plc.delay_s = value

    def cut(self):
        self.plc.online = False
        self.plc.restart()  # every open connection is gone

    def restore(self):
        self.plc.online = True

    stop_plc = cut
    start_plc = restore

    def close(self):
        pass


def _harness(kind: str):
    if kind == "memory":
        return MemoryHarness(load_tag_map(HERE / "contract_modbus.yaml"))
    if kind == "modbus":
        from tools.hil.server_modbus import ModbusPlcServer

        return ModbusPlcServer(load_tag_map(HERE / "contract_modbus.yaml"))
    from tools.hil.server_logix import LogixPlcServer

    return LogixPlcServer(load_tag_map(HERE / "contract_logix.yaml"))


@pytest.fixture(params=["memory", "modbus", "logix"])
def plc(request):
    harness = _harness(request.param)
    harness.kind = request.param
    buses = []

    def make_bus(owner: Owner = Owner.RTCORE, **kwargs):
        kwargs.setdefault("backoff", Backoff(initial_s=0.05, cap_s=0.4))
        extra = {"plc": harness.plc} if request.param == "memory" else {}
        bus = open_bus(harness.tag_map, owner, **extra, **kwargs)
        buses.append(bus)
        return bus

    harness.open_bus = make_bus
    yield harness
    for bus in buses:
        bus.close()
    harness.close()

"""The HIL bench: the battery plant behind a bench PLC server, stepped in real or scaled time.

Each step the bench reads what the controller wrote to the PLC (discharge permit, current and
clamping-pressure setpoints, relief, coolant), steps the plant, and publishes what the line's
sensors show (marker temperatures, applied pressures, station voltages and currents) and the
PLC's own heartbeat. Tag names are those of plc_tags/hil_*.yaml. The relief applied is the
second relief (S15, the corrected one) as a share of the clamping setpoint.
`discharge-edge hil serve --map FILE` runs it. Tests: tests/tools/hil/test_server_bench.py.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from edge.tagmap import Protocol, TagMap
from tools.hil.plant import Command, Plant
from tools.hil.server_common import BenchPlcServer

log = logging.getLogger(__name__)

COMMANDS = ("discharge_permit", "discharge_current_setpoint_a", "fixture_pressure_setpoint_kpa",
            "relief_second_kpa", "coolant_flow_lpm")


def open_server(tag_map: TagMap, port: int = 0) -> BenchPlcServer:
    """The bench PLC for the map's protocol on 127.0.0.1:port (0 = any free port)."""
    if tag_map.protocol is Protocol.MODBUS:
        from tools.hil.server_modbus import ModbusPlcServer

        return ModbusPlcServer(tag_map, port=port)
    from tools.hil.server_logix import LogixPlcServer

    return LogixPlcServer(tag_map, port=port)


def command_from_tags(values: dict, n_zones: int) -> Command:
    """What the controller wrote to the PLC, as the plant's command (the bench's PLC program)."""
    current = np.asarray(values["discharge_current_setpoint_a"], dtype=float)
    setpoint = np.asarray(values["fixture_pressure_setpoint_kpa"], dtype=float)
    relief = np.clip(np.asarray(values["relief_second_kpa"], dtype=float) / np.maximum(setpoint, 1.0), 0.0, 1.0)
    return Command(
        discharge_on=np.full(current.size, bool(values["discharge_permit"])) & (current > 0),
        current_a=current, load_ohm=np.full(current.size, 1.0),
        pressure_kpa=np.repeat(setpoint[:, None], n_zones, axis=1), relief=np.repeat(relief[:, None], n_zones, axis=1),
        coolant_lpm=np.asarray(values["coolant_flow_lpm"], dtype=float),
    )


def observation_tags(obs, broken_wire: float) -> dict:
    """What the line's sensors show, as the PLC's input tags (one zone a station: its mean pressure)."""
    temps = obs.marker_temp_degc.ravel()
    return {
        "marker_temp_degc": tuple(np.where(np.isfinite(temps), temps, broken_wire)),
        "zone_pressure_kpa": tuple(obs.pressure_kpa.mean(axis=1)),
        "station_voltage_v": tuple(obs.module_voltage_v),
        "station_current_a": tuple(obs.current_a),
    }


class HilBench:
    """A plant whose stations are the map's stations; `step(dt_s)` is one plant step."""

    def __init__(self, plant: Plant, server: BenchPlcServer):
        self.plant = plant
        self.server = server
        n_markers = server.served_map.tag("marker_temp_degc").count
        self.n_stations = server.served_map.tag("zone_pressure_kpa").count
        if plant.n_modules != self.n_stations or plant.markers.n_markers * plant.n_modules != n_markers:
            raise ValueError(f"{server.served_map.source}: the map has {self.n_stations} stations and {n_markers} "
                             f"markers; the plant has {plant.n_modules} modules x {plant.markers.n_markers} markers")
        self.heartbeat = 0
        temp_tag = server.served_map.tag("marker_temp_degc")
        # a NaN sensor on a REAL tag stays NaN; an INT analog card shows a broken wire as overrange
        self._broken_wire = np.nan if temp_tag.data_type.value == "REAL" else temp_tag.scaling.to_eu(temp_tag.data_type.raw_range[1])
        self.command = Command.idle(plant.n_modules, plant.cfg.n_zones)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0
        self.publish()

    def read_command(self) -> Command:
        return command_from_tags(self.server.get_many(list(COMMANDS)), self.plant.cfg.n_zones)

    def publish(self) -> None:
        self.heartbeat = (self.heartbeat + 1) % 2_147_483_647
        values = observation_tags(self.plant.observe(), self._broken_wire)
        self.server.set_many({**values, "plc_heartbeat": self.heartbeat})

    def step(self, dt_s: float) -> None:
        self.command = self.read_command()
        self.plant.step(self.command, dt_s)
        self.publish()
        self.steps += 1

    # -- paced in a thread ----------------------------------------------------------------------
    def start(self, dt_s: float = 0.05, time_scale: float = 1.0) -> None:
        """Step every dt_s of plant time, `time_scale` plant seconds per wall second."""
        def run():
            next_s = time.monotonic()
            while not self._stop.is_set():
                self.step(dt_s)
                next_s += dt_s / time_scale
                self._stop.wait(max(0.0, next_s - time.monotonic()))

        self._thread = threading.Thread(target=run, name="hil-plant", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

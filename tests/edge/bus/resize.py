"""Bench maps resized to a line of any number of stations (for the scale tests and benchmarks),
through the product's `edge.tagmap.resize.resized`."""

from __future__ import annotations

from pathlib import Path

from edge.tagmap import DataType, TagMap, load_tag_map
from edge.tagmap.resize import resized

ROOT = Path(__file__).resolve().parents[3]

__all__ = ["bench_map", "resized"]


def bench_map(protocol: str, stations: int) -> TagMap:
    """The HIL bench map for `stations`; marker temperatures are REAL on both protocols unless the
    Modbus INT layout is asked for with protocol 'modbus-int'."""
    if protocol == "logix":
        return resized(load_tag_map(ROOT / "plc_tags/hil_logix.yaml"), stations)
    base = load_tag_map(ROOT / "plc_tags/hil_modbus.yaml")
    if protocol == "modbus-int":
        return resized(base, stations)
    return resized(base, stations, types={"marker_temp_degc": DataType.REAL})

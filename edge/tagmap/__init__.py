"""Tag maps: one YAML file per PLC connection, loaded into frozen dataclasses and checked whole.

`load_tag_map(path)` returns a `TagMap` or raises `TagMapError` listing every problem with
file, line and tag. Fields: plc_tags/README.md. Tests: tests/edge/tagmap/.
"""

from edge.tagmap.checker import MapProblem, TagMapError
from edge.tagmap.load import load_tag_map
from edge.tagmap.model import (
    Access,
    ByteOrder,
    DataType,
    Endpoint,
    Limits,
    ModbusAddress,
    ModbusTable,
    Owner,
    Protocol,
    Scaling,
    ScanGroup,
    Tag,
    TagMap,
)

__all__ = [
    "Access", "ByteOrder", "DataType", "Endpoint", "Limits", "MapProblem", "ModbusAddress",
    "ModbusTable", "Owner", "Protocol", "Scaling", "ScanGroup", "Tag", "TagMap", "TagMapError",
    "load_tag_map",
]

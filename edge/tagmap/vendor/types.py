"""Vendor data types against the tag map's: Kepware's type names and Logix's, both ways.

A vendor type maps to a map type by name (`"UINT"`); whether this build's `DataType` has that
member is asked at run time (`map_type`), so a type the map cannot hold yet is reported as having
no counterpart instead of failing. Types with no counterpart at all (8-bit integers, BCD, dates,
Logix structures other than the expanded ones) are listed in `NO_COUNTERPART` with the reason.
Tests: tests/edge/tagmap/vendor/test_types.py.
"""

from __future__ import annotations

from edge.tagmap.model import DataType

KEPWARE_TO_MAP = {
    "boolean": "BOOL", "short": "INT", "word": "UINT", "long": "DINT", "dword": "UDINT",
    "llong": "LINT", "qword": "ULINT", "float": "REAL", "double": "LREAL", "string": "STRING",
}
"""Kepware's type name (lower case, without ' Array') -> the map's type name."""

MAP_TO_KEPWARE = {
    "BOOL": "Boolean", "INT": "Short", "UINT": "Word", "DINT": "Long", "UDINT": "DWord",
    "LINT": "LLong", "ULINT": "QWord", "REAL": "Float", "LREAL": "Double", "STRING": "String",
}

LOGIX_TO_MAP = {
    "BOOL": "BOOL", "BIT": "BOOL", "INT": "INT", "UINT": "UINT", "DINT": "DINT", "UDINT": "UDINT",
    "LINT": "LINT", "ULINT": "ULINT", "REAL": "REAL", "LREAL": "LREAL", "STRING": "STRING",
}
"""Logix atomic types (and STRING, the built-in string structure) -> the map's type name."""

NO_COUNTERPART = {
    "char": "Kepware Char is a signed 8-bit integer; the map has no 8-bit type",
    "byte": "Kepware Byte is an unsigned 8-bit integer; the map has no 8-bit type",
    "bcd": "Kepware BCD is a binary-coded decimal word; the map decodes no BCD",
    "lbcd": "Kepware LBCD is a binary-coded decimal double word; the map decodes no BCD",
    "date": "Kepware Date is an OLE date; the map has no date type",
    "SINT": "Logix SINT is a signed 8-bit integer; the map has no 8-bit type",
    "USINT": "Logix USINT is an unsigned 8-bit integer; the map has no 8-bit type",
    "LWORD": "Logix LWORD is a 64-bit bit string; read it as ULINT",
}

LOGIX_BUILTIN_MEMBERS = {
    "TIMER": (("PRE", "DINT"), ("ACC", "DINT"), ("EN", "BOOL"), ("TT", "BOOL"), ("DN", "BOOL")),
    "COUNTER": (("PRE", "DINT"), ("ACC", "DINT"), ("CU", "BOOL"), ("CD", "BOOL"), ("DN", "BOOL"),
                ("OV", "BOOL"), ("UN", "BOOL")),
    "CONTROL": (("LEN", "DINT"), ("POS", "DINT"), ("EN", "BOOL"), ("DN", "BOOL"), ("ER", "BOOL")),
}
"""Logix built-in structures whose members are expanded like a UDT's (the members a client reads)."""


def map_type(name: str | None) -> DataType | None:
    """The map's `DataType` called `name`, or None when this build has no such type."""
    if name is None:
        return None
    try:
        return DataType(name)
    except ValueError:
        return None


def kepware_type(text: str) -> tuple[str, bool]:
    """Kepware's 'Float Array' -> ('float', True): the base name in lower case and whether it is an array."""
    words = text.strip().lower()
    if words.endswith(" array"):
        return words[: -len(" array")].strip(), True
    return words, False

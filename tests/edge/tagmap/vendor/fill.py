"""Test helper: a draft map completed the way a user would, so that it loads (no test of its own)."""

from __future__ import annotations


def complete(draft, host: str = "127.0.0.1"):
    """Fill every field the import left for the user; return `draft`."""
    draft.host = draft.host or host
    if not draft.scan_groups or any(t.scan_group is None for t in draft.tags):
        draft.scan_groups.setdefault("filled", 1000)
    for tag in draft.tags:
        tag.owner = tag.owner or "supervisor"
        tag.access = tag.access or "read"
        tag.type = tag.type or "REAL"
        tag.unit = "" if tag.unit is None else tag.unit
        tag.scan_group = tag.scan_group or "filled"
        if tag.access == "write":
            if tag.limits is None and tag.type not in ("BOOL", "STRING"):
                tag.limits = (0.0, 100.0)
            if tag.safe_value is None:
                tag.safe_value = (False if tag.type == "BOOL" else "" if tag.type == "STRING"
                                  else 0 if tag.limits[0] <= 0 <= tag.limits[1] else tag.limits[0])
    return draft

"""Vendor tag files in and out of tag maps: Kepware CSV (both ways), Studio 5000 CSV and L5X (in).

`read_kepware`, `read_studio5000` give a `DraftMap` (the fields the file tells, and an
`ImportReport` of what it did not carry); `write_draft` writes its YAML and lists what the map
still lacks with the lines `tags check` names; `write_kepware` writes a loaded `TagMap` as a
Kepware CSV. The commands are edge/tagmap/vendor_cli.py. Tests: tests/edge/tagmap/vendor/.
"""

from edge.tagmap.vendor.draft import DraftMap, DraftTag, ImportReport, Missing, write_draft
from edge.tagmap.vendor.kepware import read_kepware, write_kepware
from edge.tagmap.vendor.studio5000 import read_l5x, read_studio5000, read_studio_csv

__all__ = ["DraftMap", "DraftTag", "ImportReport", "Missing", "read_kepware", "read_l5x", "read_studio5000",
           "read_studio_csv", "write_draft", "write_kepware"]

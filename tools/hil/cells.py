"""Loader for cell rows in the format of `../shared/data/cells_train.csv` (the plant's truth).

Owns `BenchCells` (one array per column, one entry per row, `cell_id` included) and `load_cells`:
edge.grading.features.read_cells_csv parses and checks the file (strictly: every column
numeric), this module asks for the truth columns and checks their physical ranges; every error
names file, line and column. A row whose `feat_*` values describe no possible battery (outside
edge.grading.features.PHYSICAL_RANGES) is refused as the grading reader refuses it: left out and
kept in `BenchCells.refused` (line, cell_id, field, reason) for the caller to report; `lines`
keeps each row's file line for later messages. A truth value outside `RANGES` is a broken file
(the plant's truth is the bench's own data, not a measurement): `CellsFileError` with file, line
and column. The plant reads only the
`truth_*` columns (and `feat_h_W_m2K` when a single-cell check wants the data's convection);
controllers and the planner get the `feat_*` columns (`BenchCells.arrival_table`). Tests: tests/tools/hil/test_hil_cells.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.grading.features import CellsFileError, Refusal, read_cells_csv
from edge.grading.features import CellTable as FeatureTable

TRUTH_REQUIRED = ("truth_soc", "truth_soh", "truth_cap_Ah", "truth_r_contact_mOhm", "truth_t_amb_C")
TRUTH_OPTIONAL = ("truth_lli", "truth_lam_ne", "truth_lam_pe", "truth_hyst_mV", "truth_ocv_V")
RANGES = {
    "truth_soc": (-0.05, 1.05),
    "truth_soh": (0.3, 1.0),
    "truth_cap_Ah": (0.5, 6.0),
    "truth_r_contact_mOhm": (0.0, 200.0),
    "truth_t_amb_C": (-20.0, 60.0),
    "truth_lli": (0.0, 0.9),
    "truth_lam_ne": (0.0, 0.9),
    "truth_lam_pe": (0.0, 0.9),
}


@dataclass(frozen=True)
class BenchCells:
    """Columns of a cells file: `columns[name]` is a float array with one entry per row."""

    path: str
    columns: dict[str, np.ndarray]
    lines: np.ndarray | None = field(default=None, repr=False)
    """The file line of each row (None: row i is line i + 2)."""
    refused: tuple[Refusal, ...] = ()
    """The file's rows left out by the reader (outside the physical ranges): never run."""

    @property
    def source(self) -> str:
        return self.path

    def __len__(self) -> int:
        return int(self.columns["cell_id"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def has(self, name: str) -> bool:
        return name in self.columns

    def feat_columns(self) -> list[str]:
        return [c for c in self.columns if c.startswith("feat_")]

    def select(self, index: np.ndarray | slice | list[int]) -> "BenchCells":
        lines = None if self.lines is None else np.atleast_1d(self.lines[index])
        return BenchCells(self.path, {k: np.atleast_1d(v[index]) for k, v in self.columns.items()}, lines, self.refused)

    def arrival_table(self) -> FeatureTable:
        """The rows as a line sees them on arrival (edge's table: `cell_id` and the `feat_*` columns)."""
        return FeatureTable(self.path, self.columns["cell_id"].astype(np.int64),
                            {name: self.columns[name].copy() for name in self.feat_columns()},
                            lines=self.lines, refused=self.refused)


def load_cells(path: Path | str, limit: int | None = None) -> BenchCells:
    """Read a cells CSV; every error names the file, the line and the column.

    Parsing is edge.grading.features.read_cells_csv's (strict: every column numeric, rows outside
    the physical ranges refused into `refused`); this adds the plant's required truth columns
    and their ranges. `limit` counts the refused rows too (the file's first `limit` data rows).
    """
    table = read_cells_csv(path, required=TRUTH_REQUIRED, strict=True, limit=limit)
    for name, (lo, hi) in RANGES.items():
        if name not in table.columns:
            continue
        values = table.columns[name]
        bad = np.flatnonzero((values < lo) | (values > hi))
        if bad.size:
            raise CellsFileError(f"{table.source}:{table.lines[bad[0]]}: column {name}: {values[bad[0]]} "
                                 f"outside [{lo}, {hi}]")
    return BenchCells(table.source, {"cell_id": table.cell_ids.astype(float), **table.columns}, table.lines,
                     table.refused)


def default_cells_path() -> Path:
    from edge import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def default_timeseries_path() -> Path:
    from edge import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "data" / "timeseries_train.csv.gz"

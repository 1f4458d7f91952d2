"""Loader for cell rows in the format of `../shared/data/cells_train.csv` (the plant's truth).

Owns `CellTable` (one array per column, one entry per row) and `load_cells`, which checks the
header and every value and names file, line and column on bad input. The plant reads only the
`truth_*` columns (and `feat_h_W_m2K` when a single-cell check wants the data's convection);
controllers get the `feat_*` columns. Tests: tests/tools/hil/test_hil_cells.py.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
class CellTable:
    """Columns of a cells file: `columns[name]` is a float array with one entry per row."""

    path: str
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.columns["cell_id"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def has(self, name: str) -> bool:
        return name in self.columns

    def feat_columns(self) -> list[str]:
        return [c for c in self.columns if c.startswith("feat_")]

    def select(self, index: np.ndarray | slice | list[int]) -> "CellTable":
        return CellTable(self.path, {k: np.atleast_1d(v[index]) for k, v in self.columns.items()})


def load_cells(path: Path | str, limit: int | None = None) -> CellTable:
    """Read a cells CSV; every error names the file, the line and the column."""
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise ValueError(f"{path}: cannot open: {exc}") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file (expected a header line)")
        header = [h.strip() for h in header]
        missing = [c for c in ("cell_id",) + TRUTH_REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}:1: missing columns {missing}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not v.strip() for v in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{lineno}: {len(row)} values, header has {len(header)}")
            values = []
            for name, text in zip(header, row):
                try:
                    values.append(float(text))
                except ValueError:
                    raise ValueError(f"{path}:{lineno}: column {name}: not a number: {text!r}") from None
            rows.append((lineno, values))
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise ValueError(f"{path}: no data rows")
    data = np.array([v for _, v in rows], dtype=float)
    for j, name in enumerate(header):
        if name not in RANGES:
            continue
        lo, hi = RANGES[name]
        bad = np.flatnonzero(~np.isfinite(data[:, j]) | (data[:, j] < lo) | (data[:, j] > hi))
        if bad.size:
            lineno = rows[bad[0]][0]
            raise ValueError(f"{path}:{lineno}: column {name}: {data[bad[0], j]} outside [{lo}, {hi}]")
    return CellTable(str(path), {name: data[:, j].copy() for j, name in enumerate(header)})


def default_cells_path() -> Path:
    from edge import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def default_timeseries_path() -> Path:
    from edge import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "data" / "timeseries_train.csv.gz"

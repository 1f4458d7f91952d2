"""State parameters of a battery at arrival: the `feat_*` columns of a cells CSV (DESIGN.md S11).

Owns: reading a cells CSV (the format of `../shared/data/cells_train.csv`) into a `CellTable`
(also for the HIL plant, tools/hil/cells.py, which asks for the truth columns instead),
the fixed feature order the SOC model is trained on, and the rule that nothing measured after
arrival (`aux_*`, from the slow tests) and no ground truth (`truth_*`) is ever a model input:
`feature_matrix` refuses such columns with `ForbiddenFeatureError`.

Targets (`truth_soc`, `truth_soh`) are read only by training and evaluation code, through
`target_column`, never as features. Tests: tests/edge/grading/test_features.py.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FEATURE_PREFIX = "feat_"
FORBIDDEN_PREFIXES = ("aux_", "truth_")
ID_COLUMN = "cell_id"

FEATURE_COLUMNS: tuple[str, ...] = (
    "feat_v_rest_V",
    "feat_v_p0p1s_V",
    "feat_v_p1s_V",
    "feat_v_p2s_V",
    "feat_v_p5s_V",
    "feat_v_p10s_V",
    "feat_v_relax60s_V",
    "feat_r0p1s_mOhm",
    "feat_r1s_mOhm",
    "feat_r10s_mOhm",
    "feat_t_amb_C",
    "feat_t_cell_C",
    "feat_dT_pulse_K",
    "feat_h_W_m2K",
)
"""The arrival-test state parameters, in the order the shipped models expect them."""


class CellsFileError(ValueError):
    """A cells CSV that cannot be read; the message names the file and, where known, the line."""


class ForbiddenFeatureError(ValueError):
    """A column that would leak the answer (`aux_*`, `truth_*`) was asked for as a feature."""


@dataclass(frozen=True)
class CellTable:
    """One row per battery: `cell_id` plus every numeric column found in the file."""

    source: str
    cell_ids: np.ndarray
    columns: dict[str, np.ndarray] = field(repr=False)
    lines: np.ndarray | None = field(default=None, repr=False)
    """The file's line number of each row, for messages about a value found bad later."""

    def __len__(self) -> int:
        return len(self.cell_ids)

    def subset(self, rows: np.ndarray) -> CellTable:
        """The table restricted to `rows` (indices or a boolean mask)."""
        return CellTable(
            source=self.source,
            cell_ids=self.cell_ids[rows],
            columns={name: values[rows] for name, values in self.columns.items()},
            lines=None if self.lines is None else self.lines[rows],
        )


def check_feature_names(names: tuple[str, ...] | list[str]) -> None:
    """Raise `ForbiddenFeatureError` if any name is not an arrival-test `feat_*` column."""
    for name in names:
        if name.startswith(FORBIDDEN_PREFIXES):
            raise ForbiddenFeatureError(
                f"column {name!r} may not be a model input: aux_* columns come from the slow "
                "tests after arrival and truth_* is the answer (DESIGN.md S11)"
            )
        if not name.startswith(FEATURE_PREFIX):
            raise ForbiddenFeatureError(f"column {name!r} is not a feat_* state parameter")


def read_cells_csv(path: str | Path, required: tuple[str, ...] = FEATURE_COLUMNS, *,
                   strict: bool = False, limit: int | None = None) -> CellTable:
    """Read a cells CSV; every `required` column must be present and numeric in every row.

    Columns not required are kept when they parse as numbers in every row, else dropped
    (a grading file may carry extra columns of any kind); with `strict` every column must be
    numeric. `limit` stops after that many data rows.
    """
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise CellsFileError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise CellsFileError(f"{path}: empty file, expected a header line")
        header = [name.strip() for name in header]
        _check_header(path, header, required)
        rows = []
        for number, row in enumerate(reader, start=2):
            if limit is not None and len(rows) >= limit:
                break
            if any(c.strip() for c in row):
                rows.append((number, row))
    if not rows:
        raise CellsFileError(f"{path}: no data rows after the header")
    return _parse_rows(path, header, rows, required, strict)


def _check_header(path: Path, header: list[str], required: tuple[str, ...]) -> None:
    if ID_COLUMN not in header:
        raise CellsFileError(f"{path}:1: no {ID_COLUMN!r} column in the header")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CellsFileError(f"{path}:1: duplicate columns {duplicates}")
    missing = [name for name in required if name not in header]
    if missing:
        raise CellsFileError(f"{path}:1: missing required columns {missing}")


def _parse_rows(path: Path, header: list[str], rows: list, required: tuple[str, ...], strict: bool) -> CellTable:
    width = len(header)
    values = np.full((len(rows), width), np.nan)
    bad_optional: set[int] = set()
    needed = set(range(width)) if strict else {header.index(name) for name in (*required, ID_COLUMN)}
    for k, (line, row) in enumerate(rows):
        if len(row) != width:
            raise CellsFileError(f"{path}:{line}: {len(row)} fields, the header has {width}")
        for j, text in enumerate(row):
            number = _to_float(text)
            if number is None:
                if j in needed:
                    raise CellsFileError(f"{path}:{line}: column {header[j]!r}: not a finite number: {text!r}")
                bad_optional.add(j)
            else:
                values[k, j] = number
    ids = values[:, header.index(ID_COLUMN)]
    if np.any(ids != np.round(ids)):
        line = rows[int(np.flatnonzero(ids != np.round(ids))[0])][0]
        raise CellsFileError(f"{path}:{line}: {ID_COLUMN} must be an integer")
    ids = ids.astype(np.int64)
    _check_unique_ids(path, ids, rows)
    columns = {
        name: values[:, j] for j, name in enumerate(header) if name != ID_COLUMN and j not in bad_optional
    }
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    return CellTable(source=str(path), cell_ids=ids, columns=columns, lines=lines)


def _to_float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_unique_ids(path: Path, ids: np.ndarray, rows: list) -> None:
    seen: dict[int, int] = {}
    for k, cell in enumerate(ids.tolist()):
        if cell in seen:
            raise CellsFileError(
                f"{path}:{rows[k][0]}: {ID_COLUMN} {cell} repeats line {rows[seen[cell]][0]}"
            )
        seen[cell] = k


def feature_matrix(table: CellTable, names: tuple[str, ...] = FEATURE_COLUMNS) -> np.ndarray:
    """The (n, len(names)) float64 matrix of state parameters, refusing leaking columns."""
    check_feature_names(names)
    missing = [name for name in names if name not in table.columns]
    if missing:
        raise CellsFileError(f"{table.source}: missing feature columns {missing}")
    return np.column_stack([table.columns[name] for name in names])


def target_column(table: CellTable, name: str) -> np.ndarray:
    """A ground-truth column for training or evaluation (never a feature)."""
    if name not in table.columns:
        raise CellsFileError(f"{table.source}: no {name!r} column (needed as a training target)")
    return table.columns[name]

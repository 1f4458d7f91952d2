"""State parameters of a battery at arrival: the `feat_*` columns of a cells CSV (DESIGN.md S11).

Owns: reading a cells CSV (the format of `../shared/data/cells_train.csv`) into a `CellTable`
(also for the HIL plant, tools/hil/cells.py, which asks for the truth columns instead), whole or
in chunks (`iter_cells_csv`, so that grading a large file holds one chunk at a time), the fixed
feature order the SOC model is trained on, the physical range of every `feat_*` column
(`PHYSICAL_RANGES`), and the rule that nothing measured after arrival (`aux_*`, from the slow
tests) and no ground truth (`truth_*`) is ever a model input: `feature_matrix` refuses such
columns with `ForbiddenFeatureError`.

A file that cannot be read as a whole (not UTF-8, a field over 128 KiB or a line over 1 MiB, a
missing column, a non-number, a repeated id) raises `CellsFileError` naming the file and line. A
row that reads but describes no possible battery (a feature outside its physical range, a
`cell_id` that is not a whole number in int64) is *refused*: it is left out of the table and
listed in `CellTable.refused` as a `Refusal` (line, cell_id as written, field, reason); callers
report these and grade, plan and record only the rows kept. A file whose every row is refused
raises `CellsFileError`. A UTF-8 byte-order mark is accepted.

Speed (issue 19): plain lines (no quote, no carriage return inside, not long) are split at commas
and converted a column at a time (`_RowParser.parse_block`); a quote, a CR or a long line hands
the rest of the file to `csv.reader`, numbered on from there, and any block the column-wise path
is not sure of (a width, a non-number, an id that is no plain integer or repeats) goes through the
row-by-row `parse`, so every refusal and error, with its line, is the same either way
(tests/edge/grading/test_grading_fast_reader.py). 10 000 rows: 0.14 s, 100 000: 1.36 s (csv.reader with a
float() a field: 0.17 and 1.71 s; best of 3 on the shared 2-core host).

Targets (`truth_soc`, `truth_soh`) are read only by training and evaluation code, through
`target_column`, never as features. Tests: tests/edge/grading/test_grading_features.py,
tests/edge/grading/test_grading_refusals.py, tests/edge/grading/test_grading_fuzz.py,
tests/edge/grading/test_grading_fast_reader.py.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
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


PHYSICAL_RANGES: dict[str, tuple[float, float, str]] = {
    **{name: (0.0, 5.0, "V") for name in FEATURE_COLUMNS if name.startswith("feat_v_")},
    **{name: (0.5, 1000.0, "mOhm") for name in ("feat_r0p1s_mOhm", "feat_r1s_mOhm", "feat_r10s_mOhm")},
    "feat_t_amb_C": (-40.0, 60.0, "degC"),
    "feat_t_cell_C": (-40.0, 85.0, "degC"),
    "feat_dT_pulse_K": (-10.0, 20.0, "K"),
    "feat_h_W_m2K": (0.5, 1000.0, "W/m2K"),
}
"""Inclusive (low, high, unit) of each feat_* column: what one cell of the chemistry can show at
all, far wider than the training range (metadata `domain`, flagged as `out_of_domain`). The
features are per cell (the data: LG M50 21700 NMC/graphite-SiOx, 5 Ah; the training file spans
2.51-4.14 V, 21.8-125 mOhm, 14.7-35.2 degC, -0.6-1.2 K, 10-50 W/m2K). Voltages: a Li-ion cell at
rest or under the 5 A pulse is never below 0 V nor above 5 V (the electrolyte oxidises first).
Resistances: a 5 A pulse from at most 5 V cannot show more than 1 Ohm; no 21700 cell with its
contacts is below 0.5 mOhm. Temperatures: the line's ambient -40..60 degC, a cell -40..85 degC
(beyond, it is not handled but quarantined). Pulse heating: 5 A through at most 1 Ohm for 10 s
warms a 70 g cell by about 4 K; -10..20 K leaves room for sensor noise and drift. Convection:
0.5 (still air) to 1000 W/m2K (liquid)."""

MAX_FIELD_BYTES = 128 * 1024
"""A field longer than this is a broken file (csv's own limit, reported with file and line)."""
MAX_LINE_BYTES = 1 << 20
"""A line longer than this is a broken file; it is never read whole into memory."""
CHUNK_ROWS = 4096
"""Rows per chunk of `iter_cells_csv`."""
_ID_FLOAT_EXACT = 2 ** 53
_INT64 = 2 ** 63


class CellsFileError(ValueError):
    """A cells CSV that cannot be read; the message names the file and, where known, the line."""


class ForbiddenFeatureError(ValueError):
    """A column that would leak the answer (`aux_*`, `truth_*`) was asked for as a feature."""


@dataclass(frozen=True)
class Refusal:
    """A row left out: its file line, its cell_id as written, the first field at fault, and why."""

    line: int
    cell_id: str
    field: str
    reason: str

    def to_dict(self) -> dict:
        return {"line": self.line, "cell_id": self.cell_id, "field": self.field, "reason": self.reason}

    def message(self, source: str) -> str:
        return f"{source}:{self.line}: cell_id {self.cell_id}: refused: {self.reason}"


@dataclass(frozen=True)
class CellTable:
    """One row per battery: `cell_id` plus every numeric column found in the file."""

    source: str
    cell_ids: np.ndarray
    columns: dict[str, np.ndarray] = field(repr=False)
    lines: np.ndarray | None = field(default=None, repr=False)
    """The file's line number of each row, for messages about a value found bad later."""
    refused: tuple[Refusal, ...] = ()
    """The file's rows left out (physical range, cell_id): never graded, planned or recorded."""

    def __len__(self) -> int:
        return len(self.cell_ids)

    def subset(self, rows: np.ndarray) -> CellTable:
        """The table restricted to `rows` (indices or a boolean mask); the refusals stay the file's."""
        return CellTable(
            source=self.source,
            cell_ids=self.cell_ids[rows],
            columns={name: values[rows] for name, values in self.columns.items()},
            lines=None if self.lines is None else self.lines[rows],
            refused=self.refused,
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
    numeric. `limit` stops after that many data rows (refused rows count). Rows outside the
    physical ranges are left out and listed in `refused` (module docstring).
    """
    chunks = list(iter_cells_csv(path, required, strict=strict, limit=limit))
    if len(chunks) == 1:
        return chunks[0]
    names = [name for name in chunks[0].columns if all(name in c.columns for c in chunks)]
    return CellTable(
        source=chunks[0].source,
        cell_ids=np.concatenate([c.cell_ids for c in chunks]),
        columns={name: np.concatenate([c.columns[name] for c in chunks]) for name in names},
        lines=np.concatenate([c.lines for c in chunks]),
        refused=chunks[-1].refused,
    )


def iter_cells_csv(path: str | Path, required: tuple[str, ...] = FEATURE_COLUMNS, *, strict: bool = False,
                   limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Iterator[CellTable]:
    """The file as successive tables of up to `chunk_rows` kept rows, read one chunk at a time.

    The whole file is checked as `read_cells_csv` checks it (ids unique over the file); a
    `CellsFileError` may come after chunks were yielded. Each chunk's `refused` holds every
    refusal so far; the last chunk (which may have no rows) holds all of them. An optional column that turns out not to be
    numeric later in the file is dropped from the chunks after that point.
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CellsFileError(f"{path}: cannot open: {exc.strerror}") from exc
    with handle:
        lines = _TextLines(path, handle)
        records = _Records(path, lines)
        header = records.header()
        if header is None:
            raise CellsFileError(f"{path}: empty file, expected a header line")
        header = [name.strip() for name in header]
        _check_header(path, header, required)
        parser = _RowParser(path, header, required, strict)
        n_rows = 0
        while True:
            want = chunk_rows if limit is None else min(chunk_rows, limit - n_rows)
            block = records.block(want) if want > 0 else []
            n_rows += len(block)
            if len(block) < chunk_rows:
                break
            table = parser.parse_block(block)
            if len(table):
                yield table
            block = []
        table = parser.parse_block(block)
        if parser.kept == 0:
            if not parser.refused:
                raise CellsFileError(f"{path}: no data rows after the header")
            first = parser.refused[0]
            raise CellsFileError(f"{path}: every row refused ({len(parser.refused)}); the first: "
                                 f"{first.message(str(path))}")
        yield table  # the last chunk, maybe empty: its `refused` is the file's


class _Records:
    """The file's data records as (line, fields), read block by block.

    Plain lines (no quote, no carriage return inside, shorter than a field may be) are split at
    commas, which is what the csv module makes of them; from the first line that is not plain,
    the rest of the file goes through `csv.reader` (quotes, fields over lines, its field limit),
    numbered on from there. Blank records are skipped; the line of a record is the file line it
    ends on, as `csv.reader.line_num` counts."""

    def __init__(self, path: Path, lines: _TextLines):
        self.path, self.lines = path, lines
        self.reader = None  # csv.reader once a line is not plain
        self.offset = 0  # file lines read before the csv reader took over
        self.back: list[str] = []

    def _plain(self, text: str) -> list[str] | None:
        body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
        if '"' in body or "\r" in body or len(body) > MAX_FIELD_BYTES // 4:
            return None
        return body.split(",")

    def _slow(self, first: str) -> None:
        self.offset = self.lines.number - 1
        self.reader = csv.reader(_Chain(first, self.lines), strict=True)

    def _next_slow(self) -> tuple[int, list[str]] | None:
        row = _next_row(self.path, self.reader, self.offset)
        return None if row is None else (self.offset + self.reader.line_num, row)

    def header(self) -> list[str] | None:
        got = self.block(1, skip_blank=False)
        return got[0][1] if got else None

    def block(self, n: int, skip_blank: bool = True) -> list[tuple[int, list[str]]]:
        out: list[tuple[int, list[str]]] = []
        while len(out) < n:
            if self.reader is None:
                text = next(self.lines, None)
                if text is None:
                    break
                row = self._plain(text)
                if row is None:
                    self._slow(text)
                    continue
                line = self.lines.number
            else:
                got = self._next_slow()
                if got is None:
                    break
                line, row = got
            if not skip_blank or (row and row[0].strip()) or any(c.strip() for c in row):  # mostly the first field
                out.append((line, row))
        return out


class _Chain:
    """One line already read, then the rest of `lines` (the csv reader's input)."""

    def __init__(self, first: str, lines):
        self.first, self.lines = first, lines

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        return next(self.lines)


class _TextLines:
    """The file's lines as UTF-8 text (a leading BOM dropped), each bounded in length."""

    def __init__(self, path: Path, handle):
        self._path, self._handle, self.number = path, handle, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self._handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise CellsFileError(f"{self._path}:{self.number}: line longer than {MAX_LINE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CellsFileError(f"{self._path}:{self.number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                                 f"column {exc.start + 1}); save the file as UTF-8") from None
        if self.number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        return text


def _next_row(path: Path, reader, offset: int = 0) -> list[str] | None:
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise CellsFileError(f"{path}:{offset + reader.line_num}: not readable as CSV: {exc}") from None


def _check_header(path: Path, header: list[str], required: tuple[str, ...]) -> None:
    if ID_COLUMN not in header:
        raise CellsFileError(f"{path}:1: no {ID_COLUMN!r} column in the header")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CellsFileError(f"{path}:1: duplicate columns {duplicates}")
    missing = [name for name in required if name not in header]
    if missing:
        raise CellsFileError(f"{path}:1: missing required columns {missing}")


class _RowParser:
    """Rows -> tables, chunk by chunk, with the file-wide state: ids seen, refusals, bad optional columns."""

    def __init__(self, path: Path, header: list[str], required: tuple[str, ...], strict: bool):
        self.path, self.header = path, header
        self.width = len(header)
        self.id_index = header.index(ID_COLUMN)
        self.needed = set(range(self.width)) if strict else {header.index(name) for name in (*required, ID_COLUMN)}
        self.ranged = [(j, name, *PHYSICAL_RANGES[name]) for j, name in enumerate(header) if name in PHYSICAL_RANGES]
        self.bad_optional: set[int] = set()
        self.seen: dict[int, int] = {}
        self.refused: list[Refusal] = []
        self.kept = 0

    def parse_block(self, rows: list[tuple[int, list[str]]]) -> CellTable:
        """`parse`, column by column for a block of plain rows; any row the vectorised path is not
        sure of (a width, a non-number, an id that is no plain integer or repeats) sends the block
        through `parse`, which names the file, line and field as ever."""
        fast = self._columns(rows)
        if fast is None:
            return self.parse(rows)
        values, ids = fast
        self.seen.update(zip(ids.tolist(), [line for line, _ in rows]))
        return self._finish(rows, values, ids, {})

    def _columns(self, rows: list[tuple[int, list[str]]]) -> tuple[np.ndarray, np.ndarray] | None:
        n, width = len(rows), self.width
        if any(len(row) != width for _, row in rows):
            return None
        values = np.full((n, width), np.nan)
        if n == 0:
            return values, np.zeros(0, dtype=np.int64)
        fields = list(zip(*(row for _, row in rows)))  # column by column
        try:
            ids = np.array([int(text) for text in fields[self.id_index]], dtype=np.int64)
        except (ValueError, OverflowError):
            return None
        ordered = np.sort(ids)  # not np.unique: it imports numpy.ma (25 ms of a grade's start)
        if (ordered[1:] == ordered[:-1]).any() or not self.seen.keys().isdisjoint(ids.tolist()):
            return None
        for j in range(width):
            if j == self.id_index or j in self.bad_optional:
                continue
            try:
                column = np.fromiter(map(float, fields[j]), dtype=np.float64, count=n)
            except ValueError:
                return None
            if not np.isfinite(column).all():
                return None
            values[:, j] = column
        return values, ids

    def parse(self, rows: list[tuple[int, list[str]]]) -> CellTable:
        path, header, width = self.path, self.header, self.width
        values = np.full((len(rows), width), np.nan)
        ids = np.zeros(len(rows), dtype=np.int64)
        id_refusals: dict[int, str] = {}
        for k, (line, row) in enumerate(rows):
            if len(row) != width:
                raise CellsFileError(f"{path}:{line}: {len(row)} fields, the header has {width}")
            for j, text in enumerate(row):
                if j == self.id_index:
                    continue
                number = _to_float(text)
                if number is None:
                    if j in self.needed:
                        raise CellsFileError(f"{path}:{line}: column {header[j]!r}: not a finite number: {text[:40]!r}")
                    self.bad_optional.add(j)
                else:
                    values[k, j] = number
            cell, why = _to_cell_id(row[self.id_index].strip())
            if cell is None and why is None:
                raise CellsFileError(f"{path}:{line}: column {ID_COLUMN!r}: not a finite number: "
                                     f"{row[self.id_index].strip()[:40]!r}")
            if cell is None:
                id_refusals[k] = why
                continue
            if cell in self.seen:
                raise CellsFileError(f"{path}:{line}: {ID_COLUMN} {cell} repeats line {self.seen[cell]}")
            self.seen[cell] = line
            ids[k] = cell
        return self._finish(rows, values, ids, id_refusals)

    def _finish(self, rows: list[tuple[int, list[str]]], values: np.ndarray, ids: np.ndarray,
                id_refusals: dict[int, str]) -> CellTable:
        """Physical ranges -> refusals; the chunk's table of the rows kept."""
        path, header = self.path, self.header
        ranged = [(j, name, lo, hi, unit) for j, name, lo, hi, unit in self.ranged if j not in self.bad_optional]
        columns_j = [j for j, *_ in ranged]
        inside = (values[:, columns_j] >= [lo for _, _, lo, _, _ in ranged]) & \
                 (values[:, columns_j] <= [hi for _, _, _, hi, _ in ranged])
        keep = inside.all(axis=1)
        keep[list(id_refusals)] = False
        for k in np.flatnonzero(~keep).tolist():
            line, row = rows[k]
            if k in id_refusals:
                field_name, reason = ID_COLUMN, id_refusals[k]
            else:
                bad = [(name, values[k, j], lo, hi, unit) for (j, name, lo, hi, unit), ok in zip(ranged, inside[k]) if not ok]
                field_name = bad[0][0]
                reason = "; ".join(f"{name} = {value:.6g} {unit} is outside the physical range {lo:g}..{hi:g} {unit}"
                                   for name, value, lo, hi, unit in bad)
            self.refused.append(Refusal(line, row[self.id_index].strip()[:40], field_name, reason))
        self.kept += int(keep.sum())
        columns = {name: values[keep, j] for j, name in enumerate(header)
                   if j != self.id_index and j not in self.bad_optional}
        lines = np.array([line for line, _ in rows], dtype=np.int64)[keep]
        return CellTable(source=str(path), cell_ids=ids[keep], columns=columns, lines=lines,
                         refused=tuple(self.refused))


def _to_float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _to_cell_id(text: str) -> tuple[int | None, str | None]:
    """(id, None), or (None, why it is no id), or (None, None) when it is no number at all."""
    try:
        cell = int(text)
    except ValueError:
        number = _to_float(text)
        if number is None:
            return None, None
        if number != math.floor(number):
            return None, f"{ID_COLUMN} {text!r} is not a whole number"
        if not -_INT64 <= number < _INT64:
            return None, f"{ID_COLUMN} {text!r} does not fit a 64-bit integer"
        if abs(number) > _ID_FLOAT_EXACT:
            return None, f"{ID_COLUMN} {text!r} is beyond 2^53, where a number in that notation is not exact"
        cell = int(number)
    if not -_INT64 <= cell < _INT64:
        return None, f"{ID_COLUMN} {text[:40]!r} does not fit a 64-bit integer"
    return cell, None


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

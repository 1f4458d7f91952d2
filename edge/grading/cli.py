"""`discharge-edge grade`: SOC with an interval, SOH estimate and tier per battery, then the MI table.

Owns the subcommand (registered through the entry point `grade = "edge.grading.cli:register"`),
`grade_cells` (the grading of a feature matrix; edge.strategy.planner calls it) and `grade_file`
(the command's: a cells CSV read and predicted in chunks, so memory does not grow with the file
beyond a few numbers per battery; the benchmark measures it). Only `cell_id` and the `feat_*`
columns are used; rows outside the physical ranges (edge.grading.features) are not graded and
are listed under `refused` (line, cell_id, field, reason) and on stderr. Serves the shipped model
(edge.grading.soc_model), builds tiers (edge.grading.tiers). The MI table is the one measured on
the training cells at export (feature vs SOH, copula entropy in nats), read from the metadata.
Exit codes: 0 done, 1 model refused, 2 bad input (also: every row refused).
Tests: tests/edge/grading/test_grading_cli.py, tests/edge/grading/test_grading_refusals.py,
tests/edge/grading/test_grading_bench.py, tests/edge/grading/test_grading_golden.py (the grades of
800 held-out cells against those before issue 19's speed work), tests/edge/grading/test_grading_report_json.py
(`report_json`, the --json text; `one_blas_thread`).
"""

from __future__ import annotations

import argparse
import logging
import json
import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.grading.features import (
    CHUNK_ROWS,
    FEATURE_COLUMNS,
    CellsFileError,
    Refusal,
    feature_matrix,
    iter_cells_csv,
)
from edge.cli import refuse_input
from edge.grading.soc_model import DOMAIN_MARGIN, MAX_DRAWS, MIN_DRAWS, SHIPPED_DIR, ModelIntegrityError, SocModel
from edge.grading.tiers import TierConfig, assign_tiers
from edge.progress import add_progress_argument, progress_enabled, steps

log = logging.getLogger(__name__)

RESISTANCE = FEATURE_COLUMNS.index("feat_r0p1s_mOhm")
POSTERIOR_BATCH_ROWS = 4 * CHUNK_ROWS
"""Rows whose physics posterior `grade_file` computes at once (the reader's chunks gathered): the
posterior's cost per grid row is paid once a batch (10 000 rows in one batch: 0.26 s of CPU, in
4 096-row chunks 0.42 s). Each reader chunk is still predicted on its own, with its own noise
(seed 0, + 1 each 1 024 batteries), so the grades do not depend on this number."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("grade", help="SOC, SOH estimate and tier per battery from arrival-test features")
    parser.add_argument("--cells", required=True, type=Path, help="CSV with cell_id and the feat_* columns")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_progress_argument(parser)
    parser.add_argument("--tiers", type=int, default=TierConfig.n_tiers, help="number of tiers (default %(default)s)")
    parser.add_argument("--quality-threshold", type=float, default=TierConfig.quality_threshold,
                        help="simplified silhouette below which batteries join centres by Mahalanobis distance")
    parser.add_argument("--draws", type=int, default=None, help="noise draws per battery (default: the model's)")
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_DIR, help="folder of soc_gan.onnx/.json")
    parser.set_defaults(func=run)


@dataclass
class _Graded:
    """Per battery, what the report needs: small arrays, gathered chunk by chunk."""

    cell_ids: list = field(default_factory=list)
    soc: list = field(default_factory=list)
    lo: list = field(default_factory=list)
    hi: list = field(default_factory=list)
    soh: list = field(default_factory=list)
    r0: list = field(default_factory=list)
    outside: list = field(default_factory=list)

    def add(self, model: SocModel, cell_ids: np.ndarray, x: np.ndarray, draws: int | None) -> None:
        self.add_chunks(model, [(cell_ids, x)], draws)

    def add_chunks(self, model: SocModel, chunks: list[tuple[np.ndarray, np.ndarray]], draws: int | None) -> None:
        """Chunks of (cell_ids, feat_* rows): one posterior over all of them, then each chunk
        predicted as `SocModel.predict` would predict it alone (its own noise draws)."""
        if not chunks:
            return
        x_all = np.concatenate([x for _, x in chunks])
        soh_all = model.soh(x_all)
        x_std_all = model.standardise(x_all, soh_all)
        first = 0
        for cell_ids, x in chunks:
            rows = slice(first, first + len(x))
            first += len(x)
            pred = model.predict_standardised(x_std_all[rows], draws)
            for name, values in (("cell_ids", cell_ids), ("soc", pred.soc_pct), ("lo", pred.lo_pct), ("hi", pred.hi_pct),
                                 ("soh", soh_all[rows]), ("r0", x[:, RESISTANCE])):
                getattr(self, name).append(np.asarray(values))
        self.outside.extend(model.outside_training(x_all))

    def column(self, name: str) -> np.ndarray:
        return np.concatenate(getattr(self, name)) if getattr(self, name) else np.zeros(0)


def grade_cells(model: SocModel, cell_ids: np.ndarray, x: np.ndarray, config: TierConfig,
                draws: int | None = None, refused: tuple[Refusal, ...] = ()) -> dict:
    """Grade n batteries: a JSON-ready dict (units in the key names). `refused`: the file's rows left
    out (edge.grading.features), listed in the report."""
    graded = _Graded()
    graded.add(model, np.asarray(cell_ids), np.asarray(x, dtype=np.float64), draws)
    return _report(model, graded, config, refused)


def grade_file(model: SocModel, path: Path, config: TierConfig, draws: int | None = None,
               chunk_rows: int = CHUNK_ROWS, progress: bool = False) -> dict:
    """Grade a cells CSV read and predicted `chunk_rows` at a time (the posterior over up to
    POSTERIOR_BATCH_ROWS of them at once): memory holds a few chunks plus a few numbers per
    battery. Raises CellsFileError (nothing graded) as read_cells_csv does. With `progress`, a bar
    on stderr over the file's lines (rows graded, the rate and the time left)."""
    graded, refused, pending = _Graded(), (), []
    with steps(_line_count(path), "grade", unit="row") if progress else nullcontext(_NO_BAR) as bar:
        for table in iter_cells_csv(path, chunk_rows=chunk_rows):
            if len(table):
                pending.append((table.cell_ids, feature_matrix(table)))
            if sum(len(x) for _, x in pending) >= POSTERIOR_BATCH_ROWS:
                graded.add_chunks(model, pending, draws)
                pending = []
            bar.update(len(table) + len(table.refused) - len(refused))
            refused = table.refused
        graded.add_chunks(model, pending, draws)
    return _report(model, graded, config, refused)


def _line_count(path: Path) -> int | None:
    """Rows of a CSV for the bar's total (its line breaks less the header); None when unreadable
    (the reader then names the problem)."""
    try:
        with open(path, "rb") as f:
            return max(0, sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) - 1)
    except OSError:
        return None


def _report(model: SocModel, graded: _Graded, config: TierConfig, refused: tuple[Refusal, ...]) -> dict:
    cell_ids, soc, lo, hi = (graded.column(k) for k in ("cell_ids", "soc", "lo", "hi"))
    soh, r0, outside = graded.column("soh"), graded.column("r0"), graded.outside
    n = len(cell_ids)
    if refused:
        log.warning("%d batteries refused (outside the physical ranges or without a usable cell_id): not graded; "
                    "see refused", len(refused))
    n_outside = sum(1 for names in outside if names)
    if n_outside:
        log.warning("%d of %d batteries have features outside the training range (by more than %g of it): "
                    "their SOC and SOH are extrapolations; see out_of_domain", n_outside, n, DOMAIN_MARGIN)
    n_tiers = min(config.n_tiers, n)
    if n_tiers < config.n_tiers:
        log.warning("%d batteries: %d tiers instead of %d", n, n_tiers, config.n_tiers)
    config = TierConfig(n_tiers=n_tiers, quality_threshold=config.quality_threshold)
    tiers = assign_tiers({"soc_pct": soc, "soh": soh, "r0p1s_mOhm": r0}, config)
    cells = [  # the columns as Python numbers first (tolist), rounded after: the numbers round(float(v)) gives
        {"cell_id": c, "soc_pct": round(s, 3), "soc_lo_pct": round(a, 3), "soc_hi_pct": round(b, 3),
         "soh_est": round(h, 4), "tier": t, "out_of_domain": o}
        for c, s, a, b, h, t, o in zip(np.asarray(cell_ids, dtype=np.int64).tolist(),
                                       *(np.asarray(v, dtype=np.float64).tolist() for v in (soc, lo, hi, soh)),
                                       np.asarray(tiers.tiers, dtype=np.int64).tolist(), outside)
    ]
    centres = [
        {"tier": k + 1, "cell_id": int(cell_ids[row]), **{name: round(float(v), 4) for name, v in zip(tiers.criteria, centre)}}
        for k, (row, centre) in enumerate(zip(tiers.centre_rows, tiers.centres))
    ]
    return {
        "model": {"file": str(model.metadata_path), "model_sha256": model.meta["model_sha256"]},
        "n_cells": len(cells),
        "soc_interval_level": model.interval_level,
        "cells": cells,
        "n_refused": len(refused),
        "refused": [r.to_dict() for r in refused],
        "tiers": {
            "n_tiers": n_tiers,
            "criteria": list(tiers.criteria),
            "centres": centres,
            "quality_measure": "simplified silhouette",
            "quality_initial": round(tiers.quality_initial, 4),
            "quality_final": round(tiers.quality_final, 4),
            "quality_threshold": config.quality_threshold,
            "reassigned_by_mahalanobis": tiers.reassigned,
        },
        "mi_table": [
            {"feature": row["feature"], "mi_soh_nats": row["mi_nats"], "copula": row["copula"],
             "marginal_feature": row["marginal_x"], "marginal_soh": row["marginal_y"]}
            for row in model.meta["mi_table_soh"]
        ],
    }


_BLAS_THREAD_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                        "openblas_set_num_threads64_", "openblas_set_num_threads")


def one_blas_thread() -> None:
    """OpenBLAS's own threads off for this process (the command's; best effort, nothing if numpy's
    BLAS is another). grade's products are small (the posterior keeps under the size OpenBLAS
    threads at) or memory-bound (the SOH ridge's 10 000 x 119, the tiers' covariance), and after a
    threaded call its worker spins on the other core for a while: grade at 10 000 rows took 1.22-1.49 s
    of CPU with the pool, 1.10-1.20 s without (OPENBLAS_NUM_THREADS=1), the same JSON."""
    try:
        import ctypes

        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1] and ".so" in line}
        for path in sorted(paths):
            library = ctypes.CDLL(path)
            setter = next((getattr(library, name) for name in _BLAS_THREAD_SETTERS if hasattr(library, name)), None)
            if setter is not None:
                setter(1)
    except (OSError, ValueError, AttributeError, ImportError):
        pass


class _NoBar:
    """What `steps` gives when the bar is off, without making one (tqdm's lock imports multiprocessing)."""

    @staticmethod
    def update(n: int = 1) -> None:
        pass


_NO_BAR = _NoBar()
_CELL_KEYS = ("cell_id", "soc_pct", "soc_lo_pct", "soc_hi_pct", "soh_est", "tier", "out_of_domain")
_CELL_TYPES = (int, float, float, float, float, int, list)
_CELL_TEXT = ('    {{\n      "cell_id": {0!r},\n      "soc_pct": {1!r},\n      "soc_lo_pct": {2!r},\n'
              '      "soc_hi_pct": {3!r},\n      "soh_est": {4!r},\n      "tier": {5!r},\n'
              '      "out_of_domain": {6}\n    }}')


def report_json(report: dict) -> str:
    """`json.dumps(report, indent=2, allow_nan=False)` (edge.cli.print_json's text), with the cells
    formatted by one template each: 0.03 s for 10 000 batteries where json's indented encoder, all
    Python, takes 0.09 s. Anything the template is not sure of (a key, a type, a value that is not
    finite) goes through json.dumps whole."""
    cells = report.get("cells")
    body = _cells_text(cells) if isinstance(cells, list) else None
    if body is None:
        return json.dumps(report, indent=2, allow_nan=False)
    marker = "@cells, formatted apart@"
    head = json.dumps({**report, "cells": marker}, indent=2, allow_nan=False)
    return head.replace(json.dumps(marker), "[\n" + body + "\n  ]" if cells else "[]", 1)


def _cells_text(cells: list) -> str | None:
    """The cells as json.dumps(indent=2) writes them inside the report; None when unsure."""
    out, total = [], 0.0
    for cell in cells:
        if type(cell) is not dict or tuple(cell) != _CELL_KEYS:
            return None
        values = tuple(cell.values())
        if tuple(map(type, values)) != _CELL_TYPES:
            return None
        total += values[1] + values[2] + values[3] + values[4]  # a nan or an inf stays in the sum
        names = _names_json(values[6])
        if names is None:
            return None
        out.append(_CELL_TEXT.format(*values[:6], names))
    return ",\n".join(out) if math.isfinite(total) else None


def _names_json(names: list) -> str | None:
    if not names:
        return "[]"
    if not all(type(name) is str for name in names):
        return None
    return "[\n" + ",\n".join("        " + json.dumps(name) for name in names) + "\n      ]"


def _print_text(report: dict) -> None:
    level = int(round(100 * report["soc_interval_level"]))
    print(f"{'cell_id':>8} {'soc_pct':>8} {f'{level}% interval':>17} {'soh_est':>8} {'tier':>4}")
    for c in report["cells"]:
        flag = f"  outside training: {', '.join(c['out_of_domain'])}" if c["out_of_domain"] else ""
        print(f"{c['cell_id']:>8} {c['soc_pct']:8.1f}   [{c['soc_lo_pct']:5.1f}, {c['soc_hi_pct']:5.1f}] "
              f"{c['soh_est']:8.3f} {c['tier']:>4}{flag}")
    t = report["tiers"]
    print(f"\ntiers: {t['n_tiers']}, simplified silhouette {t['quality_initial']:.3f} "
          f"(threshold {t['quality_threshold']}), reassigned by Mahalanobis: {t['reassigned_by_mahalanobis']}")
    if report["refused"]:
        print(f"\nrefused (not graded): {report['n_refused']}")
        for r in report["refused"]:
            print(f"  line {r['line']}: cell_id {r['cell_id']}: {r['reason']}")
    print("\nmutual information with SOH (training cells, nats)")
    for row in report["mi_table"]:
        print(f"  {row['feature']:20s} {row['mi_soh_nats']:7.4f}  copula {row['copula']}")


def run(args: argparse.Namespace) -> int:
    try:
        config = TierConfig(n_tiers=args.tiers, quality_threshold=args.quality_threshold)
        if args.draws is not None and not MIN_DRAWS <= args.draws <= MAX_DRAWS:
            raise ValueError(f"--draws must be in {MIN_DRAWS}..{MAX_DRAWS}, got {args.draws}")
    except ValueError as exc:
        print(f"discharge-edge grade: {exc}", file=sys.stderr)
        return 2
    one_blas_thread()
    try:
        model = SocModel.load(args.model_dir)
    except ModelIntegrityError as exc:
        print(f"discharge-edge grade: model refused: {exc}", file=sys.stderr)
        return 1
    try:
        report = grade_file(model, args.cells, config, args.draws, progress=progress_enabled(args))
    except CellsFileError as exc:  # edge.cli's one input-error path
        return refuse_input("grade", args.cells, exc)
    for refusal in report["refused"]:
        print(f"discharge-edge grade: {args.cells}:{refusal['line']}: cell_id {refusal['cell_id']}: refused: "
              f"{refusal['reason']}", file=sys.stderr)
    if args.json:
        sys.stdout.write(report_json(report) + "\n")  # edge.cli.print_json's text, made faster
        sys.stdout.flush()
    else:
        _print_text(report)
    return 0

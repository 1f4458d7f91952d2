"""`discharge-edge grade`: SOC with an interval, SOH estimate and tier per battery, then the MI table.

Owns the subcommand (registered through the entry point `grade = "edge.grading.cli:register"`)
and `grade_cells`, the end-to-end grading of a feature matrix that the benchmark measures.
Reads a cells CSV (only `cell_id` and the `feat_*` columns are used), serves the shipped model
(edge.grading.soc_model), builds tiers (edge.grading.tiers). The MI table is the one measured on
the training cells at export (feature vs SOH, copula entropy in nats), read from the metadata.
Exit codes: 0 done, 1 model refused, 2 bad input. Tests: tests/edge/grading/test_grading_cli.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from edge.grading.features import FEATURE_COLUMNS, CellsFileError, feature_matrix, read_cells_csv
from edge.grading.soc_model import DOMAIN_MARGIN, SHIPPED_DIR, ModelIntegrityError, SocModel
from edge.grading.tiers import TierConfig, assign_tiers

log = logging.getLogger(__name__)

RESISTANCE = FEATURE_COLUMNS.index("feat_r0p1s_mOhm")


def register(subparsers) -> None:
    parser = subparsers.add_parser("grade", help="SOC, SOH estimate and tier per battery from arrival-test features")
    parser.add_argument("--cells", required=True, type=Path, help="CSV with cell_id and the feat_* columns")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tiers", type=int, default=TierConfig.n_tiers, help="number of tiers (default %(default)s)")
    parser.add_argument("--quality-threshold", type=float, default=TierConfig.quality_threshold,
                        help="simplified silhouette below which batteries join centres by Mahalanobis distance")
    parser.add_argument("--draws", type=int, default=None, help="noise draws per battery (default: the model's)")
    parser.add_argument("--model-dir", type=Path, default=SHIPPED_DIR, help="folder of soc_gan.onnx/.json")
    parser.set_defaults(func=run)


def grade_cells(model: SocModel, cell_ids: np.ndarray, x: np.ndarray, config: TierConfig,
                draws: int | None = None) -> dict:
    """Grade n batteries: a JSON-ready dict (units in the key names)."""
    pred = model.predict(x, draws)
    soh = model.soh(x)
    outside = model.outside_training(x)
    n_outside = sum(1 for names in outside if names)
    if n_outside:
        log.warning("%d of %d batteries have features outside the training range (by more than %g of it): "
                    "their SOC and SOH are extrapolations; see out_of_domain", n_outside, len(x), DOMAIN_MARGIN)
    n_tiers = min(config.n_tiers, len(x))
    if n_tiers < config.n_tiers:
        log.warning("%d batteries: %d tiers instead of %d", len(x), n_tiers, config.n_tiers)
    config = TierConfig(n_tiers=n_tiers, quality_threshold=config.quality_threshold)
    criteria = {"soc_pct": pred.soc_pct, "soh": soh, "r0p1s_mOhm": x[:, RESISTANCE]}
    tiers = assign_tiers(criteria, config)
    cells = [
        {"cell_id": int(c), "soc_pct": round(float(s), 3), "soc_lo_pct": round(float(lo), 3),
         "soc_hi_pct": round(float(hi), 3), "soh_est": round(float(h), 4), "tier": int(t), "out_of_domain": o}
        for c, s, lo, hi, h, t, o in zip(cell_ids, pred.soc_pct, pred.lo_pct, pred.hi_pct, soh, tiers.tiers, outside)
    ]
    centres = [
        {"tier": k + 1, "cell_id": int(cell_ids[row]), **{name: round(float(v), 4) for name, v in zip(tiers.criteria, centre)}}
        for k, (row, centre) in enumerate(zip(tiers.centre_rows, tiers.centres))
    ]
    return {
        "model": {"file": str(model.metadata_path), "model_sha256": model.meta["model_sha256"]},
        "n_cells": len(cells),
        "soc_interval_level": pred.level,
        "cells": cells,
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
    print("\nmutual information with SOH (training cells, nats)")
    for row in report["mi_table"]:
        print(f"  {row['feature']:20s} {row['mi_soh_nats']:7.4f}  copula {row['copula']}")


def run(args: argparse.Namespace) -> int:
    try:
        config = TierConfig(n_tiers=args.tiers, quality_threshold=args.quality_threshold)
        if args.draws is not None and not 2 <= args.draws <= 1024:
            raise ValueError(f"--draws must be in 2..1024, got {args.draws}")
        table = read_cells_csv(args.cells)
        x = feature_matrix(table)
    except (CellsFileError, ValueError) as exc:
        print(f"discharge-edge grade: {exc}", file=sys.stderr)
        return 2
    try:
        model = SocModel.load(args.model_dir)
    except ModelIntegrityError as exc:
        print(f"discharge-edge grade: model refused: {exc}", file=sys.stderr)
        return 1
    report = grade_cells(model, table.cell_ids, x, config, args.draws)
    if args.json:
        from edge.cli import print_json

        print_json(report)
    else:
        _print_text(report)
    return 0

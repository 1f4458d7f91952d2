"""Training data for the SOC GAN: the fixed split by cell_id, scalers, MI weights and MI targets.

Owns `load_split` (train/test by a seeded permutation of cell_ids: the test cells are never
seen by training, tuning, calibration or the SOH regression), `Standardiser`, and the MI
quantities the generator uses: per-feature weights from the copula MI (edge.grading.mutual_info)
and the lower bounds of the MI constraint (normal-score Gaussian MI between each feature and
the true SOC on the training cells). A row the cells reader refuses (a feature outside
edge.grading.features.PHYSICAL_RANGES) is no training data: it stays out of both sets, is logged
as a warning with its file line and reason, and is listed in `Split.refused` (the training
report can name it). Tests: tests/models/test_soc_gan.py, tests/models/test_soc_gan_data.py.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special, stats

from edge import REPO_ROOT
from edge.grading.features import FEATURE_COLUMNS, Refusal, feature_matrix, read_cells_csv, target_column
from edge.grading.mutual_info import MIConfig, mi_table

log = logging.getLogger(__name__)

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
SPLIT_SEED = 20261123
TEST_FRACTION = 0.2
MI_WEIGHT_FLOOR = 0.25
AGEING_COLUMNS = ("truth_lli", "truth_lam_ne", "truth_lam_pe")


@dataclass(frozen=True)
class Split:
    """Feature matrices and targets (SOC in %, SOH as a fraction) of the train and test cells."""

    source: str
    data_sha256: str
    x_train: np.ndarray
    soc_train_pct: np.ndarray
    soh_train: np.ndarray
    ageing_train: np.ndarray
    """(n, 3) truth_lli, truth_lam_ne, truth_lam_pe: the physics prior's states, never an input."""
    ids_train: np.ndarray
    x_test: np.ndarray
    soc_test_pct: np.ndarray
    soh_test: np.ndarray
    ids_test: np.ndarray
    refused: tuple[Refusal, ...] = ()
    """The file's rows left out by the reader (line, cell_id, field, reason): in neither set."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def held_out_mask(cell_ids: np.ndarray, seed: int = SPLIT_SEED, fraction: float = TEST_FRACTION) -> np.ndarray:
    """Boolean mask of the held-out cells: a seeded permutation of the sorted cell_ids."""
    order = np.random.default_rng(seed).permutation(np.sort(cell_ids))
    held = set(order[: int(round(fraction * len(cell_ids)))].tolist())
    return np.array([c in held for c in cell_ids.tolist()])


def load_split(path: str | Path = TRAIN_CSV, seed: int = SPLIT_SEED) -> Split:
    table = read_cells_csv(path)
    for refusal in table.refused:
        log.warning("training data: %s (left out of training and test)", refusal.message(table.source))
    x = feature_matrix(table, FEATURE_COLUMNS)
    soc = 100.0 * target_column(table, "truth_soc")
    soh = target_column(table, "truth_soh")
    ageing = np.column_stack([target_column(table, name) for name in AGEING_COLUMNS])
    test = held_out_mask(table.cell_ids, seed)
    return Split(
        source=str(path),
        data_sha256=sha256_file(path),
        x_train=x[~test], soc_train_pct=soc[~test], soh_train=soh[~test], ageing_train=ageing[~test], ids_train=table.cell_ids[~test],
        x_test=x[test], soc_test_pct=soc[test], soh_test=soh[test], ids_test=table.cell_ids[test],
        refused=table.refused,
    )


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        std = x.std(axis=0)
        return cls(mean=x.mean(axis=0), std=np.where(std > 0, std, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Column-wise Phi^-1(rank / (n + 1))."""
    x = np.atleast_2d(np.asarray(x, dtype=float).T).T
    return special.ndtri(stats.rankdata(x, axis=0) / (x.shape[0] + 1.0))


def gaussian_copula_mi(a: np.ndarray, b: np.ndarray) -> float:
    """-1/2 log(1 - r^2), r the correlation of normal scores: a lower bound of I(A;B)."""
    r = np.corrcoef(normal_scores(a)[:, 0], normal_scores(b)[:, 0])[0, 1]
    return float(-0.5 * np.log1p(-min(r * r, 0.999999)))


@dataclass(frozen=True)
class MIInfo:
    """MI tables (copula entropy, nats), generator input weights, constraint lower bounds."""

    table_soh: list[dict]
    table_soc: list[dict]
    weights: np.ndarray
    targets_nats: np.ndarray


def mutual_information(x: np.ndarray, names: tuple[str, ...], soh: np.ndarray, soc_pct: np.ndarray,
                       config: MIConfig = MIConfig()) -> MIInfo:
    """MI of each generator input (columns of x, called `names`) with SOH and with SOC."""
    soh_rows = [row.as_row() for row in mi_table(x, names, soh, config)]
    soc_rows = [row.as_row() for row in mi_table(x, names, soc_pct, config)]
    m = np.array([a["mi_nats"] + b["mi_nats"] for a, b in zip(soh_rows, soc_rows)])
    weights = MI_WEIGHT_FLOOR + (1.0 - MI_WEIGHT_FLOOR) * m / m.max()
    targets = np.array([gaussian_copula_mi(x[:, j], soc_pct) for j in range(len(m))])
    return MIInfo(soh_rows, soc_rows, weights, targets)

"""SOC from the rest voltage by Bayes over the ageing states of the training population (S11).

The rest voltage is the OCV plus an unknown offset (hysteresis, incomplete relaxation: up to
+-10 mV in the data). Which SOC an OCV means depends on how the cell aged (edge.grading.
electrochem): the same 3.70 V is a different SOC after loss of lithium than after loss of
graphite. The arrival test tells us about the ageing in two ways, and this module weighs them:

- the SOH estimate (edge.grading.soh_model) against each prior cell's SOH, Gaussian with the
  estimate's own validation spread;
- the relaxation after the 10 s pulse: the rest voltage before minus after
  (`feat_v_rest_V - feat_v_relax60s_V`) is mostly the OCV drop of the pulse's charge, which is
  the local slope of the OCV curve: flat on a graphite plateau, steep between them. The rest is
  overpotential not yet relaxed after 60 s, which grows with resistance. A linear map fitted on
  the training cells (`relaxation_terms`: the measured drop, the three DC resistances, the sag
  from 5 s to 10 s of the pulse, the cell temperature) estimates the OCV drop (mV) with a known
  spread, compared with the drop each prior cell would show at its SOC.

For each battery, each prior ageing state k (the degradation modes of the training cells,
never the battery's own) and each offset h on a uniform grid, SOC_kh = OCV_k^-1(v_rest - h);
the weights are the two likelihoods. The result is the posterior mean and standard deviation
of SOC, in %: two derived state parameters the SOC generator takes beside the feat_* columns.
Tables: per grid point of a uniform voltage grid and prior state, SOC and OCV drop. The sum over
(state, battery, offset), about 143 million terms for 10 000 batteries, is two float32 matrix
products and one exp per pair of battery and offset (see `estimate`): 10 000 batteries 0.19-0.25 s
of CPU, was 1.37 s (the per-state gathers); within 2e-5 pp of the previous sum, and of a float64
reference within 1e-3 pp in tests, with every prior state (the previous sum skipped those more
than 5 SOH spreads away). The sum's grid rows are split between POSTERIOR_THREADS threads.
The tables (20.7 MB for the shipped 680 states, 0.13-0.25 s of CPU to build) are kept in a cache
folder by `posterior_tables` (edge.grading.soc_model: the checkout's build/grading/), keyed by
everything they depend on. Tests: tests/edge/grading/test_grading_soc_physics.py,
tests/edge/grading/test_grading_fast_reader.py, tests/edge/grading/test_grading_tables.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.grading import electrochem
from edge.grading.electrochem import solve_windows
from edge.grading.features import FEATURE_COLUMNS

log = logging.getLogger(__name__)

SOC_GRID = np.linspace(0.0, 1.0, 2001)
V_GRID_LO_V, V_GRID_HI_V, V_GRID_STEP_V = 2.4, 4.3, 0.0005
V_GRID = np.arange(V_GRID_LO_V, V_GRID_HI_V + V_GRID_STEP_V / 2, V_GRID_STEP_V)
DERIVED_COLUMNS = ("phys_soc_pct", "phys_soc_sd_pct")
"""The generator's inputs after the feat_* columns: posterior mean and sd of SOC (%)."""
RELAXATION_TERMS = ("drop_rest_to_relax60s_mV", "feat_r0p1s_mOhm", "feat_r1s_mOhm", "feat_r10s_mOhm",
                    "sag_p5s_to_p10s_mV", "feat_t_cell_C")
PULSE_CHARGE_AH = 5.0 * 10.0 / 3600.0
"""Charge the arrival test's pulse removes: 5 A for 10 s."""
_COL = {name: FEATURE_COLUMNS.index(name) for name in FEATURE_COLUMNS}
_TERMS_PER_PRODUCT = 65536
"""(battery, offset) pairs x prior states per float32 product (the shipped 680 states: 96 pairs; the
products 96 x 8 x 680 and 96 x 680 x 6): below the size at which this OpenBLAS starts its threads
(between 160 and 192 pairs of 680 here), whose workers cost 10-50x the time on a loaded 2-core
machine; 48 pairs were 5 % slower, 128 no faster."""
_ROWS_PER_BLOCK = 64
"""Grid rows whose factor matrices are built at once: 64 x 14 x 680 states x 4 bytes, 2.4 MB (256
rows, 9.7 MB, took 0.20-0.31 s of CPU at 10 000 batteries where 64 took 0.19-0.21; the same numbers)."""
TABLES_PREFIX = "posterior_tables_"
TABLES_KEPT = 4
"""Tables files kept in the cache folder (the newest): one per physics a model folder holds."""
_FAINT_WEIGHT = 1e-30
"""A battery's summed weight at or below this (best log-weight under about -69) is summed again, shifted."""
POSTERIOR_THREADS = min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
"""Threads the posterior's sum runs on (its grid rows split between them): numpy's products and exp
release the GIL, so two cores take about half the time when both are free."""
_PAIRS_PER_THREAD = 4096
"""Fewer (battery, offset) pairs than this a thread: not worth a thread's start."""
LOADAVG_FILE = "/proc/loadavg"
"""Its fourth field counts the system's runnable tasks now (`threads_now`)."""


def relaxation_terms(features: np.ndarray) -> np.ndarray:
    """(n, 6) in RELAXATION_TERMS order, from feat_* columns (n, 14) in FEATURE_COLUMNS order."""
    x = np.asarray(features, dtype=float)
    return np.column_stack([
        1e3 * (x[:, _COL["feat_v_rest_V"]] - x[:, _COL["feat_v_relax60s_V"]]),
        x[:, _COL["feat_r0p1s_mOhm"]], x[:, _COL["feat_r1s_mOhm"]], x[:, _COL["feat_r10s_mOhm"]],
        1e3 * (x[:, _COL["feat_v_p5s_V"]] - x[:, _COL["feat_v_p10s_V"]]),
        x[:, _COL["feat_t_cell_C"]],
    ])


def build_tables(params: PhysicsParams) -> np.ndarray:
    """(2, len(V_GRID), n states) float32: the SOC (fraction) at each grid voltage of each prior
    state's OCV curve, and the OCV drop (mV) the arrival test's pulse makes from there."""
    n = len(params.prior_lli)
    tables = np.empty((2, n, len(V_GRID)), dtype=np.float32)
    ageing = np.array([params.prior_lli, params.prior_lam_ne, params.prior_lam_pe], dtype=float)[:, :, None]
    windows = solve_windows(*ageing)  # each field (n, 1)
    curves = windows.ocv_v(SOC_GRID[None, :])  # (n, len(SOC_GRID)), rising with SOC
    for k in range(n):
        soc = np.interp(V_GRID, curves[k], SOC_GRID)
        tables[0, k] = soc
        pulse_soc = params.pulse_charge_ah / windows.cap_ah[k, 0]
        tables[1, k] = 1e3 * (V_GRID - np.interp(soc - pulse_soc, SOC_GRID, curves[k]))
    return tables.transpose(0, 2, 1).copy()


def tables_key(params: PhysicsParams) -> str:
    """What the tables are a function of: the physics parameters, this module's and the electrode
    model's source, numpy's version (np.interp's rounding). Any change gives another key."""
    digest = hashlib.sha256(json.dumps(params.as_dict(), sort_keys=True).encode())
    for module in (__file__, electrochem.__file__):
        digest.update(Path(module).read_bytes())
    digest.update(np.__version__.encode())
    return digest.hexdigest()[:32]


def posterior_tables(params: PhysicsParams, cache_dir: Path | None = None) -> np.ndarray:
    """`build_tables`, kept in `cache_dir` as `posterior_tables_<tables_key>.npy` (20.7 MB for the
    shipped 680 states; built in 0.13-0.25 s of CPU, read in ~0.01 s): a missing, unreadable or
    malformed file is built again and replaced atomically (a temporary file, then a rename), and a
    folder that cannot be written leaves the tables in memory only. Only the newest
    TABLES_KEPT files stay. The first `SocModel.load()` (any grade) makes the shipped model's."""
    if cache_dir is None:
        return build_tables(params)
    path = Path(cache_dir) / f"{TABLES_PREFIX}{tables_key(params)}.npy"
    shape = (2, len(V_GRID), len(params.prior_lli))
    try:
        tables = np.load(path, allow_pickle=False)
        if tables.shape == shape and tables.dtype == np.float32 and np.isfinite(tables).all():
            return tables
        log.warning("%s: posterior tables of shape %s %s, expected %s float32 and finite: built again",
                    path, tables.shape, tables.dtype, shape)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError) as exc:
        log.warning("%s: posterior tables unreadable (%s): built again", path, exc)
    tables = build_tables(params)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # only when writing (its import costs a few ms)

        handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, tables, allow_pickle=False)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from the line's other users
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        kept = sorted(path.parent.glob(TABLES_PREFIX + "*.npy"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-TABLES_KEPT]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        log.info("posterior tables not kept in %s (%s): built each run", cache_dir, exc)
    return tables


@dataclass(frozen=True)
class PhysicsParams:
    """Everything the posterior needs; stored under `physics` in the model metadata."""

    prior_lli: tuple[float, ...]
    prior_lam_ne: tuple[float, ...]
    prior_lam_pe: tuple[float, ...]
    prior_soh: tuple[float, ...]
    relax_coef: tuple[float, ...]
    """OCV drop (mV) = relax_coef . relaxation_terms + relax_offset_mv."""
    relax_offset_mv: float
    relax_sd_mv: float
    soh_sd: float
    hyst_half_width_v: float = 0.010
    hyst_points: int = 21
    pulse_charge_ah: float = PULSE_CHARGE_AH

    def __post_init__(self) -> None:
        n = len(self.prior_lli)
        if n == 0 or any(len(p) != n for p in (self.prior_lam_ne, self.prior_lam_pe, self.prior_soh)):
            raise ValueError("physics prior: lli, lam_ne, lam_pe and soh must be non-empty and of one length")
        if len(self.relax_coef) != len(RELAXATION_TERMS):
            raise ValueError(f"physics: relax_coef must hold {len(RELAXATION_TERMS)} values {RELAXATION_TERMS}")
        if min(self.relax_sd_mv, self.soh_sd, self.pulse_charge_ah) <= 0 or self.hyst_half_width_v < 0 or self.hyst_points < 1:
            raise ValueError("physics: spreads and the pulse charge must be > 0, the offset grid non-empty")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict) -> PhysicsParams:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class SocPosterior:
    """Posterior mean and sd of SOC (%) from rest voltage, relaxation and SOH estimate."""

    def __init__(self, params: PhysicsParams, cache_dir: Path | None = None):
        """`cache_dir`: where the tables are kept between runs (`posterior_tables`); None builds them."""
        self.params = params
        n = len(params.prior_lli)
        # float32 tables, one row a grid point and one column a prior state (the rows a battery's
        # candidate OCVs fall on are what `_moments` reads): SOC and pulse drop at each grid point
        # (their rises to the next point are taken per row, in `_row_factors`). SOC to ~1e-5 pp,
        # far below the +-10 mV offset's reach.
        tables = posterior_tables(params, cache_dir)
        self.soc_table, self.drop_table_mv = tables[0], tables[1]  # (V, n) each
        self._prior_soh = np.asarray(params.prior_soh)
        self._offsets_v = np.linspace(-params.hyst_half_width_v, params.hyst_half_width_v, params.hyst_points)
        # The expanded squares of `_moments` keep their float32 digits when their terms are small:
        # the scaled drop is centred on the middle of its range, SOH on the prior's mean (and SOC on
        # each grid point's mean over the states, in `_moments`).
        self._drop_scale = np.sqrt(0.5) / params.relax_sd_mv
        self._drop_centre_mv = 0.5 * (float(self.drop_table_mv.min()) + float(self.drop_table_mv.max()))
        self._soh_centre = float(self._prior_soh.mean())
        soh = self._prior_soh - self._soh_centre
        self._soh_rows = np.array([np.ones(n), soh, soh * soh], dtype=np.float32)  # rows 5..7 of phi

    def estimated_drop_mv(self, features: np.ndarray) -> np.ndarray:
        """OCV drop of the pulse (mV) estimated from the measured relaxation, feat_* columns (n, 14)."""
        return relaxation_terms(features) @ np.asarray(self.params.relax_coef) + self.params.relax_offset_mv

    def estimate(self, features: np.ndarray, soh_est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) of SOC in %, one value per battery, from feat_* columns (n, 14) and the SOH estimate.

        Every (battery, offset) pair is a candidate OCV on the voltage grid; pairs on one grid
        interval share the tables' row there, so their log-weights over all prior states are one
        float32 product of two small matrices (the squares expanded: a rank-8 form), then exp, then
        one product with [1, SOC, SOC^2] gives each pair's weighted moments. The pairs' moments
        are summed per battery in float64. A battery whose weights all underflow (no prior state
        within about 9 spreads) is summed again, shifted by its largest log-weight."""
        features = np.asarray(features, dtype=float)
        v_rest_v = features[:, _COL["feat_v_rest_V"]]
        soh_est = np.asarray(soh_est, dtype=float)
        drop = (self.estimated_drop_mv(features) - self._drop_centre_mv) * self._drop_scale
        moments = self._moments(v_rest_v, drop, soh_est, np.zeros(len(v_rest_v)))
        faint = np.flatnonzero(~(moments[:, 0] > _FAINT_WEIGHT))
        if len(faint):
            args = (v_rest_v[faint], drop[faint], soh_est[faint])
            moments[faint] = self._moments(*args, -self._moments(*args, np.zeros(len(faint)), best=True)[:, 0])
        s0, s1, s2 = moments.T
        mean = s1 / s0
        return 100.0 * mean, 100.0 * np.sqrt(np.clip(s2 / s0 - mean * mean, 0.0, None))

    def _row_factors(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For grid rows (G,): phi (G, 8, K), the log-weight's factors of each prior state (scaled
        drop u0, its rise du, u0^2, du^2, u0 du, then 1, SOH, SOH^2); q (G, 6, K), [1, a, b, a^2, ab,
        b^2] with a the state's SOC less the row's mean over the states and b its rise; and that
        mean (G,), float32 numbers in float64."""
        scale = np.float32(self._drop_scale)
        following = np.minimum(rows + 1, len(V_GRID) - 1)  # the last row's rise is 0
        drop, drop_next = self.drop_table_mv[rows], self.drop_table_mv[following]  # (G, K) each
        u0 = (drop - np.float32(self._drop_centre_mv)) * scale
        du = np.subtract(drop_next, drop, out=drop_next) * scale
        soc = self.soc_table[rows]
        centre32 = soc.mean(axis=1, dtype=np.float64).astype(np.float32)
        a = soc - centre32[:, None]
        b = np.subtract(self.soc_table[following], soc)
        phi = np.empty((len(rows), 8, u0.shape[1]), dtype=np.float32)
        np.multiply(u0, u0, out=phi[:, 0])
        np.multiply(du, du, out=phi[:, 1])
        np.multiply(u0, du, out=phi[:, 2])
        phi[:, 3], phi[:, 4], phi[:, 5:] = u0, du, self._soh_rows
        q = np.empty((len(rows), 6, u0.shape[1]), dtype=np.float32)
        q[:, 0], q[:, 1], q[:, 2] = 1.0, a, b
        np.multiply(a, a, out=q[:, 3])
        np.multiply(a, b, out=q[:, 4])
        np.multiply(b, b, out=q[:, 5])
        return phi, q, centre32.astype(np.float64)

    def _moments(self, v_rest_v: np.ndarray, drop: np.ndarray, soh_est: np.ndarray, shift: np.ndarray,
                 best: bool = False) -> np.ndarray:
        """Per battery (n, 3): sum of weights, of weight x SOC, of weight x SOC^2 (SOC a fraction),
        each weight exp(log-weight + shift); with `best`, column 0 is the largest log-weight."""
        n, h = len(v_rest_v), len(self._offsets_v)
        pos = ((v_rest_v[:, None] - self._offsets_v[None, :]) - V_GRID_LO_V).ravel() / V_GRID_STEP_V  # (n*h,)
        row = np.clip(np.floor(pos), 0, len(V_GRID) - 2).astype(np.int64)
        t = np.where(pos < 0, 0.0, np.where(pos >= len(V_GRID) - 1, 1.0, np.clip(pos - np.floor(pos), 0.0, 1.0)))
        battery = np.repeat(np.arange(n), h)
        d = drop[battery]
        soh = soh_est[battery] - self._soh_centre
        inv_var = 1.0 / self.params.soh_sd ** 2
        # psi . phi_k = -(u0 + t du - d)^2 - (soh - soh_k)^2 / (2 sd^2) + shift
        psi = np.empty((len(pos), 8), dtype=np.float32)  # each column computed in float64, then rounded
        psi[:, 0], psi[:, 1], psi[:, 2], psi[:, 3], psi[:, 4] = -1.0, -t * t, -2.0 * t, 2.0 * d, 2.0 * t * d
        psi[:, 5] = -d * d - 0.5 * inv_var * soh * soh + shift[battery]
        psi[:, 6], psi[:, 7] = inv_var * soh, -0.5 * inv_var
        # the grid rows fit int16 (V_GRID's 3 801 points), whose stable argsort is a radix sort: the same order
        order = np.argsort(row.astype(np.int16) if len(V_GRID) < 2 ** 15 else row, kind="stable")
        sorted_rows = row[order]
        starts = np.flatnonzero(np.diff(sorted_rows, prepend=-1))  # where each grid row's pairs begin
        rows = sorted_rows[starts]
        ends = np.append(starts[1:], len(order))
        psi = psi[order]
        per_pair = np.zeros((len(pos), 6), dtype=np.float32)  # in `order`
        centre = np.empty(len(rows))
        # the grid rows split between threads at about half the pairs each (numpy's products and
        # exp run without the GIL); each thread's rows are disjoint, so are its outputs
        threads = max(1, min(len(order) // _PAIRS_PER_THREAD, threads_now(POSTERIOR_THREADS)))
        cuts = [0, *np.searchsorted(ends, [len(order) * (i + 1) // threads for i in range(threads - 1)]).tolist(),
                len(rows)]
        in_parallel([lambda a=a, b=b: self._sum_rows(slice(a, b), rows, starts, ends, psi, per_pair, centre, best)
                      for a, b in zip(cuts, cuts[1:])])
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        per_pair = per_pair[back].astype(np.float64)
        if best:
            return per_pair[:, :1].reshape(n, h).max(axis=1, keepdims=True)
        c = centre[np.searchsorted(rows, row)]
        m0 = per_pair[:, 0]
        m1 = per_pair[:, 1] + t * per_pair[:, 2]  # sum w (a + t b)
        m2 = per_pair[:, 3] + 2.0 * t * per_pair[:, 4] + t * t * per_pair[:, 5]  # sum w (a + t b)^2
        raw = np.column_stack([m0, m1 + c * m0, m2 + 2.0 * c * m1 + c * c * m0])
        return raw.reshape(n, h, 3).sum(axis=1)

    def _sum_rows(self, span: slice, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, psi: np.ndarray,
                  per_pair: np.ndarray, centre: np.ndarray, best: bool) -> None:
        """`_moments`' sum over the grid rows rows[span] (their pairs psi[starts[i]:ends[i]]): per
        pair, into per_pair, the 6 moments (with `best`, the largest log-weight in column 0), and
        each row's SOC centre into centre[span]."""
        step = max(8, _TERMS_PER_PRODUCT // len(self._prior_soh))
        buffer = np.empty((step, len(self._prior_soh)), dtype=np.float32)
        for first in range(span.start, span.stop, _ROWS_PER_BLOCK):
            block = slice(first, min(span.stop, first + _ROWS_PER_BLOCK))
            phi, q, centre[block] = self._row_factors(rows[block])
            for g, (start, end) in enumerate(zip(starts[block].tolist(), ends[block].tolist())):
                phi_g, q_t = phi[g], q[g].T
                for lo in range(start, end, step):
                    hi = min(end, lo + step)
                    log_w = np.matmul(psi[lo:hi], phi_g, out=buffer[:hi - lo])
                    if best:
                        per_pair[lo:hi, 0] = log_w.max(axis=1)
                    else:
                        np.matmul(np.exp(log_w, out=log_w), q_t, out=per_pair[lo:hi])


def threads_now(cap: int) -> int:
    """Threads worth starting for work that splits: `cap` when no other task is runnable at this
    moment (LOADAVG_FILE's running count is this thread alone), else 1. A second thread helps only
    on a free core: with another session's process running on one of the 2 cores, the scheduler
    (autogroups) gives this process the other, and two threads there cost 10-35 % more CPU for no
    gain (grade at 10 000 rows: 0.93-1.06 s on one thread against 1.09-1.10 s on two; on a quiet
    machine 0.75-0.79 s on two against 0.92-1.0 s on one). The numbers never depend on it."""
    if cap <= 1:
        return 1
    try:
        with open(LOADAVG_FILE) as handle:
            running = int(handle.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return cap
    return cap if running <= 1 else 1


def in_parallel(tasks: list) -> None:
    """Run the callables, the first in this thread and each other in a thread of its own; the
    first exception raised by any is raised here once all have ended."""
    errors: list[BaseException] = []

    def guarded(task) -> None:
        try:
            task()
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(task,), daemon=True) for task in tasks[1:]]
    for worker in workers:
        worker.start()
    guarded(tasks[0])
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]

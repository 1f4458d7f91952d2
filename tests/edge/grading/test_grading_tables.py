"""edge.grading.soc_physics: the posterior's tables kept between runs, and its sum on two threads."""

import os

import numpy as np
import pytest

from edge.grading import soc_physics as sp
from edge.grading.features import FEATURE_COLUMNS
from edge.grading.soc_physics import PhysicsParams, SocPosterior, build_tables, in_parallel, posterior_tables

pytestmark = pytest.mark.unit

STATES = [(0.12, 0.05, 0.08, 0.80), (0.20, 0.10, 0.02, 0.70), (0.05, 0.02, 0.15, 0.85), (0.30, 0.2, 0.1, 0.6)]


def params(**kw):
    prior = np.array(STATES)
    base = dict(prior_lli=tuple(prior[:, 0]), prior_lam_ne=tuple(prior[:, 1]), prior_lam_pe=tuple(prior[:, 2]),
                prior_soh=tuple(prior[:, 3]), relax_coef=(1.0, 0, 0, 0, 0, 0), relax_offset_mv=0.0,
                relax_sd_mv=0.3, soh_sd=0.03)
    return PhysicsParams(**{**base, **kw})


def cells(n, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, len(FEATURE_COLUMNS)))
    v = rng.uniform(3.0, 4.1, n)
    x[:, FEATURE_COLUMNS.index("feat_v_rest_V")] = v
    x[:, FEATURE_COLUMNS.index("feat_v_relax60s_V")] = v - rng.uniform(0.5, 4.0, n) / 1e3
    return x, rng.uniform(0.6, 0.9, n)


def test_tables_are_kept_read_back_equal_and_rebuilt_when_spoilt(tmp_path):
    p = params()
    built = build_tables(p)
    assert built.shape == (2, len(sp.V_GRID), len(STATES)) and built.dtype == np.float32
    assert np.all(np.diff(built[0], axis=0) >= 0) and built[0, 0].max() == 0.0 and built[0, -1].min() == 1.0
    first = posterior_tables(p, tmp_path)
    files = list(tmp_path.glob("posterior_tables_*.npy"))
    assert len(files) == 1 and oct(files[0].stat().st_mode & 0o777) == "0o644"
    np.testing.assert_array_equal(first, built)
    files[0].write_bytes(files[0].read_bytes()[:1000])  # truncated: read fails, built and written again
    np.testing.assert_array_equal(posterior_tables(p, tmp_path), built)
    np.save(files[0], np.zeros((2, 3, 4), np.float32))  # the wrong shape
    np.testing.assert_array_equal(posterior_tables(p, tmp_path), built)
    assert np.load(files[0]).shape == built.shape
    assert not list(tmp_path.glob("*.part"))


def test_other_physics_has_its_own_file_and_only_the_newest_are_kept(tmp_path):
    for k in range(sp.TABLES_KEPT + 2):
        posterior_tables(params(pulse_charge_ah=0.01 + 0.001 * k), tmp_path)
    assert len(list(tmp_path.glob("posterior_tables_*.npy"))) == sp.TABLES_KEPT
    assert sp.tables_key(params()) != sp.tables_key(params(relax_sd_mv=0.31))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_folder_that_cannot_be_written_leaves_the_tables_in_memory(tmp_path):
    tmp_path.chmod(0o500)
    try:
        np.testing.assert_array_equal(posterior_tables(params(), tmp_path / "sub"), build_tables(params()))
    finally:
        tmp_path.chmod(0o700)


def test_a_file_in_the_way_of_the_folder_leaves_the_tables_in_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    np.testing.assert_array_equal(posterior_tables(params(), blocker), build_tables(params()))


def test_the_sum_on_two_threads_is_the_sum_on_one(monkeypatch):
    posterior = SocPosterior(params())
    x, soh = cells(3000)
    monkeypatch.setattr(sp, "threads_now", lambda cap: cap)  # whatever else runs on the machine
    monkeypatch.setattr(sp, "POSTERIOR_THREADS", 1)
    one = posterior.estimate(x, soh)
    monkeypatch.setattr(sp, "POSTERIOR_THREADS", 2)
    started = []
    real_parallel = sp.in_parallel
    monkeypatch.setattr(sp, "in_parallel", lambda tasks: (started.append(len(tasks)), real_parallel(tasks)))
    two = posterior.estimate(x, soh)
    assert started and set(started) == {2}  # each sum (and the faint batteries' again) on two threads
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert np.ptp(one[0]) > 30


def test_in_parallel_runs_every_task_and_raises_the_first_error():
    done = []
    in_parallel([lambda: done.append(1), lambda: done.append(2), lambda: done.append(3)])
    assert sorted(done) == [1, 2, 3]

    def fail():
        raise ValueError("task 2 failed")

    with pytest.raises(ValueError, match="task 2 failed"):
        in_parallel([lambda: done.append(4), fail])
    assert 4 in done


@pytest.mark.parametrize("text, cap, expected", [
    ("0.52 0.40 0.31 1/120 4242\n", 2, 2),   # this thread alone runs: a core is free
    ("3.10 2.90 2.50 2/120 4242\n", 2, 1),   # another task runs: one thread
    ("3.10 2.90 2.50 5/120 4242\n", 4, 1),
    ("0.52 0.40 0.31 1/120 4242\n", 1, 1),
    ("garbled\n", 2, 2),                      # unreadable: the cap
])
def test_threads_now_reads_the_running_tasks(tmp_path, monkeypatch, text, cap, expected):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text(text)
    monkeypatch.setattr(sp, "LOADAVG_FILE", str(loadavg))
    assert sp.threads_now(cap) == expected
    monkeypatch.setattr(sp, "LOADAVG_FILE", str(tmp_path / "missing"))
    assert sp.threads_now(cap) == cap

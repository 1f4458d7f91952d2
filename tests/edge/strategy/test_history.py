"""SQLite history: append, query by tier features, best record; the closed world (one gate on the
way in and out) and an unreadable history set aside."""

import math
import sqlite3

import pytest

from edge.strategy.history import (HISTORY_FILE, History, HistoryError, HistoryRecordError, TierFeatures,
                                   check_record)
from edge.strategy.model import Strategy

pytestmark = pytest.mark.unit

M = dict(batch_time_s=1500.0, residual_pct=9.0, peak_temp_degc=41.0, time_above_warning_s=0.0, relief_events=1)
SANE = TierFeatures(80.0, 0.9, 40.0, 5)


def test_append_query_and_best(tmp_path):
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, TierFeatures(80.0, 0.9, 40.0, 5), Strategy(pressure_kpa=125.0), M, 0.7)
        h.append("sil", 1, TierFeatures(80.0, 0.9, 40.0, 5), Strategy(pressure_kpa=175.0), M, 0.5)
        h.append("bench", 2, TierFeatures(20.0, 0.6, 70.0, 5), Strategy(pressure_kpa=200.0), M, 0.1)
    with History(path) as h:  # persisted
        assert h.count() == 3 and h.set_aside is None
        near = h.query(TierFeatures(78.0, 0.88, 42.0, 5), k=2)
        assert {r.tier for r in near} == {1}
        assert [r.source for r in h.query(TierFeatures(20.0, 0.6, 70.0, 5), k=5, sources=("bench",))] == ["bench"]
        assert all(r.source != "bench" for r in h.query(TierFeatures(20.0, 0.6, 70.0, 5), k=5))
        best = h.best_for(TierFeatures(78.0, 0.88, 42.0, 5), k=2)
        assert best.strategy.pressure_kpa == 175.0 and best.metrics["relief_events"] == 1


def test_empty_history_has_no_best(tmp_path):
    with History(tmp_path / "e.sqlite") as h:
        assert h.best_for(TierFeatures(50, 0.8, 40, 3)) is None


# -- the gate on the way in ------------------------------------------------------------------------------

def test_append_refuses_a_record_with_c_rate_40(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryRecordError, match=r"segments\[0\]\.c_rate.*40"):
            h.append("sil", 1, SANE, Strategy(segments=((0.0, 40.0),)), M, 0.5)
        assert h.count() == 0


def test_append_refuses_a_tier_with_soh_mean_1448(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryRecordError, match=r"soh_mean: must be in \[0.05, 1.2\], got 1448"):
            h.append("sil", 1, TierFeatures(55.0, 1448.13, 40.0, 3), Strategy(), M, 0.5)
        assert h.count() == 0


@pytest.mark.parametrize("features, field", [
    (TierFeatures(55.0, 2.47, 40.0, 3), "soh_mean"),
    (TierFeatures(-3.0, 0.9, 40.0, 3), "soc_mean_pct"),
    (TierFeatures(140.0, 0.9, 40.0, 3), "soc_mean_pct"),
    (TierFeatures(55.0, 0.9, 1e30, 3), "r_mean_mohm"),
    (TierFeatures(55.0, math.nan, 40.0, 3), "soh_mean"),
    (TierFeatures(55.0, 0.9, math.inf, 3), "r_mean_mohm"),
    (TierFeatures(55.0, 0.9, 40.0, 0), "n_modules"),
    (TierFeatures(55.0, "0.9", 40.0, 3), "soh_mean"),
])
def test_append_refuses_absurd_tier_figures(tmp_path, features, field):
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryRecordError, match=field):
            h.append("sil", 1, features, Strategy(), M, 0.5)
        assert h.count() == 0


@pytest.mark.parametrize("key, value", [("batch_time_s", math.nan), ("residual_pct", 150.0), ("residual_pct", -2.0),
                                        ("peak_temp_degc", math.inf), ("relief_events", 1.5),
                                        ("time_above_warning_s", -1.0)])
def test_append_refuses_absurd_outcomes(tmp_path, key, value):
    with History(tmp_path / "h.sqlite") as h:
        with pytest.raises(HistoryRecordError, match=key):
            h.append("sil", 1, SANE, Strategy(), dict(M, **{key: value}), 0.5)
        assert h.count() == 0


def test_append_refuses_an_unknown_source_a_negative_tier_and_a_nan_cost(tmp_path):
    with History(tmp_path / "h.sqlite") as h:
        for args, field in ((("lab", 1, math.nan), "source"), (("sil", -1, 0.5), "tier"), (("sil", 1, math.nan), "cost")):
            source, tier, cost = args
            with pytest.raises(HistoryRecordError, match=field):
                h.append(source, tier, SANE, Strategy(), M, cost)
        assert h.count() == 0


def test_check_record_passes_a_sane_record():
    check_record("rl", 0, SANE, Strategy(), M, -0.3)  # no exception


# -- the gate on the way out: an unreadable history is set aside, not fatal -----------------------------------

def _corrupt_files(tmp_path, name=HISTORY_FILE):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f"{name}.corrupt-"))


def test_history_of_garbage_bytes_is_set_aside_and_starts_empty(tmp_path, caplog):
    path = tmp_path / HISTORY_FILE
    path.write_bytes(b"\x00\xffnot a database at all\n" * 100)
    with History(path) as h:
        assert h.count() == 0 and h.set_aside is not None
        assert h.set_aside.name.startswith(f"{HISTORY_FILE}.corrupt-")
        h.append("sil", 1, SANE, Strategy(), M, 0.5)  # the new history works
        assert h.count() == 1
    assert h.set_aside.read_bytes().startswith(b"\x00\xffnot a database")  # kept for whoever looks
    assert str(path) in caplog.text and "set aside" in caplog.text and h.set_aside.name in caplog.text


def test_history_with_a_c_rate_40_record_is_set_aside(tmp_path, caplog):
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, SANE, Strategy(), M, 0.5)
    db = sqlite3.connect(path)  # written past the gate, as by an older version or another tool
    bad = Strategy().to_dict()
    bad["segments"] = [{"soc_from_pct": 0.0, "c_rate": 40.0}]
    import json

    db.execute("UPDATE records SET strategy_json = ?", (json.dumps(bad),))
    db.commit()
    db.close()
    with History(path) as h:
        assert h.count() == 0 and h.set_aside is not None and h.best_for(SANE) is None
        assert "c_rate" in h.set_aside_reason and "record 1" in h.set_aside_reason
    assert len(_corrupt_files(tmp_path, "h.sqlite")) == 1
    assert "c_rate" in caplog.text


@pytest.mark.parametrize("sql, reason", [
    ("UPDATE records SET soh_mean = 1448.13", "soh_mean"),
    ("UPDATE records SET residual_pct = 'lots'", "residual_pct"),
    ("UPDATE records SET strategy_json = '{not json'", "strategy_json"),
    ("UPDATE records SET strategy_json = '{\"segments\": 3}'", "segments"),
    ("UPDATE records SET cost = NULL", "cost"),
])
def test_history_with_a_bad_record_is_set_aside(tmp_path, sql, reason):
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, SANE, Strategy(), M, 0.5)
    db = sqlite3.connect(path)
    db.execute("PRAGMA ignore_check_constraints = 1")
    try:
        db.execute(sql)
    except sqlite3.IntegrityError:  # NOT NULL: rebuild the table without it
        db.executescript("ALTER TABLE records RENAME TO old; CREATE TABLE records AS SELECT * FROM old;"
                         "DROP TABLE old;")
        db.execute(sql)
    db.commit()
    db.close()
    with History(path) as h:
        assert h.count() == 0 and reason in h.set_aside_reason


def test_history_with_a_foreign_records_table_is_set_aside(tmp_path):
    path = tmp_path / "h.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE records (x TEXT)")
    db.execute("INSERT INTO records VALUES ('hello')")
    db.commit()
    db.close()
    with History(path) as h:
        assert h.count() == 0 and h.set_aside is not None


def test_set_aside_leaves_no_stale_journal_for_the_new_history(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"garbage" * 10)
    (tmp_path / "h.sqlite-journal").write_bytes(b"stale journal")
    with History(path) as h:
        assert h.count() == 0 and h.set_aside is not None
        h.append("sil", 1, SANE, Strategy(), M, 0.5)
    journal = tmp_path / "h.sqlite-journal"
    assert not journal.exists() or journal.read_bytes() != b"stale journal"
    with History(path) as h:
        assert h.count() == 1 and h.set_aside is None


def test_set_aside_twice_keeps_both(tmp_path):
    path = tmp_path / "h.sqlite"
    for _ in range(2):
        path.write_bytes(b"garbage" * 10)
        with History(path):
            pass
        path.unlink()
    assert len(_corrupt_files(tmp_path, "h.sqlite")) == 2


def test_a_folder_in_place_of_the_history_is_an_error_not_renamed(tmp_path):
    (tmp_path / "h.sqlite").mkdir()
    with pytest.raises(HistoryError, match="must be a file"):
        History(tmp_path / "h.sqlite")
    assert (tmp_path / "h.sqlite").is_dir() and not _corrupt_files(tmp_path, "h.sqlite")


def test_a_bad_record_written_by_another_process_after_the_open_is_skipped(tmp_path, caplog):
    import json

    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, SANE, Strategy(pressure_kpa=175.0), M, 0.5)
        assert len(h.all()) == 1
        other = sqlite3.connect(path)  # past the gate: c_rate 40 and a very low cost
        other.execute("INSERT INTO records (created_unix_s, source, tier, soc_mean_pct, soh_mean, r_mean_mohm,"
                      " n_modules, strategy_json, batch_time_s, residual_pct, peak_temp_degc, time_above_warning_s,"
                      " relief_events, cost) VALUES (0, 'sil', 1, 80, 0.9, 40, 5, ?, 900, 9, 41, 0, 0, -99)",
                      (json.dumps({**Strategy().to_dict(), "segments": [{"soc_from_pct": 0.0, "c_rate": 40.0}]}),))
        other.commit()
        other.close()
        assert h.count() == 2 and [r.id for r in h.all()] == [1]
        assert h.best_for(SANE).strategy.pressure_kpa == 175.0
    assert "record 2" in caplog.text and "c_rate" in caplog.text and "skipped" in caplog.text


def test_a_history_locked_by_another_process_is_an_error_and_never_set_aside(tmp_path, monkeypatch):
    import edge.strategy.history as history_module

    monkeypatch.setattr(history_module, "LOCK_WAIT_S", 0.05)
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, SANE, Strategy(), M, 0.5)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError, match="locked"):
            History(path)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not _corrupt_files(tmp_path, "h.sqlite")
    with History(path) as h:
        assert h.count() == 1 and h.set_aside is None

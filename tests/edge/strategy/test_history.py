"""SQLite history: append, query by tier features, best record."""

from edge.strategy.history import History, TierFeatures
from edge.strategy.model import Strategy

M = dict(batch_time_s=1500.0, residual_pct=9.0, peak_temp_degc=41.0, time_above_warning_s=0.0, relief_events=1)


def test_append_query_and_best(tmp_path):
    path = tmp_path / "h.sqlite"
    with History(path) as h:
        h.append("sil", 1, TierFeatures(80.0, 0.9, 40.0, 5), Strategy(pressure_kpa=125.0), M, 0.7)
        h.append("sil", 1, TierFeatures(80.0, 0.9, 40.0, 5), Strategy(pressure_kpa=175.0), M, 0.5)
        h.append("bench", 2, TierFeatures(20.0, 0.6, 70.0, 5), Strategy(pressure_kpa=200.0), M, 0.1)
    with History(path) as h:  # persisted
        assert h.count() == 3
        near = h.query(TierFeatures(78.0, 0.88, 42.0, 5), k=2)
        assert {r.tier for r in near} == {1}
        assert [r.source for r in h.query(TierFeatures(20.0, 0.6, 70.0, 5), k=5, sources=("bench",))] == ["bench"]
        assert all(r.source != "bench" for r in h.query(TierFeatures(20.0, 0.6, 70.0, 5), k=5))
        best = h.best_for(TierFeatures(78.0, 0.88, 42.0, 5), k=2)
        assert best.strategy.pressure_kpa == 175.0 and best.metrics["relief_events"] == 1


def test_empty_history_has_no_best(tmp_path):
    with History(tmp_path / "e.sqlite") as h:
        assert h.best_for(TierFeatures(50, 0.8, 40, 3)) is None

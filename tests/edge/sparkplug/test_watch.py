"""The plant's state machine: births, deaths by bdSeq, seq gaps, historical values, report counts."""

from __future__ import annotations

import pytest

from edge.sparkplug.payload import BDSEQ, REBIRTH, DataType, Metric, encode_payload, topic_of
from edge.sparkplug.watch import PlantState, ReportCounter

pytestmark = pytest.mark.unit


def send(state: PlantState, kind: str, metrics: list[Metric], seq: int | None, device: str | None = None) -> None:
    state.handle(topic_of("plant", kind, "line-a", device), encode_payload(metrics, seq=seq))


def born(state: PlantState, bdseq: int = 0) -> None:
    send(state, "NBIRTH", [Metric(BDSEQ, DataType.UINT64, bdseq), Metric(REBIRTH, DataType.BOOLEAN, False),
                           Metric("line/packml_state", DataType.STRING, "Execute")], 0)
    send(state, "DBIRTH", [Metric("soc_pct", DataType.DOUBLE, 80.0), Metric("report_seq", DataType.UINT64, 1)], 1,
         "station000")


def test_births_make_the_line_and_station_online_and_a_stale_death_is_ignored():
    state = PlantState()
    born(state, bdseq=4)
    node = state.node("plant", "line-a")
    assert node.online and node.bdseq == 4 and node.metrics == {"line/packml_state": "Execute"}
    assert node.devices["station000"].online
    send(state, "NDEATH", [Metric(BDSEQ, DataType.UINT64, 3)], None)  # an older session's will
    assert node.online and node.stale_deaths == 1
    send(state, "NDEATH", [Metric(BDSEQ, DataType.UINT64, 4)], None)
    assert not node.online and not node.devices["station000"].online and node.deaths == 1


def test_seq_gaps_are_counted_and_historical_values_do_not_overwrite_live_ones():
    state = PlantState()
    reports = []
    state._on_report = lambda node, dev, n, hist, t: reports.append((dev, n, hist))
    born(state)
    send(state, "DDATA", [Metric("soc_pct", DataType.DOUBLE, 79.0), Metric("report_seq", DataType.UINT64, 2)], 2,
         "station000")
    send(state, "DDATA", [Metric("soc_pct", DataType.DOUBLE, 60.0, historical=True),
                          Metric("report_seq", DataType.UINT64, 3, historical=True)], 4, "station000")  # 3 lost
    node = state.node("plant", "line-a")
    assert node.seq_gaps == 1 and node.historical_messages == 1
    assert node.devices["station000"].metrics["soc_pct"] == 79.0
    assert reports == [("station000", 1, False), ("station000", 2, False), ("station000", 3, True)]
    send(state, "DDEATH", [], 5, "station000")
    assert not node.devices["station000"].online and node.online
    state.handle("spBv1.0/plant/DDATA/line-a/station000", b"\xff\xff")
    assert state.bad_messages == 1


def test_the_report_counter_counts_each_number_once_and_the_holes():
    r = ReportCounter()
    for n in (1, 2, 5, 3, 3, 7):
        r.add(n)
    assert (r.received, r.highest, r.missing, r.duplicates, r.contiguous) == (5, 7, 2, 1, 3)


def test_a_restarted_line_process_numbers_from_1_and_the_count_starts_anew():
    state = PlantState()
    born(state, bdseq=0)
    for n in (2, 3):
        send(state, "DDATA", [Metric("report_seq", DataType.UINT64, n)], n, "station000")
    born(state, bdseq=1)  # a new process: its DBIRTH carries report 1 again
    dev = state.node("plant", "line-a").devices["station000"]
    assert (dev.numbering_restarts, dev.earlier_received, dev.reports.received) == (1, 3, 1)
    assert dev.reports.duplicates == 0
    born(state, bdseq=2)  # a new session of the same process (report 1 is its latest): no restart
    assert dev.numbering_restarts == 1 and dev.reports.duplicates == 1

"""`rtcore status` for a person: the station table's summary and what each flag shown means."""

import pytest

from edge.rtloop.cli import CAUSE_TEXT, format_status
from edge.rtloop.link import RtStatus
from rtcore.spec import Flag

pytestmark = pytest.mark.unit


def test_every_flag_has_its_meaning():
    assert set(CAUSE_TEXT) == {f.name for f in Flag if f.name != "NONE"}


def test_the_table_ends_with_the_stations_summary_and_the_meaning_of_each_flag_shown():
    status = RtStatus(tick_count=9, armed=True, flags=int(Flag.STATION_ISOLATED), n_stations=3,
                      station_cause=(0, int(Flag.OVER_TEMP | Flag.DTDT_ALARM), 0), station_fault_marker=(-1, 6, -1),
                      station_hot_degc=(30.0, 58.5, 44.0), station_current_limit_frac=(1.0, 0.0, 0.4),
                      station_coolant_lpm=(0.0, 20.0, 3.0), station_relief_max_kpa=(0.0, 200.0, 50.0),
                      station_permit=(True, False, True), heartbeat_ns=1)
    lines = format_status("l", status).splitlines()
    assert "stations   3: 2 with permit, 1 isolated (1), 1 derated below 100 % (2)" in lines
    row = next(line.split() for line in lines if line.split()[:2] == ["1", "isolated"])
    assert row[2:5] == ["58.5", "0", "no"] and " ".join(row).endswith("DTDT_ALARM,OVER_TEMP (marker 6)")
    legend = lines[lines.index("what the flags mean:") + 1:]
    assert [entry.split()[0] for entry in legend] == ["STATION_ISOLATED", "DTDT_ALARM", "OVER_TEMP"]
    assert "maximum safety" in legend[2]
    assert not any(word.startswith("0x") for line in lines for word in line.split())  # no raw bit fields


def test_no_legend_when_nothing_is_raised():
    text = format_status("l", RtStatus(n_stations=1, station_cause=(0,), station_fault_marker=(-1,),
                                       station_hot_degc=(25.0,), station_current_limit_frac=(1.0,),
                                       station_coolant_lpm=(0.0,), station_relief_max_kpa=(0.0,),
                                       station_permit=(False,), heartbeat_ns=1))
    assert "what the flags mean" not in text and "stations   1: 0 with permit, 0 isolated, 0 derated" in text

"""Snapshots of a made-up line for the Sparkplug tests: `line_snapshot(step)` gives station s at
step k the SOC 90 - k - s/10 %, so every station changes at every step (one report each)."""

from __future__ import annotations

from edge.lineview.model import AlarmView, BatchView, LineSnapshot, StationView


def station(index: int, step: int) -> StationView:
    return StationView(index=index, battery=f"B{index:03d}" if index % 4 != 3 else None,
                       tier=1 + index % 3 if index % 4 != 3 else None,
                       soc_pct=90.0 - step - index / 10, temp_degc=25.0 + index + 0.5 * step,
                       current_a=-5.0 if index % 4 != 3 else None,
                       state="discharging" if index % 4 != 3 else "empty", isolated=index == 2,
                       cause=("overtemp",) if index == 2 else ())


def line_snapshot(step: int, *, line: str = "line-a", stations: int = 4, seq: int | None = None,
                  packml: str = "Execute", alarms: int = 1) -> LineSnapshot:
    alarm_views = tuple(AlarmView(id=i + 1, key=f"core.station.{i}", source="core", priority="high",
                                  message="too hot", cause="overtemp", state="unack", raised_s=1.0, station=i)
                        for i in range(alarms))
    return LineSnapshot(line=line, packml_state=packml, mode="Production", time_s=float(step),
                        stations=tuple(station(i, step) for i in range(stations)), alarms=alarm_views,
                        batch=BatchView(recorded=step, total=1000, waiting=1000 - step), packml_state_number=6,
                        seq=step + 1 if seq is None else seq)

"""The batch report as one self-contained HTML page: inline CSS, images as data URIs, no script, no network.

Owns `render_html(batch, station_pngs, gantt_png, extra_images=()) -> str` and
`write_report(state_dir, out, time_scale=1.0, extra_images=()) -> dict` (collects, draws, writes
the page; returns the batch with the page's path). Sections, each with an id the browser test
finds: `summary` (a table of the batch), `batteries` (every battery: tier, slot/station/channel,
SOC and SOH with their intervals, outcome and cause, clock times, charge, peaks), `gantt`,
`stations` (a figure per station, from the historian), `extra` (figures a caller adds: the
demo's bench truth), `alarms` and `events`. Every text is HTML-escaped.
Tests: tests/edge/report/test_html.py, test_chromium.py.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge.report.collect import collect_batch
from edge.report.plots import gantt_figure, station_figure

__all__ = ["render_html", "write_report"]

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1b1b1b;max-width:1400px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.82em;margin:.4em 0} th,td{border:1px solid #d0d0d0;padding:.2em .45em;text-align:right}
th{background:#f0f0f0;position:sticky;top:0} td.l,th.l{text-align:left} tr:nth-child(even) td{background:#fafafa}
tr.isolated td{background:#fde2e1} tr.rejected td{background:#fff3cd} .muted{color:#666;font-size:.85em}
img{max-width:100%;border:1px solid #e0e0e0;margin:.3em 0} .figs{display:flex;flex-wrap:wrap;gap:.6em}
.figs figure{margin:0;flex:1 1 560px} figcaption{font-size:.8em;color:#555}
.badge{display:inline-block;padding:.05em .4em;border-radius:.3em;font-size:.8em}
.ok{background:#d4edda} .bad{background:#f8d7da}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _num(x: Any, fmt: str = "{:g}") -> str:
    return "–" if x is None else _e(fmt.format(x)) if isinstance(x, (int, float)) else _e(x)


def _interval(lo: Any, hi: Any, fmt: str) -> str:
    return "–" if lo is None or hi is None else f"{fmt.format(lo)}–{fmt.format(hi)}"


def _img(png: bytes, alt: str, ident: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{_e(ident)}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _clock(utc: str | None) -> str:
    """'2026-11-29T03:23:47Z' as '03:23:47' (the date is in the summary)."""
    return "–" if not utc else _e(utc[11:19])


def _summary(batch: dict) -> str:
    s = batch["summary"]
    rows = [
        ("state dir", s["state_dir"]), ("stations", s["stations"]),
        ("began (UTC)", s["begin_utc"]), ("ended (UTC)", s["end_utc"]),
        ("line time, min", s["line_time_min"]),
        ("time scale", f"{s['time_scale']:g} line s per wall s" + (" (a bench in scaled time)" if s["time_scale"] != 1 else "")),
        ("batteries recorded", s["batteries_recorded"]),
        ("outcomes", ", ".join(f"{k}: {v}" for k, v in s["outcomes"].items()) or "–"),
        ("tiers", ", ".join(f"tier {k}: {v}" for k, v in s["tiers"].items()) or "–"),
        ("first start to last end, min", s["batch_min"]), ("batteries per hour", s["batteries_per_h"]),
        ("charge removed, Ah", s["charge_removed_ah"]), ("hottest peak, °C", s["peak_temp_degc"]),
        ("robot moves (failed)", f"{s['robot_moves']} ({s['robot_moves_failed']})"),
        ("robot busy, min", s["robot_busy_min"]), ("supervisor starts", s["supervisor_starts"]),
        ("line state (PackML)", s["line_state"]), ("events", s["events"]),
        ("alarms (active)", f"{s['alarms']} ({s['alarms_active']})"),
    ]
    rows += [(f"model {name}", f"{v.get('format', '')} sha256 {str(v.get('sha256', ''))[:16]}…")
             for name, v in sorted(s.get("model_versions", {}).items())]
    body = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_num(v)}</td></tr>' for k, v in rows)
    return f'<table id="summary-table">{body}</table>'


BATTERY_COLUMNS = ("cell", "tier", "route", "slot", "station", "channel", "SOC %", "SOC interval %", "SOH",
                   "SOH interval", "outcome", "cause", "placed", "start", "end", "discharge min", "passes",
                   "re-discharges", "charge removed Ah", "residual % (est.)", "peak °C", "above warning s", "source")


def _batteries(batch: dict) -> str:
    head = "".join(f'<th class="{"l" if c in ("cell", "outcome", "cause", "source", "route") else ""}">{_e(c)}</th>'
                   for c in BATTERY_COLUMNS)
    body = []
    for b in batch["batteries"]:
        cells = [
            f'<td class="l">{_e(b["cell_id"])}</td>', f"<td>{_num(b['tier'])}</td>", f'<td class="l">{_e(b["route"])}</td>',
            f"<td>{_num(b['slot'])}</td>", f"<td>{_num(b['station'])}</td>", f"<td>{_num(b['channel'])}</td>",
            f"<td>{_num(b['soc_pct'], '{:.1f}')}</td>", f"<td>{_interval(*b['soc_interval_pct'], '{:.1f}')}</td>",
            f"<td>{_num(b['soh_est'], '{:.3f}')}</td>", f"<td>{_interval(*b['soh_interval'], '{:.3f}')}</td>",
            f'<td class="l">{_e(b["outcome"])}</td>',
            f'<td class="l">{_e(", ".join(b["cause"]) or b["reason"] or "")}</td>',
            f"<td>{_clock(b['placed_utc'])}</td>", f"<td>{_clock(b['start_utc'])}</td>", f"<td>{_clock(b['end_utc'])}</td>",
            f"<td>{_num(b['discharge_min'], '{:.1f}')}</td>", f"<td>{_num(b['passes'])}</td>",
            f"<td>{_num(b['redischarges'])}</td>", f"<td>{_num(b['charge_removed_ah'], '{:.3f}')}</td>",
            f"<td>{_num(b['residual_pct_est'], '{:.1f}')}</td>", f"<td>{_num(b['peak_temp_degc'], '{:.1f}')}</td>",
            f"<td>{_num(b['time_above_warning_s'], '{:.0f}')}</td>", f'<td class="l">{_e(b["source"])}</td>',
        ]
        body.append(f'<tr class="battery {_e(b["outcome"])}" data-cell-id="{_e(b["cell_id"])}">{"".join(cells)}</tr>')
    return (f'<table id="batteries-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            '<p class="muted">Times are the wall clock (UTC); SOC interval: the model\'s; SOH interval: ± one '
            'standard deviation.</p>')


def _events(batch: dict) -> str:
    rows = "".join(
        f'<tr><td>{_e(e["id"])}</td><td>{_clock(e["at_utc"])}</td><td class="l">{_e(e["kind"])}</td>'
        f'<td>{_num(e["station"])}</td><td class="l">{_e(e["battery_id"])}</td><td class="l">{_e(e["text"])}</td></tr>'
        for e in batch["events"])
    hidden = batch.get("events_not_listed") or {}
    note = ("<p class=\"muted\">Not listed: " + ", ".join(f"{_e(k)} {_e(v)}" for k, v in hidden.items()) + "</p>") \
        if hidden else ""
    return (f'<table id="events-table"><thead><tr><th>id</th><th>time</th><th class="l">kind</th><th>station</th>'
            f'<th class="l">battery</th><th class="l">text</th></tr></thead><tbody>{rows}</tbody></table>{note}')


def _alarms(batch: dict) -> str:
    if not batch["alarms"]:
        return '<p id="alarms-none">No alarms in this batch.</p>'
    rows = "".join(
        f'<tr><td>{_e(a.get("id"))}</td><td class="l">{_e(a.get("priority"))}</td><td class="l">{_e(a.get("state"))}</td>'
        f'<td class="l">{_e(a.get("key"))}</td><td class="l">{_e(a.get("cause"))}</td><td>{_num(a.get("station"))}</td>'
        f'<td class="l">{_e(a.get("battery_id"))}</td><td>{_num(a.get("value"))} {_e(a.get("unit") or "")}</td>'
        f'<td>{_clock(a.get("raised_utc"))}</td><td>{_clock(a.get("acked_utc"))}</td><td>{_clock(a.get("cleared_utc"))}</td>'
        f'<td class="l">{_e(a.get("text"))}</td></tr>' for a in batch["alarms"])
    return ('<table id="alarms-table"><thead><tr><th>id</th><th class="l">priority</th><th class="l">state</th>'
            '<th class="l">alarm</th><th class="l">cause</th><th>station</th><th class="l">battery</th><th>value</th>'
            '<th>raised</th><th>acked</th><th>cleared</th><th class="l">text</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>')


def render_html(batch: dict, *, station_pngs: dict[int, bytes], gantt_png: bytes,
                extra_images: Iterable[tuple[str, bytes]] = ()) -> str:
    s = batch["summary"]
    stations = "".join(
        f'<figure>{_img(png, f"station {st}", f"station-{st}")}<figcaption>station {st}</figcaption></figure>'
        for st, png in sorted(station_pngs.items()))
    if not stations:
        stations = '<p id="stations-none" class="muted">No series: ' + _e("; ".join(batch.get("notes", []))) + "</p>"
    extra = "".join(f'<figure>{_img(png, caption, f"extra-{i}")}<figcaption>{_e(caption)}</figcaption></figure>'
                    for i, (caption, png) in enumerate(extra_images))
    ok = s["outcomes"].get("done", 0) == s["batteries_recorded"] and not s["alarms_active"]
    badge = f'<span class="badge {"ok" if ok else "bad"}">{"all done" if ok else "see outcomes and alarms"}</span>'
    notes = "".join(f"<li>{_e(n)}</li>" for n in batch.get("notes", []))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>discharge-edge batch report: {_e(s['begin_utc'])}</title>
<style>{CSS}</style></head>
<body>
<h1>Batch report {badge}</h1>
<p class="muted">{_e(s['batteries_recorded'])} batteries on {_e(s['stations'])} stations, {_e(s['begin_utc'])} to
{_e(s['end_utc'])} (UTC). Written by <code>discharge-edge report</code> from the line's state dir.</p>
<section id="summary"><h2>Summary</h2>{_summary(batch)}</section>
<section id="batteries"><h2>Batteries ({len(batch['batteries'])})</h2>{_batteries(batch)}</section>
<section id="gantt"><h2>Stations and robot over time</h2>{_img(gantt_png, "Gantt of the stations and the robot", "gantt-img")}</section>
<section id="stations"><h2>Per station</h2><div class="figs">{stations}</div></section>
{f'<section id="extra"><h2>From the bench</h2><div class="figs">{extra}</div></section>' if extra else ''}
<section id="alarms"><h2>Alarms ({len(batch['alarms'])})</h2>{_alarms(batch)}</section>
<section id="events"><h2>Events ({len(batch['events'])} listed of {s['events']})</h2>{_events(batch)}</section>
{f'<section id="notes"><h2>Notes</h2><ul>{notes}</ul></section>' if notes else ''}
<script type="application/json" id="batch-summary">{_e(json.dumps(s, allow_nan=False))}</script>
</body></html>
"""


def write_report(state_dir: str | Path, out: str | Path, *, time_scale: float = 1.0,
                 extra_images: Iterable[tuple[str, bytes]] = (), warning_degc: float | None = None,
                 temp_limit_degc: float | None = None) -> dict[str, Any]:
    """Collect the batch in `state_dir`, draw it and write the page to `out`; returns the batch
    (without the series) with `html` (the path) and `html_bytes`."""
    batch = collect_batch(state_dir, time_scale=time_scale)
    station_pngs = {int(st): station_figure(cols, int(st), time_scale=time_scale, origin_s=batch.get("origin_s"),
                                            warning_degc=warning_degc, temp_limit_degc=temp_limit_degc)
                    for st, cols in batch["series"].items() if cols["t_s"]}
    page = render_html(batch, station_pngs=station_pngs, gantt_png=gantt_figure(batch), extra_images=list(extra_images))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    result = {k: v for k, v in batch.items() if k != "series"}
    result["series_stations"] = sorted(int(s) for s in batch["series"])
    return result | {"html": str(out), "html_bytes": out.stat().st_size}

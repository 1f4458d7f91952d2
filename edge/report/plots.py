"""The report's figures as PNG bytes: each station's series and the batch's Gantt, on the wall clock.

Owns `station_figure(columns, station, time_scale, limits)` (the historian's 1 s series of one
station: hottest marker °C with the warning and maximum-safety lines, current, relief and
coolant) and `gantt_figure(batch)` (a row per station, one bar per module stay labelled with its
cell id and coloured by tier, isolated stays hatched; the robot's moves on a row of their own;
the wall clock (UTC) on the bottom axis, minutes of line time on the top one).
Matplotlib with the Agg backend (no display). Tests: tests/edge/report/test_html.py.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402  (after the backend is chosen)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

__all__ = ["gantt_figure", "station_figure"]

DPI = 80
TIER_COLOURS = plt.get_cmap("tab10")


def _clock(t_s: float, time_scale: float):
    return mdates.date2num(datetime.fromtimestamp(t_s / time_scale, tz=timezone.utc))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _clock_axis(ax, origin_s: float | None, time_scale: float) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=timezone.utc))
    ax.set_xlabel("wall clock, UTC")
    if origin_s is None:
        return
    origin = _clock(origin_s, time_scale)
    day_to_min = 24 * 60 * time_scale  # one wall day is this many minutes of line time
    top = ax.secondary_xaxis("top", functions=(lambda d: (d - origin) * day_to_min,
                                              lambda m: origin + m / day_to_min))
    top.set_xlabel("line time since the batch began, min")


def station_figure(columns: dict[str, list], station: int, *, time_scale: float = 1.0,
                   origin_s: float | None = None, warning_degc: float | None = None,
                   temp_limit_degc: float | None = None) -> bytes:
    """One station's series (the historian's 1 s means and maxima) on the wall clock."""
    t = [_clock(x, time_scale) for x in columns["t_s"]]
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.2), sharex=True)
    axes[0].plot(t, [_nan(v) for v in columns["hot_degc_max"]], lw=1.0, color="tab:red", label="hottest marker (max)")
    for level, style, label in ((warning_degc, "orange", "warning"), (temp_limit_degc, "red", "maximum safety")):
        if level is not None:
            axes[0].axhline(level, color=style, ls="--", lw=0.8, label=label)
    axes[0].set_ylabel("°C")
    axes[0].legend(fontsize=7, loc="upper right")
    axes[1].plot(t, [_nan(v) for v in columns["current_a_mean"]], lw=1.0, color="tab:blue")
    axes[1].set_ylabel("current, A")
    axes[2].plot(t, [_nan(v) for v in columns["relief_kpa_max"]], lw=1.0, color="tab:purple", label="relief, kPa")
    cool = axes[2].twinx()
    cool.plot(t, [_nan(v) for v in columns["coolant_lpm_mean"]], lw=1.0, color="tab:cyan", label="coolant, L/min")
    axes[2].set_ylabel("relief, kPa")
    cool.set_ylabel("coolant, L/min")
    for ax in axes:
        ax.grid(alpha=0.3)
    _clock_axis(axes[-1], None, time_scale)
    fig.suptitle(f"station {station}")
    fig.tight_layout()
    return _png(fig)


def _nan(v):
    return float("nan") if v is None else v


def gantt_figure(batch: dict) -> bytes:
    """Stations over the wall clock: one bar per module stay, labelled, coloured by tier; the robot's row."""
    scale = batch["summary"]["time_scale"]
    n = batch["summary"]["stations"]
    fig, ax = plt.subplots(figsize=(12, 0.45 * (n + 1) + 1.8))
    for stay in batch["stays"]:
        begin, end = _clock(stay["begin_s"], scale), _clock(stay["end_s"], scale)
        tier = stay.get("tier") or 0
        ax.barh(stay["station"], end - begin, left=begin, height=0.7, color=TIER_COLOURS(tier % 10),
                edgecolor="black", lw=0.5, hatch="//" if stay.get("outcome") == "isolated" else None)
        ax.text(begin + 0.5 * (end - begin), stay["station"], stay["cell_id"], ha="center", va="center", fontsize=7)
    for move in batch["robot_moves"]:
        if move["ordered_s"] is None or move["done_s"] is None:
            continue
        begin, end = _clock(move["ordered_s"], scale), _clock(move["done_s"], scale)
        ax.barh(-1, max(end - begin, 1e-6), left=begin, height=0.7, color="lightgrey" if move["ok"] else "red",
                edgecolor="black", lw=0.4)
        if move.get("battery_id") is not None:
            ax.text(begin + 0.5 * (end - begin), -1, str(move["battery_id"]), ha="center", va="center", fontsize=6)
    tiers = sorted({s["tier"] for s in batch["stays"] if s.get("tier") is not None})
    handles = [Patch(facecolor=TIER_COLOURS(t % 10), edgecolor="black", label=f"tier {t}") for t in tiers]
    handles += [Patch(facecolor="white", edgecolor="black", hatch="//", label="isolated"),
                Patch(facecolor="lightgrey", edgecolor="black", label="robot move"),
                Patch(facecolor="red", edgecolor="black", label="robot move failed")]
    ax.set_yticks(range(-1, n))
    ax.set_yticklabels(["robot"] + [f"station {s}" for s in range(n)])
    ax.set_ylim(n - 0.5, -1.5)
    ax.grid(axis="x", alpha=0.3)
    ax.xaxis_date(tz=timezone.utc)
    _clock_axis(ax, batch.get("origin_s"), scale)
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("modules on the stations (label: cell id) and the robot's moves", fontsize=10)
    fig.tight_layout()
    return _png(fig)

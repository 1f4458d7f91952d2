"""The demo's report: one JSON file and one PNG of temperatures, relief, coolant, currents and
each station's outcome.

Tests: tests/tools/test_demo.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402

from rtcore.spec import Flag  # noqa: E402

#: station causes that are the core doing its job on a hot cell (anything else is a failure here)
THERMAL = Flag.OVER_TEMP | Flag.DTDT_ALARM


def _names(bits: int) -> list[str]:
    return [f.name for f in Flag if f and bits & int(f)]


def write_report(out: Path, trace: dict[str, np.ndarray], summary: dict, status, plant, hot: int,
                 onset_s: float, time_scale: float, limits, isolated_at: dict[int, float], run: dict,
                 isolated_at_degc: dict[int, float] | None = None) -> dict:
    """`status`: the core's last RtStatus; `limits`: the StationLimits in force; `isolated_at`:
    plant time each isolated station was first seen isolated (`isolated_at_degc`: its hottest
    marker then, as the core reported it)."""
    isolated_at_degc = isolated_at_degc or {}
    out.mkdir(parents=True, exist_ok=True)
    t = trace["t_s"]
    n = plant.n_modules
    temps = trace["temp_degc"].reshape(len(t), n, -1) if len(t) else np.zeros((0, n, 4))
    zones = trace["relief_kpa"].reshape(len(t), n, -1) if len(t) else np.zeros((0, n, 2))
    relief = zones.max(axis=2)  # the most relieved zone of each station
    coolant = trace["coolant_lpm"]
    answered = (t >= onset_s) & (relief[:, hot] > 0) if len(t) else np.zeros(0, bool)
    first_relief_s = round(float(t[answered][0] - onset_s), 1) if answered.any() else None
    causes = list(status.station_cause) if status is not None and status.station_cause else [0] * n
    removed = plant.initial_charge_ah - plant.residual_ah()
    stations = []
    for s in range(n):
        outcome = "isolated" if s in isolated_at else "finished" if plant.tripped[s] else "unfinished"
        end = isolated_at.get(s) if outcome == "isolated" else (_trip_time(t, trace["current_a"][:, s])
                                                              if outcome == "finished" else None)
        stations.append({
            "station": s, "cell_id": int(plant_cell_id(plant, s)), "outcome": outcome,
            "isolated_at_degc": isolated_at_degc.get(s),
            "causes": _names(int(causes[s])), "end_s": round(float(end if end is not None else plant.t_s), 1),
            "charge_removed_ah": round(float(removed[s]), 3),
            "residual_pct": round(float(100.0 * plant.residual_ah()[s] / plant.initial_charge_ah[s]), 2),
            "peak_marker_temp_degc": round(float(np.nanmax(temps[:, s])), 2) if len(t) else None,
        })
    h = stations[hot]
    others = [st for st in stations if st["station"] != hot]
    line_causes = _names(int(summary["safe_cause"]))
    hot_ok = (h["outcome"] == "finished" or (h["outcome"] == "isolated" and h["causes"]
                                             and not int(causes[hot]) & ~int(THERMAL)))
    report = {
        "ok": bool(len(t) and summary["ticks"] > 0 and not summary["safe_state"] and answered.any() and hot_ok
                   and all(st["outcome"] == "finished" for st in others)),
        "run": {**run, "time_scale": time_scale},
        "plant_time_s": round(float(plant.t_s), 1),
        "limits": dataclasses.asdict(limits),
        "rtcore": {
            "ticks": summary["ticks"], "overruns": summary["overruns"], "bus_misses": summary.get("bus_misses", 0),
            "lateness_p50_us": summary["lateness_p50_ns"] / 1e3, "lateness_p99_us": summary["lateness_p99_ns"] / 1e3,
            "lateness_max_us": summary["lateness_max_ns"] / 1e3, "work_mean_us": summary["work_mean_ns"] / 1e3,
            "sched_fifo_granted": summary["sched_fifo"], "mlockall_granted": summary["mlockall"],
            "kernel_compiled": summary["compiled"], "safe_state": summary["safe_state"], "safe_cause": line_causes,
            "safe_values_written_at_stop": summary.get("safe_values_written"),
            "last_status": dataclasses.asdict(status) if status else None,
        },
        "hot_station": {
            "station": hot, "short_onset_s": onset_s, "first_relief_after_onset_s": first_relief_s,
            "outcome": h["outcome"], "causes": h["causes"], "end_s": h["end_s"],
            "isolated_at_degc": h["isolated_at_degc"],
            "peak_marker_temp_degc": h["peak_marker_temp_degc"],
            "peak_relief_kpa": float(relief[:, hot].max()) if len(t) else None,
            "peak_coolant_lpm": float(coolant[:, hot].max()) if len(t) else None,
        },
        "stations": stations,
        "stations_finished": sum(st["outcome"] == "finished" for st in stations),
        "stations_isolated": sum(st["outcome"] == "isolated" for st in stations),
        "other_stations_peak_marker_temp_degc": max((st["peak_marker_temp_degc"] or 0.0) for st in others),
        "charge_removed_ah": round(float(removed.sum()), 3),
        "files": {"json": str(out / "report.json"), "png": str(out / "report.png")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    _plot(out / "report.png", t, temps, relief, coolant, trace["current_a"], hot, onset_s, limits, stations)
    return report


def plant_cell_id(plant, station: int) -> int:
    ids = getattr(plant, "cell_ids", None)
    return int(ids[station]) if ids is not None else station


def _trip_time(t: np.ndarray, current: np.ndarray) -> float | None:
    """Plant time of the last sample with current flowing (the cut-off came after it)."""
    flowing = np.flatnonzero(current > 0.05)
    return float(t[flowing[-1]]) if flowing.size else None


def _plot(path: Path, t, temps, relief, coolant, current, hot: int, onset_s: float, limits, stations) -> None:
    n = temps.shape[1]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    ax = axes[0]
    for k in range(temps.shape[2]):
        ax.plot(t, temps[:, hot, k], label=f"station {hot} marker {k}")
    others = [s for s in range(n) if s != hot]
    ax.plot(t, temps[:, others].max(axis=(1, 2)), "k--", label="other stations, hottest marker")
    ax.axhline(limits.warning_degc, color="orange", lw=0.8, label=f"warning {limits.warning_degc:g} degC")
    ax.axhline(limits.temp_limit_degc, color="r", lw=0.8, label=f"maximum safety {limits.temp_limit_degc:g} degC")
    ax.set_ylabel("temperature (degC)")
    ax.legend(fontsize=7, loc="upper left")
    for ax, data, label in ((axes[1], relief, "relief, most relieved zone (kPa)"),
                            (axes[2], coolant, "coolant (L/min)"), (axes[3], current, "current (A)")):
        for s in range(n):
            ax.plot(t, data[:, s], lw=2.0 if s == hot else 0.8, label=f"station {s}: {stations[s]['outcome']}")
        ax.set_ylabel(label)
    axes[3].legend(fontsize=7, ncol=4, loc="upper right")
    for ax in axes:
        ax.axvline(onset_s, color="r", lw=0.8, ls=":")
        if stations[hot]["outcome"] == "isolated":
            ax.axvline(stations[hot]["end_s"], color="k", lw=0.8, ls="-.")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("plant time (s)")
    fig.suptitle(f"discharge-edge demo: HIL bench, hot cell on station {hot} from {onset_s:.0f} s (red dotted); "
                 f"station {hot} {stations[hot]['outcome']}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

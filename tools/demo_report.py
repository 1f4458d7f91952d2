"""The demo's report: one JSON file and one PNG of temperatures, relief, coolant and currents.

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


def write_report(out: Path, trace: dict[str, np.ndarray], summary: dict, status, plant, hot: int,
                 onset_s: float, time_scale: float) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t = trace["t_s"]
    temps = trace["temp_degc"].reshape(len(t), 8, -1) if len(t) else np.zeros((0, 8, 4))
    relief, coolant = trace["relief_kpa"], trace["coolant_lpm"]
    answered = (t >= onset_s) & (relief[:, hot] > 0) if len(t) else np.zeros(0, bool)
    first_relief_s = round(float(t[answered][0] - onset_s), 1) if answered.any() else None
    others = [s for s in range(8) if s != hot]
    causes = [f.name for f in Flag if f and summary["safe_cause"] & int(f)]
    # a thermal alarm is the loop doing its job; any other cause (link, overrun, sensor) is a failure here
    thermal_only = not summary["safe_state"] or not summary["safe_cause"] & ~int(Flag.OVER_TEMP | Flag.DTDT_ALARM)
    report = {
        "ok": bool(len(t) and summary["ticks"] > 0 and thermal_only and answered.any()),
        "plant_time_s": round(float(plant.t_s), 1),
        "time_scale": time_scale,
        "rtcore": {
            "ticks": summary["ticks"], "overruns": summary["overruns"],
            "lateness_p50_us": summary["lateness_p50_ns"] / 1e3, "lateness_p99_us": summary["lateness_p99_ns"] / 1e3,
            "lateness_max_us": summary["lateness_max_ns"] / 1e3, "work_mean_us": summary["work_mean_ns"] / 1e3,
            "sched_fifo_granted": summary["sched_fifo"], "mlockall_granted": summary["mlockall"],
            "kernel_compiled": summary["compiled"], "safe_state": summary["safe_state"],
            "safe_cause": causes,
            "last_status": dataclasses.asdict(status) if status else None,
        },
        "hot_station": {
            "station": hot, "short_onset_s": onset_s, "first_relief_after_onset_s": first_relief_s,
            "peak_marker_temp_degc": float(np.nanmax(temps[:, hot])) if len(t) else None,
            "peak_relief_kpa": float(relief[:, hot].max()) if len(t) else None,
            "peak_coolant_lpm": float(coolant[:, hot].max()) if len(t) else None,
        },
        "other_stations_peak_marker_temp_degc": float(np.nanmax(temps[:, others])) if len(t) else None,
        "other_stations_relief_events": int((relief[:, others] > 0).any(axis=0).sum()) if len(t) else 0,
        "charge_removed_ah": round(float((plant.initial_charge_ah - plant.residual_ah()).sum()), 3),
        "files": {"json": str(out / "report.json"), "png": str(out / "report.png")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    _plot(out / "report.png", t, temps, relief, coolant, trace["current_a"], hot, onset_s)
    return report


def _plot(path: Path, t, temps, relief, coolant, current, hot: int, onset_s: float) -> None:
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    ax = axes[0]
    for k in range(temps.shape[2]):
        ax.plot(t, temps[:, hot, k], label=f"station {hot} marker {k}")
    others = [s for s in range(8) if s != hot]
    ax.plot(t, temps[:, others].max(axis=(1, 2)), "k--", label="other stations, hottest marker")
    ax.set_ylabel("temperature (degC)")
    ax.legend(fontsize=7, loc="upper left")
    for ax, data, label in ((axes[1], relief, "relief (kPa)"), (axes[2], coolant, "coolant (L/min)"),
                            (axes[3], current, "current (A)")):
        for s in range(8):
            ax.plot(t, data[:, s], lw=2.0 if s == hot else 0.8, label=f"station {s}")
        ax.set_ylabel(label)
    axes[1].legend(fontsize=7, ncol=4, loc="upper left")
    for ax in axes:
        ax.axvline(onset_s, color="r", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("plant time (s)")
    fig.suptitle(f"discharge-edge demo: HIL bench, hot cell on station {hot} from {onset_s:.0f} s (red line)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

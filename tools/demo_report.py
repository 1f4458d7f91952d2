"""The demo's report: the batch JSON, one record file per battery, and two plots.

`write_report` joins what the supervisor recorded (its `run --json` summary: one record per
battery, with the grade, the strategy and the model versions) with what the bench measured (its
truth: each battery's hottest cell, time above warning, charge left when it was unloaded) and
what the core did (its run summary, its isolations, and around a supervisor crash). Times in the
supervisor's records are its clock (plant seconds on a scaled bench); they are mapped to the
bench's plant time through the pairs the demo sampled. Files under OUT: batch.json, records/<cell>.json,
trace.npz (the bench's samples every 5 s of plant time, per station),
report.png (per station: hottest cell, current, relief, coolant), gantt.png (stations over time,
one bar per battery, coloured by tier; isolated bars hatched; the robot's moves on their own row).
Per battery: its slot, station and channel, the robot's move (plant times) and the vision figures
the supervisor placed it on; per batch: batteries per hour, the robot's moves and busy time, and
whether each channel's stations held one tier at a time.
report.html: the product's batch report (`discharge-edge report`, edge/report/) of the demo's state
dir on the wall clock (the store's clock divided by the time scale), with the two bench figures
above added as its "From the bench" section.
Tests: tests/tools/test_demo.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402

from edge.rtloop.stats import TIMING_NS, timing_us  # noqa: E402


def _to_plant_time(clock_pairs):
    """The map from the supervisor's clock to plant time, from the demo's (clock, plant time)
    samples; None stays None, and so does every time when there are no samples."""
    if not clock_pairs:
        return lambda clock_s: None
    clock, plant = np.asarray(clock_pairs, float).T
    return lambda clock_s: None if clock_s is None else round(float(np.interp(float(clock_s), clock, plant)), 1)


def _round(x, digits=2):
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def write_report(out: Path, *, result: dict, meter, clock_pairs, rt_summary: dict, rt_final: dict,
                 core_isolated_at: dict[int, float], crash: dict | None, cells, run: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    records = result.get("batteries", [])
    truth_of = {}
    for bt in meter.batteries:  # a battery loaded twice (a failed load retried) keeps its last stay
        truth_of[str(bt.cell_id)] = bt
    plant_time = _to_plant_time(clock_pairs)
    batteries = []
    for r in records:
        cell = str(r["cell_id"])
        bt = truth_of.get(cell)
        batteries.append({
            "cell_id": cell, "station": r.get("station"), "tier": r.get("tier"),
            "soc_pct": _round(r.get("soc_pct")), "soc_interval_pct": [_round(r.get("soc_lo_pct")), _round(r.get("soc_hi_pct"))],
            "soc_level": r.get("soc_level"),
            "soh_est": _round(r.get("soh_est"), 4),
            "soh_interval": [_round(r.get("soh_est", np.nan) - r.get("soh_sd", np.nan), 4),
                             _round(r.get("soh_est", np.nan) + r.get("soh_sd", np.nan), 4)],
            "route": r.get("route"), "strategy": r.get("strategy"),
            "start_s": plant_time(r.get("start_s")), "end_s": plant_time(r.get("end_s")),
            "passes": r.get("passes"), "redischarges": r.get("redischarges"), "pass_end": r.get("pass_end"),
            "charge_removed_ah": _round(r.get("charge_removed_ah"), 3),
            "charge_removed_ah_truth": _round(bt.initial_ah - bt.residual_ah, 3) if bt else None,
            "residual_pct_est": _round(r.get("residual_pct_est")),
            "residual_pct_truth": _round(100.0 * bt.residual_ah / bt.initial_ah) if bt and bt.initial_ah > 0 else None,
            "peak_temp_degc": _round(r.get("peak_temp_degc")),
            "peak_cell_degc_truth": _round(bt.peak_cell_degc) if bt else None,
            "time_above_warning_s": _round(r.get("time_above_warning_s"), 1),
            "time_above_warning_s_truth": _round(bt.above_warning_s, 1) if bt else None,
            "outcome": r.get("outcome"), "cause": r.get("cause", []), "reason": r.get("reason", ""),
            "model_versions": r.get("model_versions", {}), "source": r.get("source"),
            "slot": r.get("slot"), "channel": r.get("channel"),
            "placement": _placement(r.get("placement"), plant_time),
            "vision": r.get("vision"), "clamp_kpa": _round(r.get("clamp_kpa"), 1),
            "clamped_s": plant_time(r.get("clamped_s")),
        })
    counts = Counter(b["cell_id"] for b in batteries)
    expected = [str(c) for c in np.asarray(cells["cell_id"]).astype(np.int64)]
    missing = sorted(set(expected) - set(counts))
    starts = [b["start_s"] for b in batteries if b["start_s"] is not None]
    ends = [b["end_s"] for b in batteries if b["end_s"] is not None]
    t = np.asarray(meter.trace["t_s"], float)
    timing = timing_us(rt_summary) if all(k in rt_summary for k in TIMING_NS) else {}
    rt = {"ticks": rt_summary.get("ticks", rt_final.get("ticks")),
          "lateness_p99_us": timing.get("lateness_p99_us"), "lateness_max_us": timing.get("lateness_max_us"),
          "compiled_core": rt_summary.get("compiled"),
          "overruns": rt_summary.get("overruns", rt_final.get("overruns")),
          "bus_misses": rt_summary.get("bus_misses", rt_final.get("bus_misses")),
          "line_safe_state": bool(rt_final.get("line_safe_state", False)),
          "safe_values_written_at_stop": rt_summary.get("safe_values_written"),
          "stations_isolated_at_s": {str(s): round(v, 1) for s, v in sorted(core_isolated_at.items())}}
    batch = {
        "batch_time_s": _round(max(ends) - min(starts), 1) if starts and ends else None,
        "plant_time_s": _round(float(t[-1]) if t.size else 0.0, 1),
        "last_end_s": _round(max(ends), 1) if ends else None,
        "time_above_warning_s": _round(meter.line_above_warning_s, 1),
        "battery_time_above_warning_s": _round(sum(b.above_warning_s for b in meter.batteries), 1),
        "isolations": sum(1 for b in batteries if b["outcome"] == "isolated"),
        "supervisor_restarts": result.get("restarts"),
        "batteries_recorded": len(counts), "each_recorded_once": all(v == 1 for v in counts.values()),
        "batteries_missing": missing,
        "outcomes": dict(Counter(b["outcome"] for b in batteries)),
        "packml_state": result.get("packml_state"),
        "batteries_per_h": _round(3600.0 * len(counts) / (max(ends) - min(starts)), 2)
        if starts and ends and max(ends) > min(starts) else None,
        "channels_one_tier_at_a_time": _one_tier_per_channel(batteries),
        **_robot_summary(result.get("robot_moves", []), plant_time),
    }
    ok = (run.get("supervisor_exit_code") == 0 and not missing and batch["each_recorded_once"]
          and not rt["line_safe_state"])
    files = {"json": str(out / "batch.json"), "records": str(out / "records"), "png": str(out / "report.png"),
             "gantt": str(out / "gantt.png"), "trace": str(out / "trace.npz"),
             "supervisor_log": str(out / "supervisor.log"),
             "state_dir": result.get("state_dir")}
    hot = next((b for b in batteries if b["cell_id"] == run.get("short_battery")), None)
    hot_battery = None if hot is None else {k: hot[k] for k in (
        "cell_id", "station", "tier", "outcome", "cause", "start_s", "end_s", "peak_temp_degc", "peak_cell_degc_truth",
        "time_above_warning_s_truth")}
    report = {"ok": ok, "run": run, "batch": batch, "rtcore": rt, "hot_battery": hot_battery, "supervisor_crash": crash,
              "model_versions": result.get("model_versions", {}), "batteries": batteries, "files": files}
    records_dir = out / "records"
    records_dir.mkdir(exist_ok=True)
    for b in batteries:
        (records_dir / f"{b['cell_id']}.json").write_text(json.dumps(b, indent=2) + "\n")
    np.savez_compressed(out / "trace.npz", **{k: np.asarray(v) for k, v in meter.trace.items()})
    _plot_stations(out / "report.png", meter, run)
    _plot_gantt(out / "gantt.png", meter, batteries, run, _moves(result.get("robot_moves", []), plant_time))
    files["html"], report["html_error"] = _write_html(out, result, run)
    (out / "batch.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return report


def _write_html(out: Path, result: dict, run: dict) -> tuple[str | None, str | None]:
    """OUT/report.html by edge.report from the demo's state dir; (path, None) or (None, why)."""
    from edge.report import ReportError, write_report as write_html

    state_dir = Path(result.get("state_dir") or out / "state")
    extra = [("bench truth per station (plant seconds): hottest cell, current, relief, coolant",
              (out / "report.png").read_bytes()),
             ("bench truth: loaded ids on the stations (plant seconds)", (out / "gantt.png").read_bytes())]
    try:
        page = write_html(state_dir, out / "report.html", time_scale=float(run.get("time_scale") or 1.0),
                          extra_images=extra, warning_degc=run.get("warning_degc"),
                          temp_limit_degc=run.get("temp_limit_degc"))
    except (ReportError, OSError) as exc:
        return None, str(exc)
    return page["html"], None


def _placement(placement: dict | None, plant_time) -> dict | None:
    """The robot's move of a battery to its station, its times in plant seconds."""
    if not placement:
        return None
    return {**placement, **{k: plant_time(placement.get(k)) for k in ("ordered_s", "acked_s", "done_s")}}


def _one_tier_per_channel(batteries: list[dict]) -> bool | None:
    """True when no two batteries of different tiers were on one channel's stations at once (a
    battery holds its station from its placement to its record)."""
    stays: dict[str, list[tuple[float, float, int]]] = {}
    for b in batteries:
        placed = (b.get("placement") or {}).get("done_s")
        begin = placed if placed is not None else b.get("start_s")
        if b.get("channel") is None or begin is None or b.get("end_s") is None:
            continue
        stays.setdefault(b["channel"], []).append((begin, b["end_s"], b["tier"]))
    if not stays:
        return None
    for spans in stays.values():
        for i, (a0, a1, ta) in enumerate(spans):
            if any(ta != tb and a0 < b1 and b0 < a1 for b0, b1, tb in spans[i + 1:]):
                return False
    return True


def _moves(robot_moves: list[dict], plant_time) -> list[dict]:
    return [{"pick": m.get("pick"), "place": m.get("place"), "battery_id": m.get("battery_id"), "ok": m.get("ok"),
             "reason": m.get("reason", ""), "attempts": len(m.get("attempts", ())),
             "ordered_s": plant_time(m.get("ordered_s")), "done_s": plant_time(m.get("done_s"))}
            for m in robot_moves]


def _robot_summary(robot_moves: list[dict], plant_time) -> dict:
    moves = _moves(robot_moves, plant_time)
    busy = [m["done_s"] - m["ordered_s"] for m in moves if m["ordered_s"] is not None and m["done_s"] is not None]
    return {"robot_moves": len(moves), "robot_moves_failed": sum(1 for m in moves if not m["ok"]),
            "robot_busy_s": _round(sum(busy), 1), "robot_move_mean_s": _round(float(np.mean(busy)), 1) if busy else None}


def _plot_stations(path: Path, meter, run: dict) -> None:
    t = np.asarray(meter.trace["t_s"], float)
    n = meter.n_stations
    series = [("hot_cell_degc", "hottest cell, °C"), ("current_a", "current, A"), ("relief_share", "relief, share of the clamp"),
              ("coolant_lpm", "coolant, L/min")]
    fig, axes = plt.subplots(len(series), 1, figsize=(11, 10), sharex=True)
    for ax, (key, label) in zip(axes, series):
        values = np.asarray(meter.trace[key], float).reshape(len(t), n) if t.size else np.zeros((0, n))
        for s in range(n):
            ax.plot(t, values[:, s], lw=1.0, label=f"station {s}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(run["warning_degc"], color="orange", ls="--", lw=1, label="warning")
    axes[0].axhline(run["temp_limit_degc"], color="red", ls="--", lw=1, label="maximum safety")
    axes[0].legend(ncol=5, fontsize=7, loc="upper right")
    axes[-1].set_xlabel("plant time, s")
    fig.suptitle(f"demo: {run['modules']} batteries, {run['protocol']}, {run['stations']} stations")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_gantt(path: Path, meter, batteries: list[dict], run: dict, moves: list[dict]) -> None:
    """One bar per battery stay on a station (the bench's loaded id), coloured by tier; the robot's
    moves on a row of their own above the stations (grey; a failed move red)."""
    tier_of = {b["cell_id"]: b["tier"] for b in batteries}
    outcome_of = {b["cell_id"]: b["outcome"] for b in batteries}
    end_t = float(meter.trace["t_s"][-1]) if meter.trace["t_s"] else 0.0
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(11, 0.5 * meter.n_stations + 1.5))
    for bt in meter.batteries:
        cell = str(bt.cell_id)
        end = bt.unloaded_s if bt.unloaded_s is not None else end_t
        tier = tier_of.get(cell) or 0
        ax.barh(bt.station, end - bt.loaded_s, left=bt.loaded_s, color=colours(tier % 10), edgecolor="black",
                hatch="//" if outcome_of.get(cell) == "isolated" else None)
        ax.text(bt.loaded_s + 0.5 * (end - bt.loaded_s), bt.station, cell, ha="center", va="center", fontsize=7)
    for m in moves:
        if m["ordered_s"] is None or m["done_s"] is None:
            continue
        ax.barh(-1, max(m["done_s"] - m["ordered_s"], 1.0), left=m["ordered_s"], color="lightgrey" if m["ok"] else "red",
                edgecolor="black", lw=0.4)
    tiers = sorted({b["tier"] for b in batteries if b["tier"] is not None})
    handles = [Patch(facecolor=colours(tier % 10), edgecolor="black", label=f"tier {tier}") for tier in tiers]
    handles += [Patch(facecolor="lightgrey", edgecolor="black", label="robot move"),
                Patch(facecolor="red", edgecolor="black", label="robot move failed")]
    ax.set_yticks(range(-1, meter.n_stations))
    ax.set_yticklabels(["robot"] + [f"station {s}" for s in range(meter.n_stations)])
    ax.invert_yaxis()
    ax.set_xlabel("plant time, s")
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title("stations over time (hatched: isolated by the core)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

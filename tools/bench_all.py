"""`discharge-edge bench all --json`: every benchmark of issue 19 in one run, one JSON object.

Owns `bench_all` (the measurements, each a flat dict of numbers with the unit in the key name,
merged under one prefix per benchmark), `table` (the table `bench all` prints without --json, and
`make bench`) and `compare` (this run against an earlier one's JSON, for `make bench`: the
Makefile keeps each run under build/bench/ and the last as last.json).
Progress goes to stderr, one line a benchmark. A benchmark that cannot run here is not an
error: its entry is `{"skipped": "<why>"}` and the others go on.

| prefix | what | how |
|---|---|---|
| `tick_64_points`, `tick_1024_points` | one rtcore tick, every marker hot (the worst case of tests/rtcore/test_bench.py) | the compiled kernel, 200 ticks: median, p99, max µs |
| `loop` | lateness of the real-time loop in its own process under a CPU and a GIL hog | tools.bench_rtcore |
| `tick_work_<protocol>_<N>_stations` | tick work (read + tick + write) against the served bench at N = 8, 64, 128 stations | tools.bench_soak.soak, no hog, a few seconds |
| `grade_10000` | `discharge-edge grade --json` on 10 000 held-out rows (tests/data's 800 unseen cells drawn with replacement, ids renumbered) | a child process: wall s, its CPU s (user + sys), peak RSS MB, the 1-minute load average before it |
| `grade_10000_parts` | the same rows in this process: model load, reader, posterior, generator (float32 network, from the posterior's inputs), quantiles | s each |
| `plan_40` | `discharge-edge plan --json` on rows 0-39 of cells_train.csv, empty history | a child process: wall s, peak RSS MB, the slowest tier's planning s, the summed cost |
| `schedule_200_modules`, `schedule_2000_modules` | `edge.scheduling.best.solve` (method best) on a generated instance, fixed wiring | wall and CPU s, makespan, lower bound |
| `sil_plant` | the battery model's step (edge/batterymodel/plant.py) at 4 and 40 modules, and a stacked planner rollout | steps per second, module steps per second |

`quick=True` shortens every run (the test's setting; the figures are then only indicative).
Tests: tests/tools/test_bench_all.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge import REPO_ROOT

CELLS = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"
STATIONS = (8, 64, 128)
PROTOCOLS = ("modbus", "logix")


def _stderr(line: str) -> None:
    print(f"discharge-edge bench all: {line}", file=sys.stderr, flush=True)


def _percentiles_us(samples_s: list[float], name: str) -> dict:
    a = np.asarray(samples_s) * 1e6
    return {f"{name}_median_us": round(float(np.median(a)), 2), f"{name}_p99_us": round(float(np.percentile(a, 99)), 2),
            f"{name}_max_us": round(float(a.max()), 2)}


def _grid_fixture(n_markers: int, n_zones: int, pitch_mm: float = 20.0):
    """Markers on a grid, zones as consecutive blocks of markers (tests/rtcore/conftest.py's)."""
    from rtcore.spec import Fixture

    cols = int(np.ceil(np.sqrt(n_markers)))
    idx = np.arange(n_markers)
    xy = np.stack([(idx % cols) * pitch_mm, (idx // cols) * pitch_mm], axis=1).astype(float)
    return Fixture(xy, (idx * n_zones) // n_markers, np.full(n_zones, 1.0e4))


def _bench_tick(n_markers: int, rounds: int = 200) -> dict:
    import rtcore
    from rtcore.spec import Config, Flag, Setpoints

    n_zones = max(1, n_markers // 16)
    kernel = rtcore.Kernel(Config(n_markers=n_markers, n_zones=n_zones), _grid_fixture(n_markers, n_zones),
                           Setpoints(delta_t_threshold_degc=1.0))
    rng = np.random.default_rng(0)
    temp = 25.0 + rng.normal(0, 0.01, n_markers)
    pressure = np.full(n_zones, 300.0)
    step = np.full(n_markers, 0.08)
    for _ in range(70):
        temp += step
        pressure += rng.normal(0, 1.0, n_zones)
        kernel.tick(temp, pressure)
    times = []
    for _ in range(rounds):
        temp += step
        t0 = time.perf_counter()
        kernel.tick(temp, pressure)
        times.append(time.perf_counter() - t0)
    hot = bool(kernel.flags & Flag.RELIEF_ACTIVE) and not kernel.safe_state
    return {**_percentiles_us(times, "tick"), "rounds": rounds, "zones": n_zones, "all_markers_hot": hot,
            "compiled": type(kernel).__module__ != "rtcore.twin"}


def _bench_loop(seconds: float) -> dict:
    from tools.bench_rtcore import bench_rtcore

    r = bench_rtcore(seconds)
    return {k: r[k] for k in ("seconds", "ticks", "ticks_expected", "overruns", "lateness_p50_us", "lateness_p99_us",
                              "lateness_max_us", "work_mean_us", "work_max_us", "safe_state_at_end")}


def _bench_tick_work(protocol: str, stations: int, seconds: float) -> dict:
    from tools.bench_soak import soak

    r = soak(protocol, seconds=seconds, hogs=0, realtime=False, stations=stations)
    return {k: r[k] for k in ("stations", "seconds", "ticks", "ticks_expected", "overruns", "bus_misses",
                              "link_lost_latches", "work_mean_us", "work_max_us", "lateness_p99_us",
                              "lateness_max_us")}


_PEAK_KB = ("next((int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')), "
            "__import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss)")
"""The child's own peak resident set (kB): VmHWM, since ru_maxrss keeps the parent's across exec."""


def _child(argv: list[str], cwd: Path) -> tuple[dict, float, float]:
    """`discharge-edge ARGV` in a child process: (its JSON, wall s, peak RSS MB)."""
    code = ("import sys; from edge.cli import main; rc = main(sys.argv[1:]); "
            f"print({_PEAK_KB}, file=sys.stderr); sys.exit(rc)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"discharge-edge {' '.join(argv[:1])} exited {done.returncode}: "
                           f"{done.stderr.strip().splitlines()[-2:] if done.stderr.strip() else ''}")
    return json.loads(done.stdout), wall, int(done.stderr.strip().splitlines()[-1]) / 1024


def repeated_cells(path: Path, rows: int) -> Path:
    """cells_train.csv's rows over and over to `rows` data rows, cell ids 0..rows-1."""
    lines = CELLS.read_text().splitlines()
    header, data = lines[0], lines[1:]
    with path.open("w") as out:
        out.write(header + "\n")
        for i in range(rows):
            fields = data[i % len(data)].split(",", 1)
            out.write(f"{i},{fields[1]}\n")
    return path


HELD_OUT = tuple(REPO_ROOT / "tests" / "data" / name for name in ("cells_unseen.csv", "cells_unseen_seed11.csv"))
"""Cells simulated apart from the training file (../shared/data/gen_cells.py, other seeds): grading's
benchmark rows, so that no speed-up is tuned to the file the model was fitted on."""


def held_out_cells(path: Path, rows: int, seed: int = 19) -> Path:
    """`rows` data rows drawn with replacement from the held-out cells, cell ids 0..rows-1."""
    header, data = None, []
    for source in HELD_OUT:
        lines = source.read_text().splitlines()
        if header is not None and lines[0] != header:
            raise ValueError(f"{source}:1: columns differ from {HELD_OUT[0]}")
        header = lines[0]
        data.extend(line.split(",", 1)[1] for line in lines[1:] if line.strip())
    picks = np.random.default_rng(seed).integers(0, len(data), rows)
    with path.open("w") as out:
        out.write(header + "\n")
        out.writelines(f"{i},{data[k]}\n" for i, k in enumerate(picks))
    return path


def _bench_grade(rows: int, work: Path) -> dict:
    import os
    import resource

    path = held_out_cells(work / f"cells_{rows}.csv", rows)
    load_1min = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    report, wall, peak = _child(["grade", "--cells", str(path), "--json"], work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rows": rows, "graded": report["n_cells"], "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "peak_rss_mb": round(peak, 1), "load_1min": round(load_1min, 2)}


def _bench_grade_parts(rows: int, work: Path) -> dict:
    """Where grading's time goes, in this process: the reader, the physics posterior, the generator
    (onnxruntime, the float32 network) and the quantiles, for `rows` rows (the file of `_bench_grade`)."""
    from edge.grading.features import feature_matrix, read_cells_csv
    from edge.grading.soc_model import SocModel, quantiles_by_partition

    path = work / f"cells_{rows}.csv"
    if not path.exists():
        held_out_cells(path, rows)
    t0 = time.perf_counter()
    model = SocModel.load()
    t1 = time.perf_counter()
    x = feature_matrix(read_cells_csv(path))
    t2 = time.perf_counter()
    x_std = model.standardise(x)  # the posterior, and the SOH estimate it needs
    t3 = time.perf_counter()
    draws = [model._draws_std(x_std[a:a + 1024], None, k) for k, a in enumerate(range(0, len(x), 1024))]
    t4 = time.perf_counter()
    for d in draws:
        quantiles_by_partition(d, (0.5, 0.1, 0.9))
    t5 = time.perf_counter()
    return {"rows": rows, "model_load_s": round(t1 - t0, 3), "reader_s": round(t2 - t1, 3),
            "posterior_s": round(t3 - t2, 3), "generator_with_posterior_s": round(t4 - t2, 3),
            "generator_s": round(t4 - t3, 3), "quantiles_s": round(t5 - t4, 3)}


def _bench_plan(rows: int, work: Path, simulations: int) -> dict:
    history = work / f"plan_history_{rows}_{time.monotonic_ns()}.sqlite"
    report, wall, peak = _child(["plan", "--cells", str(CELLS), "--limit", str(rows), "--json", "--history",
                                 str(history), "--simulations", str(simulations)], work)
    tiers = report["tiers"]
    return {"batteries": rows, "tiers": len(tiers), "simulations_per_tier": simulations, "wall_s": round(wall, 3),
            "peak_rss_mb": round(peak, 1), "tier_planning_max_s": max(t["planning_s"] for t in tiers),
            "tier_planning_sum_s": round(sum(t["planning_s"] for t in tiers), 2),
            "cost_sum": round(sum(t["score_cost"] for t in tiers), 4),
            "predicted_batch_time_max_s": max(t["predicted"]["batch_time_s"] for t in tiers)}


def _bench_schedule(modules: int, time_limit_s: float) -> dict:
    from edge.scheduling.best import solve
    from edge.scheduling.generate import generate_instance
    from edge.scheduling.instance import instance_from_dict
    from edge.scheduling.plan import traditional_plan

    inst = instance_from_dict(generate_instance(modules, "fixed", seed=1))
    w0, c0 = time.perf_counter(), time.process_time()
    sol = solve(inst, "best", time_limit_s, 1)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return {"modules": modules, "time_limit_s": time_limit_s, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "makespan_min": sol.makespan_min, "lower_bound_min": sol.lower_bound_min,
            "traditional_min": traditional_plan(inst).makespan_min}


def _bench_plant(seconds: float) -> dict:
    from edge.batterymodel.plant import Batteries, Command, Plant
    from edge.grading.features import read_cells_csv
    from edge.strategy.planner import default_strategy
    from edge.strategy.rollout import Grades, Rollout

    out: dict = {}
    for m in (4, 40):
        b = Batteries(soc=np.full(m, 0.8), soh=np.full(m, 0.9), r_contact_mohm=np.full(m, 6.0),
                      t_amb_degc=np.full(m, 25.0), source="bench")
        plant = Plant(b)
        cmd = Command.idle(m, plant.cfg.n_zones)
        cmd.discharge_on[:] = True
        cmd.current_a[:] = 5.0
        cmd.coolant_lpm[:] = 8.0
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            plant.observe()
            plant.step(cmd, 1.0)
            steps += 1
        rate = steps / (time.perf_counter() - t0)
        out[f"{m}_modules_steps_per_s"] = round(rate, 1)
        out[f"{m}_modules_module_steps_per_s"] = round(rate * m, 1)
    cells = read_cells_csv(CELLS, limit=4)
    n = len(cells)
    grades = Grades(cell_ids=cells.cell_ids, soc_pct=np.full(n, 70.0), soc_lo_pct=np.full(n, 65.0),
                    soc_hi_pct=np.full(n, 75.0), soc_level=0.8, soh_est=np.full(n, 0.85), soh_sd=0.03,
                    r_mohm=cells.columns["feat_r0p1s_mOhm"], t_amb_degc=cells.columns["feat_t_amb_C"],
                    tier=np.ones(n, int))
    root = default_strategy(None)
    strategies = [root.replace(pressure_kpa=100.0 + 10.0 * k) for k in range(12)]
    rollout = Rollout(grades)
    rollout.plant()  # built once, outside the timing
    t0 = time.perf_counter()
    one = rollout(root)
    scalar_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rollout.many(strategies)
    stacked_s = time.perf_counter() - t0
    out.update({"rollout_scalar_1_strategy_s": round(scalar_s, 3), "rollout_stacked_12_strategies_s": round(stacked_s, 3),
                "rollout_virtual_s": one.batch_time_s, "rollout_modules": n,
                "rollout_stacked_speedup_x": round(12 * scalar_s / stacked_s, 1)})
    return out


def bench_all(quick: bool = False, progress: Callable[[str], None] = _stderr,
              protocols: tuple[str, ...] = PROTOCOLS, stations: tuple[int, ...] = STATIONS) -> dict:
    """Every benchmark (module docstring) -> one flat-ish dict: {prefix: {name_unit: value}}."""
    started = time.perf_counter()
    out: dict = {"created_unix_s": round(time.time(), 1), "quick": quick,
                 "host": {"cores": _cores(), "load_1min": round(_load(), 2)}}
    with tempfile.TemporaryDirectory(prefix="discharge-edge-bench-") as tmp:
        work = Path(tmp)
        runs: list[tuple[str, Callable[[], dict]]] = [
            ("tick_64_points", lambda: _bench_tick(64, 50 if quick else 200)),
            ("tick_1024_points", lambda: _bench_tick(1024, 50 if quick else 200)),
            ("loop", lambda: _bench_loop(1.0 if quick else 10.0)),
            *[(f"tick_work_{p}_{n}_stations", (lambda p=p, n=n: _bench_tick_work(p, n, 2.0 if quick else 5.0)))
              for p in protocols for n in stations],
            ("grade_10000", lambda: _bench_grade(1000 if quick else 10000, work)),
            ("grade_10000_parts", lambda: _bench_grade_parts(1000 if quick else 10000, work)),
            ("plan_40", lambda: _bench_plan(8 if quick else 40, work, 2 if quick else 16)),
            ("schedule_200_modules", lambda: _bench_schedule(20 if quick else 200, 2.0 if quick else 10.0)),
            ("schedule_2000_modules", lambda: _bench_schedule(40 if quick else 2000, 2.0 if quick else 30.0)),
            ("sil_plant", lambda: _bench_plant(0.5 if quick else 4.0)),
        ]
        for name, run in runs:
            t0 = time.perf_counter()
            try:
                out[name] = run()
                progress(f"{name}: done in {time.perf_counter() - t0:.1f} s")
            except Exception as exc:  # a benchmark that cannot run here: say why, go on
                out[name] = {"skipped": f"{type(exc).__name__}: {exc}"[:400]}
                progress(f"{name}: skipped ({out[name]['skipped']})")
    out["total_wall_s"] = round(time.perf_counter() - started, 1)
    return out


def _cores() -> int:
    try:
        import os

        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return 0


def _load() -> float:
    try:
        import os

        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return math.nan


def _flat(report: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in report.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(_flat(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


TABLE_ROWS = (
    ("tick_64_points", "tick, 64 points", (("tick_median_us", "median µs"), ("tick_p99_us", "p99 µs"))),
    ("tick_1024_points", "tick, 1024 points", (("tick_median_us", "median µs"), ("tick_p99_us", "p99 µs"))),
    ("loop", "loop lateness (CPU and GIL hog)", (("lateness_p99_us", "p99 µs"), ("lateness_max_us", "max µs"),
                                                 ("overruns", "overruns"))),
    *((f"tick_work_{p}_{n}_stations", f"tick work, {p}, {n} stations",
       (("work_mean_us", "mean µs"), ("work_max_us", "max µs"), ("overruns", "overruns")))
      for p in PROTOCOLS for n in STATIONS),
    ("grade_10000", "grade, 10 000 rows", (("wall_s", "wall s"), ("cpu_s", "CPU s"), ("peak_rss_mb", "peak MB"))),
    ("plan_40", "plan, 40 batteries", (("wall_s", "wall s"), ("tier_planning_max_s", "slowest tier s"),
                                       ("peak_rss_mb", "peak MB"))),
    ("schedule_200_modules", "schedule, 200 modules", (("wall_s", "wall s"), ("makespan_min", "makespan min"),
                                                       ("lower_bound_min", "bound min"))),
    ("schedule_2000_modules", "schedule, 2000 modules", (("wall_s", "wall s"), ("makespan_min", "makespan min"),
                                                         ("lower_bound_min", "bound min"))),
    ("sil_plant", "SIL plant, 40 modules", (("40_modules_module_steps_per_s", "module steps/s"),
                                            ("rollout_stacked_speedup_x", "stacked rollout x"))),
)
"""The table `bench all` prints (and `make bench`): per benchmark, its figures (key, label)."""


def table(report: dict, before: dict | None = None) -> list[str]:
    """The issue-19 table of a `bench_all` report as Markdown lines: one row a benchmark, its
    figures as `label value`; with `before` (an earlier run), each number followed by its change.
    A benchmark the report skipped says why; one it lacks (an older run) is left out."""
    lines = ["| benchmark | figures |", "|---|---|"]
    for prefix, title, figures in TABLE_ROWS:
        got = report.get(prefix)
        if not isinstance(got, dict):
            continue
        if "skipped" in got:
            lines.append(f"| {title} | skipped: {got['skipped']} |")
            continue
        old = before.get(prefix) if isinstance(before, dict) and isinstance(before.get(prefix), dict) else {}
        cells = []
        for key, label in figures:
            value = got.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            text = f"{label} {value:g}"
            was = old.get(key)
            if isinstance(was, (int, float)) and not isinstance(was, bool) and was:
                text += f" ({100.0 * (value - was) / was:+.0f} %)"
            cells.append(text)
        lines.append(f"| {title} | {', '.join(cells)} |")
    if isinstance(report.get("total_wall_s"), (int, float)):
        host = report.get("host", {})
        lines.append(f"\n{report['total_wall_s']:g} s in all; {host.get('cores', '?')} cores, load "
                     f"{host.get('load_1min', '?')} at the start" + (" (quick: indicative only)" if report.get("quick")
                                                                     else ""))
    return lines


def compare(now: dict, before: dict) -> list[str]:
    """Lines `key: before -> now (+x %)` for every timing or rate both runs hold (units in the key)."""
    a, b = _flat(before), _flat(now)
    lines = []
    for key in sorted(set(a) & set(b)):
        if not key.endswith(("_us", "_s", "_mb", "_per_s")) or key.endswith("unix_s"):
            continue
        old, new = a[key], b[key]
        change = f"{100.0 * (new - old) / old:+.1f} %" if old else "n/a"
        lines.append(f"{key}: {old:g} -> {new:g} ({change})")
    return lines



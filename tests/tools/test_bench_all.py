"""`discharge-edge bench all` (tools/bench_all.py): one JSON object with every benchmark of issue 19,
units in the key names, progress on stderr, a benchmark that cannot run recorded as skipped."""

import json

import pytest

import tools.bench_all as bench_all_mod
from tools.bench_all import bench_all, compare, repeated_cells

pytestmark = pytest.mark.bench

PREFIXES = ("tick_64_points", "tick_1024_points", "loop", "tick_work_modbus_8_stations", "grade_10000",
            "grade_10000_parts", "plan_40",
            "schedule_200_modules", "schedule_2000_modules", "sil_plant")


@pytest.fixture(scope="module")
def quick_report():
    lines = []
    report = bench_all(quick=True, progress=lines.append, protocols=("modbus",), stations=(8,))
    return report, lines


def test_every_benchmark_is_there_with_units_in_its_keys(quick_report):
    report, lines = quick_report
    for prefix in PREFIXES:
        assert prefix in report and "skipped" not in report[prefix], (prefix, report.get(prefix))
    assert len(lines) == len(PREFIXES) and all("done in" in line for line in lines)
    assert 0 < report["tick_64_points"]["tick_median_us"] < report["tick_1024_points"]["tick_median_us"]
    assert report["tick_64_points"]["all_markers_hot"] and report["tick_1024_points"]["compiled"]
    assert report["loop"]["ticks"] > 0 and report["loop"]["lateness_p99_us"] >= report["loop"]["lateness_p50_us"]
    assert report["tick_work_modbus_8_stations"]["stations"] == 8
    assert report["tick_work_modbus_8_stations"]["work_mean_us"] > 0
    assert report["grade_10000"]["graded"] == report["grade_10000"]["rows"] == 1000
    assert report["grade_10000"]["peak_rss_mb"] > 20 and report["grade_10000"]["wall_s"] > 0
    parts = report["grade_10000_parts"]
    assert parts["rows"] == 1000 and min(parts["reader_s"], parts["posterior_s"], parts["generator_s"]) > 0
    assert report["plan_40"]["tiers"] >= 1 and report["plan_40"]["tier_planning_max_s"] > 0
    assert report["schedule_2000_modules"]["makespan_min"] >= report["schedule_2000_modules"]["lower_bound_min"]
    plant = report["sil_plant"]
    assert plant["40_modules_module_steps_per_s"] > plant["4_modules_module_steps_per_s"]  # vectorised over modules
    assert plant["rollout_stacked_speedup_x"] > 1.5
    json.dumps(report)  # one JSON object


def test_a_benchmark_that_cannot_run_is_skipped_with_its_reason(monkeypatch):
    def broken(*args):
        raise RuntimeError("no solver here")

    for name in ("_bench_tick", "_bench_loop", "_bench_tick_work", "_bench_grade", "_bench_grade_parts", "_bench_plan",
                 "_bench_plant"):
        monkeypatch.setattr(bench_all_mod, name, lambda *a: {"x_s": 1.0})
    monkeypatch.setattr(bench_all_mod, "_bench_schedule", broken)
    lines = []
    report = bench_all(quick=True, progress=lines.append, protocols=("logix",), stations=(128,))
    assert report["schedule_200_modules"] == {"skipped": "RuntimeError: no solver here"}
    assert report["tick_work_logix_128_stations"] == {"x_s": 1.0}
    assert any("schedule_2000_modules: skipped (RuntimeError: no solver here)" in line for line in lines)


def test_compare_lists_timings_against_the_last_run():
    before = {"grade_10000": {"wall_s": 2.0, "rows": 10000}, "loop": {"lateness_p99_us": 100.0}, "created_unix_s": 1.0}
    now = {"grade_10000": {"wall_s": 1.0, "rows": 10000}, "loop": {"lateness_p99_us": 150.0}, "created_unix_s": 2.0}
    assert compare(now, before) == ["grade_10000.wall_s: 2 -> 1 (-50.0 %)", "loop.lateness_p99_us: 100 -> 150 (+50.0 %)"]


def test_repeated_cells_renumbers_the_ids(tmp_path):
    path = repeated_cells(tmp_path / "c.csv", 2500)
    lines = path.read_text().splitlines()
    assert len(lines) == 2501 and lines[0].startswith("cell_id,")
    assert [line.split(",")[0] for line in lines[1:4]] == ["0", "1", "2"] and lines[-1].startswith("2499,")


def test_bench_all_is_a_subcommand(capsys):
    from edge.cli import main

    with pytest.raises(SystemExit) as done:
        main(["bench", "all", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--compare" in out and "--quick" in out


def test_the_table_has_a_row_a_benchmark_with_its_change_against_the_last_run():
    from tools.bench_all import table

    now = {"grade_10000": {"wall_s": 0.75, "cpu_s": 0.9, "peak_rss_mb": 148.0},
           "schedule_200_modules": {"skipped": "RuntimeError: no solver here"},
           "loop": {"lateness_p99_us": 95.0, "lateness_max_us": 350.0, "overruns": 0},
           "total_wall_s": 60.0, "host": {"cores": 2, "load_1min": 0.5}, "quick": False}
    before = {"grade_10000": {"wall_s": 1.5, "cpu_s": 0.9}, "loop": {"lateness_p99_us": 100.0}}
    lines = table(now, before)
    assert lines[:2] == ["| benchmark | figures |", "|---|---|"]
    assert "| loop lateness (CPU and GIL hog) | p99 µs 95 (-5 %), max µs 350, overruns 0 |" in lines
    assert "| grade, 10 000 rows | wall s 0.75 (-50 %), CPU s 0.9 (+0 %), peak MB 148 |" in lines
    assert "| schedule, 200 modules | skipped: RuntimeError: no solver here |" in lines
    assert not any("plan, 40" in line for line in lines)  # not in this report: left out
    assert lines[-1] == "\n60 s in all; 2 cores, load 0.5 at the start"


def test_bench_all_prints_the_table_keeps_the_json_with_out_and_json_prints_the_object(monkeypatch, tmp_path, capsys):
    from edge.cli import main

    report = {"grade_10000": {"wall_s": 0.8, "cpu_s": 1.0, "peak_rss_mb": 150.0}, "total_wall_s": 1.0,
              "host": {"cores": 2, "load_1min": 0.1}, "quick": True}
    monkeypatch.setattr(bench_all_mod, "bench_all", lambda quick=False: report)
    last = tmp_path / "last.json"
    last.write_text(json.dumps({"grade_10000": {"wall_s": 1.6}}))
    out = tmp_path / "run.json"
    assert main(["bench", "all", "--out", str(out), "--compare", str(last)]) == 0
    text = capsys.readouterr().out
    assert f"against {last}:" in text and "| grade, 10 000 rows | wall s 0.8 (-50 %), CPU s 1, peak MB 150 |" in text
    assert json.loads(out.read_text()) == report
    assert main(["bench", "all", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == report

"""`discharge-edge report`: the page and its path, --json, and a state dir with no batch."""

import json

import pytest

from edge.cli import main

pytestmark = pytest.mark.integration


def test_report_writes_the_page_and_says_where(batch_dir, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--state-dir", str(batch_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{out}: 5 batteries (4 done, 1 isolated)") and out.stat().st_size > 20_000


def test_report_json_is_one_object(batch_dir, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--state-dir", str(batch_dir), "--out", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["html"] == str(out) and payload["summary"]["batteries_recorded"] == 5
    assert len(payload["batteries"]) == 5 and "series" not in payload


def test_no_store_exits_1_naming_the_file(tmp_path, capsys):
    assert main(["report", "--state-dir", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/supervisor.sqlite: no supervisor store here" in err and not (tmp_path / "r.html").exists()


def test_a_time_scale_that_is_not_positive_is_bad_usage(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--state-dir", str(tmp_path), "--out", str(tmp_path / "r.html"), "--time-scale", "0"])
    assert exc.value.code == 2

"""Model metadata checked in full (issue 17): every violation a refusal naming the file and the field.

The SOC GAN (edge.grading.soc_model) and the RL policy (edge.strategy.policy) share the checks of
edge.grading.metadata_checks; onnxruntime writes nothing under $HOME.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from edge import REPO_ROOT
from edge.grading.soc_model import SHIPPED_DIR, ModelIntegrityError, SocModel
from edge.strategy.policy import PolicyIntegrityError, RlPolicy

pytestmark = pytest.mark.integration

TRAIN_CSV = REPO_ROOT.parent / "shared" / "data" / "cells_train.csv"


def copy_model(folder, stem):
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".onnx", ".json"):
        shutil.copy(SHIPPED_DIR / f"{stem}{suffix}", folder / f"{stem}{suffix}")
    return folder


def edit(folder, name, change):
    meta = json.loads((folder / name).read_text())
    change(meta)
    (folder / name).write_text(json.dumps(meta))


def pred(**values):
    return lambda m: m["prediction"].update(values)


SOC_CASES = {
    "prediction.draws=0": (pred(draws=0), r"prediction\.draws must be in \[2, 1024\], got 0"),
    "prediction.draws=-5": (pred(draws=-5), r"prediction\.draws must be in \[2, 1024\], got -5"),
    "prediction.draws=1": (pred(draws=1), r"prediction\.draws must be in \[2, 1024\], got 1"),
    "prediction.draws=2.5": (pred(draws=2.5), r"prediction\.draws must be an integer"),
    "prediction.draws=true": (pred(draws=True), r"prediction\.draws must be an integer"),
    "prediction.interval_quantiles reversed": (pred(interval_quantiles=[0.9, 0.1]),
                                               r"prediction\.interval_quantiles must be increasing"),
    "prediction.interval_quantiles=[0.1, 1.5]": (pred(interval_quantiles=[0.1, 1.5]),
                                                 r"prediction\.interval_quantiles\[1\] must be in \[0, 1\]"),
    "prediction.soc_clip_pct=[100, 0]": (pred(soc_clip_pct=[100, 0]), r"prediction\.soc_clip_pct must be increasing"),
    "prediction.soc_clip_pct=[0]": (pred(soc_clip_pct=[0]), r"prediction\.soc_clip_pct must be a list of 2 numbers"),
    "prediction.interval_scale=-1.66": (pred(interval_scale=-1.66), r"prediction\.interval_scale must be in \(0, 1000\]"),
    "prediction.interval_scale=0": (pred(interval_scale=0), r"prediction\.interval_scale must be in \(0"),
    "prediction.interval_scale=NaN": (pred(interval_scale=math.nan), r"prediction\.interval_scale must be a finite number"),
    "prediction.interval_scale missing": (lambda m: m["prediction"].pop("interval_scale"),
                                          r"prediction lacks \['interval_scale'\]"),
    "prediction.interval_level=1.5": (pred(interval_level=1.5), r"prediction\.interval_level must be in"),
    "prediction=[]": (lambda m: m.update(prediction=[]), r"prediction must be an object"),
    "scaler.mean string": (lambda m: m["scaler"]["mean"].__setitem__(3, "3.5"),
                           r"scaler\.mean\[3\] must be a finite number, got '3\.5'"),
    "scaler.std NaN": (lambda m: m["scaler"]["std"].__setitem__(0, math.nan), r"scaler\.std\[0\] must be a finite number"),
    "scaler.std=0": (lambda m: m["scaler"]["std"].__setitem__(0, 0.0), r"scaler\.std\[0\] must be in \(0"),
    "scaler=null": (lambda m: m.update(scaler=None), r"scaler and domain must be objects"),
    "domain.max string": (lambda m: m["domain"]["max"].__setitem__(0, "x"), r"domain\.max\[0\] must be a finite number"),
    "mi_table_soh=7": (lambda m: m.update(mi_table_soh=7), r"mi_table_soh must be a list of objects"),
    "mi_table_soh row missing": (lambda m: m["mi_table_soh"].pop(), r"mi_table_soh must have one row per generator input"),
    "mi_table_soh mi_nats string": (lambda m: m["mi_table_soh"][2].update(mi_nats="high"),
                                    r"mi_table_soh\[2\]\.mi_nats must be a finite number"),
    "mi_table_soh mi_nats negative": (lambda m: m["mi_table_soh"][2].update(mi_nats=-0.1),
                                      r"mi_table_soh\[2\]\.mi_nats must be in \[0"),
    "mi_table_soh copula null": (lambda m: m["mi_table_soh"][0].update(copula=None),
                                 r"mi_table_soh\[0\]\.copula must be a non-empty string"),
    "physics.relax_sd_mv NaN": (lambda m: m["physics"].update(relax_sd_mv=math.nan),
                                r"physics\.relax_sd_mv must be a finite number"),
    "physics.prior_lli string": (lambda m: m["physics"]["prior_lli"].__setitem__(0, "a"),
                                 r"physics\.prior_lli\[0\] must be a finite number"),
    "physics.hyst_points=2.5": (lambda m: m["physics"].update(hyst_points=2.5), r"physics\.hyst_points must be an integer"),
    "physics.hyst_points=10**9": (lambda m: m["physics"].update(hyst_points=10 ** 9), r"physics\.hyst_points must be in"),
    "physics.prior_lli[0]=0.95": (lambda m: m["physics"]["prior_lli"].__setitem__(0, 0.95),
                                  r"physics\.prior_lli\[0\] must be in \[0, 0\.9\)"),
    "physics priors 5000": (lambda m: [m["physics"][k].extend(m["physics"][k] * 8) for k in
                                       ("prior_lli", "prior_lam_ne", "prior_lam_pe", "prior_soh")],
                            r"physics\.prior_lli holds 6120 prior states, at most 4096"),
    "soh_model.intercept string": (lambda m: m["soh_model"].update(intercept="0.8"),
                                   r"soh_model\.intercept must be a finite number"),
    "inputs[0].dtype int8": (lambda m: m["inputs"][0].update(dtype="int8"), r"inputs\[0\]\.dtype must be one of"),
    "inputs[1].shape=[batch, -4]": (lambda m: m["inputs"][1].update(shape=["batch", -4]), r"inputs\[1\]\.shape must be"),
    "outputs=string": (lambda m: m.update(outputs="soc"), r"outputs must be a list of 1"),
    "model_file=../ok/soc_gan.onnx": (lambda m: m.update(model_file="../ok/soc_gan.onnx"),
                                      r"model_file '\.\./ok/soc_gan\.onnx' must be a file name inside"),
    "model_file=/etc/passwd": (lambda m: m.update(model_file="/etc/passwd"),
                               r"model_file '/etc/passwd' must be a file name inside"),
    "model_file=7": (lambda m: m.update(model_file=7), r"model_file must be a non-empty string"),
}


@pytest.mark.parametrize("case", list(SOC_CASES))
def test_soc_model_metadata_refused_naming_the_field(tmp_path, case):
    folder = copy_model(tmp_path / "model", "soc_gan")
    change, message = SOC_CASES[case]
    edit(folder, "soc_gan.json", change)
    with pytest.raises(ModelIntegrityError, match=message) as info:
        SocModel.load(folder)
    assert str(folder / "soc_gan.json") in str(info.value)


def test_model_file_outside_the_folder_is_refused_even_when_it_matches(tmp_path):
    """`../ok/soc_gan.onnx` names a real, matching model next door: still refused, never loaded."""
    copy_model(tmp_path / "ok", "soc_gan")
    folder = copy_model(tmp_path / "model", "soc_gan")
    edit(folder, "soc_gan.json", lambda m: m.update(model_file="../ok/soc_gan.onnx"))
    with pytest.raises(ModelIntegrityError, match="model_file"):
        SocModel.load(folder)


def test_model_file_symlinked_out_of_the_folder_is_refused(tmp_path):
    copy_model(tmp_path / "ok", "soc_gan")
    folder = copy_model(tmp_path / "model", "soc_gan")
    (folder / "soc_gan.onnx").unlink()
    (folder / "soc_gan.onnx").symlink_to(tmp_path / "ok" / "soc_gan.onnx")
    with pytest.raises(ModelIntegrityError, match=r"resolves to .*ok/soc_gan\.onnx, outside"):
        SocModel.load(folder)


@pytest.mark.parametrize("text, message", [
    ("7", "not a JSON object"),
    ("null", "not a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid JSON"),
    ('{"format": 1' + "0" * 5000 + "}", "not valid JSON"),
])
def test_soc_model_metadata_not_an_object_is_refused(tmp_path, text, message):
    (tmp_path / "soc_gan.json").write_text(text)
    with pytest.raises(ModelIntegrityError, match=message):
        SocModel.load(tmp_path)


def test_soc_model_metadata_not_utf8_is_refused(tmp_path):
    (tmp_path / "soc_gan.json").write_bytes(b'{"format": "caf\xe9"}')
    with pytest.raises(ModelIntegrityError, match=r"soc_gan\.json: not UTF-8"):
        SocModel.load(tmp_path)


def test_draws_below_two_asked_by_a_caller_is_refused():
    model = SocModel.load()
    with pytest.raises(ValueError, match=r"draws must be in 2\.\.1024, got 1"):
        model.predict([[3.7, 3.5, 3.5, 3.5, 3.5, 3.45, 3.69, 40, 41, 50, 25, 25.2, 0.3, 30]], n_draws=1)


POLICY_CASES = {
    'prior_temperature="hot"': (lambda m: m.update(prior_temperature="hot"),
                                r"prior_temperature must be a finite number, got 'hot'"),
    "prior_temperature=NaN": (lambda m: m.update(prior_temperature=math.nan), r"prior_temperature must be a finite number"),
    "prior_temperature=0": (lambda m: m.update(prior_temperature=0), r"prior_temperature must be in \(0"),
    "prior_temperature=-1": (lambda m: m.update(prior_temperature=-1), r"prior_temperature must be in \(0"),
    "state_features strings": (lambda m: m.update(state_features=["soc_mean"]), r"state_features differ"),
    "model_file=../ok/rl_policy.onnx": (lambda m: m.update(model_file="../ok/rl_policy.onnx"),
                                        r"model_file '\.\./ok/rl_policy\.onnx' must be a file name inside"),
    "model_file absolute": (lambda m: m.update(model_file=str(SHIPPED_DIR / "rl_policy.onnx")),
                            r"must be a file name inside"),
    "inputs=[]": (lambda m: m.update(inputs=[]), r"inputs must be a list of 1"),
}


@pytest.mark.parametrize("case", list(POLICY_CASES))
def test_policy_metadata_refused_naming_the_field(tmp_path, case):
    copy_model(tmp_path / "ok", "rl_policy")
    folder = copy_model(tmp_path / "model", "rl_policy")
    change, message = POLICY_CASES[case]
    edit(folder, "rl_policy.json", change)
    with pytest.raises(PolicyIntegrityError, match=message) as info:
        RlPolicy.load(folder)
    assert str(folder / "rl_policy.json") in str(info.value)


def test_policy_metadata_not_an_object_is_refused(tmp_path):
    (tmp_path / "rl_policy.json").write_text("42")
    with pytest.raises(PolicyIntegrityError, match="not a JSON object"):
        RlPolicy.load(tmp_path)


def test_grade_with_HOME_in_a_tmp_dir_writes_nothing_under_it(tmp_path):
    """onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime on import unless told not to."""
    home = tmp_path / "home"
    home.mkdir()
    cells = tmp_path / "cells.csv"
    cells.write_text("".join(TRAIN_CSV.read_text().splitlines(keepends=True)[:21]))
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")}
    env["HOME"] = str(home)
    code = ("import sys\nfrom edge.cli import main\n"
            f"sys.exit(main(['grade', '--cells', {str(cells)!r}, '--json', '--tiers', '2']))\n"
            "from edge.strategy.policy import RlPolicy\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["n_cells"] == 20
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*")) == []


def test_policy_load_alone_writes_nothing_under_HOME(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")}
    env["HOME"] = str(tmp_path)
    code = "from edge.strategy.policy import RlPolicy\nRlPolicy.load()\n"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, timeout=120)
    assert list(tmp_path.rglob("*")) == []

"""edge.grading.cli: report_json (the text json.dumps(indent=2) would print, the cells by a template) and one_blas_thread."""

import json

import numpy as np
import pytest

from edge.grading.cli import grade_cells, report_json
from edge.grading.features import Refusal
from edge.grading.soc_model import SocModel
from edge.grading.tiers import TierConfig

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(3)
    model = SocModel.load()
    low, high = (np.asarray(model.meta["domain"][k]) for k in ("min", "max"))
    x = low + rng.uniform(-0.15, 1.15, (60, len(low))) * (high - low)  # some outside the training range
    refused = (Refusal(7, "x\u00e9\"", "cell_id", "cell_id 'x' is not a whole number"),)
    return grade_cells(model, np.arange(1000, 1060), x, TierConfig(), refused=refused)


def test_the_text_is_json_dumps_indented(report):
    assert any(c["out_of_domain"] for c in report["cells"]) and any(not c["out_of_domain"] for c in report["cells"])
    assert report_json(report) == json.dumps(report, indent=2, allow_nan=False)
    assert json.loads(report_json(report)) == report


def test_no_cells_and_odd_cells_go_through_json_dumps(report):
    empty = {**report, "cells": []}
    assert report_json(empty) == json.dumps(empty, indent=2)
    odd = {**report, "cells": [{**report["cells"][0], "soc_pct": np.float32(1.5)}, {**report["cells"][1], "extra": 1}]}
    with pytest.raises(TypeError):  # json.dumps refuses a float32: the same as before
        report_json(odd)
    keyed = {**report, "cells": [{**report["cells"][1], "extra": 1}]}
    assert report_json(keyed) == json.dumps(keyed, indent=2)


def test_a_value_that_is_not_finite_is_refused_as_json_dumps_refuses_it(report):
    bad = {**report, "cells": [{**report["cells"][0], "soh_est": float("nan")}]}
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        report_json(bad)


def test_one_blas_thread_turns_openblas_threads_off():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from edge.grading.cli import one_blas_thread

    before = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas"]
    if not before:
        pytest.skip("numpy's BLAS is not OpenBLAS here")
    try:
        one_blas_thread()
        assert [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas"] == \
            [1] * len(before)
    finally:
        threadpoolctl.threadpool_limits(limits=max(before), user_api="blas")

"""Fuzzing the cells CSV reader and the model metadata loaders (issue 17): no input raises anything
but the project's own error types (CellsFileError; ModelIntegrityError / PolicyIntegrityError)."""

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.grading import soc_model
from edge.grading.features import FEATURE_COLUMNS, PHYSICAL_RANGES, CellsFileError, read_cells_csv
from edge.grading.soc_model import SHIPPED_DIR, ModelIntegrityError
from edge.strategy import policy

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["cell_id", *FEATURE_COLUMNS]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str),
    st.sampled_from(["3.7", "40", "25", "0.3", "30", "1e30", "-1e30", "nan", "inf", "1_000", " 3.7 ", "0x10",
                     "9223372036854775808", "-9223372036854775809", "4.0e0", "", "ab", "é", "\0"]),
)
fields = st.one_of(numbers, st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
                   st.sampled_from(['"', '"a,b"', '""', "\n", "\r\n", ",", "\ufeff"]))


@st.composite
def csv_bytes(draw) -> bytes:
    header = draw(st.one_of(st.just(HEADER), st.permutations(HEADER),
                            st.lists(st.sampled_from([*HEADER, "note", "truth_soc", ""]), max_size=17)))
    n_rows = draw(st.integers(0, 6))
    rows = []
    for _ in range(n_rows):
        width = draw(st.sampled_from([len(header), len(header), len(header) - 1, len(header) + 1]))
        rows.append(",".join(draw(fields) for _ in range(max(width, 0))))
    text = "\n".join([",".join(header), *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))
    data = text.encode("utf-8")
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xe9"]))
    return prefix + data


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@FUZZ
@given(data=csv_bytes(), strict=st.booleans(), limit=st.one_of(st.none(), st.integers(0, 4)))
def test_csv_reader_raises_only_cells_file_error(scratch, data, strict, limit):
    path = scratch / "cells.csv"
    path.write_bytes(data)
    try:
        table = read_cells_csv(path, strict=strict, limit=limit)
    except CellsFileError as exc:
        assert str(path) in str(exc)
        return
    assert len(table) >= 1
    for name, (low, high, _) in PHYSICAL_RANGES.items():
        values = table.columns[name]
        assert ((low <= values) & (values <= high)).all(), name
    assert len(set(table.cell_ids.tolist())) == len(table)


@FUZZ
@given(data=st.binary(max_size=400))
def test_csv_reader_on_random_bytes_raises_only_cells_file_error(scratch, data):
    path = scratch / "bytes.csv"
    path.write_bytes(data)
    try:
        read_cells_csv(path, required=())
    except CellsFileError:
        pass


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=10,
)


def paths_of(value, prefix=()):
    """Every path to a node of a JSON tree."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            yield from paths_of(item, (*prefix, i))


def mutate(meta, path, value, delete):
    meta = copy.deepcopy(meta)
    if not path:
        return value
    node = meta
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1]) if isinstance(node, dict) else node.pop(path[-1])
    else:
        node[path[-1]] = value
    return meta


SOC_META = json.loads((SHIPPED_DIR / "soc_gan.json").read_text())
POLICY_META = json.loads((SHIPPED_DIR / "rl_policy.json").read_text())
SOC_PATHS = [p for p in paths_of(SOC_META) if "training" not in p[:1] and "mi_table_soc" not in p[:1]]
POLICY_PATHS = [p for p in paths_of(POLICY_META) if "training" not in p[:1]]


def write_json(path, meta):
    path.write_text(json.dumps(meta, allow_nan=True))


@FUZZ
@given(where=st.sampled_from(SOC_PATHS), value=json_values, delete=st.booleans())
def test_soc_metadata_loader_raises_only_model_integrity_error(scratch, where, value, delete):
    folder = scratch / "soc"
    folder.mkdir(exist_ok=True)
    path = folder / "soc_gan.json"
    write_json(path, mutate(SOC_META, where, value, delete))
    try:
        meta, _, _ = soc_model._read_metadata(path)
    except ModelIntegrityError as exc:
        assert str(path) in str(exc)
        return
    pred = meta["prediction"]
    assert pred["draws"] >= 2 and pred["interval_scale"] > 0
    assert pred["interval_quantiles"][0] < pred["interval_quantiles"][1]
    assert pred["soc_clip_pct"][0] < pred["soc_clip_pct"][1]
    assert all(math.isfinite(v) for v in meta["scaler"]["mean"])


@FUZZ
@given(where=st.sampled_from(POLICY_PATHS), value=json_values, delete=st.booleans())
def test_policy_metadata_loader_raises_only_policy_integrity_error(scratch, where, value, delete):
    folder = scratch / "policy"
    folder.mkdir(exist_ok=True)
    path = folder / "rl_policy.json"
    write_json(path, mutate(POLICY_META, where, value, delete))
    try:
        meta = policy._read_metadata(path)
    except policy.PolicyIntegrityError as exc:
        assert str(path) in str(exc)
        return
    assert meta["prior_temperature"] > 0 and math.isfinite(meta["prior_temperature"])


@FUZZ
@given(text=st.one_of(st.text(max_size=60), json_values.map(lambda v: json.dumps(v, allow_nan=True))))
def test_metadata_file_of_any_text_is_refused_cleanly(scratch, text):
    folder = scratch / "text"
    folder.mkdir(exist_ok=True)
    (folder / "soc_gan.json").write_text(text)
    (folder / "rl_policy.json").write_text(text)
    with pytest.raises(ModelIntegrityError):
        soc_model._read_metadata(folder / "soc_gan.json")
    with pytest.raises(policy.PolicyIntegrityError):
        policy._read_metadata(folder / "rl_policy.json")

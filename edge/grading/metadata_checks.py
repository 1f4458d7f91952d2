"""Checks every shipped model's metadata passes before onnxruntime sees a file (the SOC GAN, the RL policy).

Owns `load_metadata` (edge.onnx_model.read_metadata, with every other way a file can be broken:
not UTF-8, too large, too deeply nested, not a JSON object, turned into a refusal), the field
checks (`check_number`, `check_numbers`, `check_ordered_pair`, `check_text`), `check_model_file`
(`model_file` is a plain name inside the model folder: no absolute path, no `..`, no symlink out
of it) and `check_io` (the inputs and outputs declared as a list of {name, dtype, shape}), and
`quiet_onnxruntime` (onnxruntime's telemetry off: it writes under ~/.cache/Microsoft on import
unless ORT_DISABLE_TELEMETRY is set first). Every violation raises the caller's
`ModelIntegrityError` type naming the file and the field.
Tests: tests/edge/grading/test_grading_metadata.py, tests/edge/grading/test_grading_fuzz.py.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from edge.onnx_model import ONNX_TYPES, ModelIntegrityError, read_metadata

MAX_METADATA_BYTES = 16 << 20
"""A metadata file larger than this is not one export.py wrote (the shipped ones are < 1 MiB)."""

Error = type[ModelIntegrityError]


def quiet_onnxruntime() -> None:
    """No telemetry and no device-id file from onnxruntime in this process: the env var before the
    first import (it writes ~/.cache/Microsoft/DeveloperTools on import), the call after it."""
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import onnxruntime as ort

    ort.disable_telemetry_events()


def load_metadata(path: Path, fmt: str, required: tuple[str, ...], how_to_make: str, error: Error) -> dict:
    """read_metadata, with every failure a refusal naming the file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        size = 0  # read_metadata names it
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc
    if size > MAX_METADATA_BYTES:
        raise error(f"{path}: {size} bytes, more than the {MAX_METADATA_BYTES} a model's metadata may have")
    try:
        return read_metadata(path, fmt, required, how_to_make, error)
    except ModelIntegrityError:
        raise
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None
    except TypeError:
        raise error(f"{path}: not a JSON object") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:  # e.g. an integer literal too long for int()
        raise error(f"{path}: not valid JSON: {exc}") from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(path: Path, value, field: str, error: Error, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, integer: bool = False) -> float:
    """A finite number (an integer with `integer`) in [low, high] ((low, high] with `low_open`)."""
    kind = "an integer" if integer else "a finite number"
    if (not _is_number(value) or (integer and not isinstance(value, int))
            or (isinstance(value, float) and not math.isfinite(value))):
        raise error(f"{path}: {field} must be {kind}, got {_show(value)}")
    if value < low or value > high or (low_open and value == low):
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise error(f"{path}: {field} must be in {bounds}, got {_show(value)}")
    return value


def check_numbers(path: Path, value, field: str, error: Error, *, length: int | None = None,
                  positive: bool = False) -> list[float]:
    """A list of finite numbers (of `length`; each > 0 with `positive`)."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        want = f"{length} numbers" if length is not None else "numbers"
        raise error(f"{path}: {field} must be a list of {want}, got {_show(value)}")
    for i, item in enumerate(value):
        check_number(path, item, f"{field}[{i}]", error, low=0.0 if positive else -math.inf, low_open=positive)
    return value


def check_ordered_pair(path: Path, value, field: str, error: Error, *, low: float, high: float) -> tuple[float, float]:
    """[a, b] with low <= a < b <= high."""
    a, b = check_numbers(path, value, field, error, length=2)
    check_number(path, a, f"{field}[0]", error, low=low, high=high)
    check_number(path, b, f"{field}[1]", error, low=low, high=high)
    if not a < b:
        raise error(f"{path}: {field} must be increasing ([low, high]), got {_show(value)}")
    return a, b


def check_text(path: Path, value, field: str, error: Error) -> str:
    if not isinstance(value, str) or not value:
        raise error(f"{path}: {field} must be a non-empty string, got {_show(value)}")
    return value


def check_model_file(meta_path: Path, meta: dict, error: Error) -> Path:
    """The model file `meta` names, which must be a relative name resolving inside the metadata's folder."""
    name = check_text(meta_path, meta["model_file"], "model_file", error)
    folder = meta_path.parent
    if "\0" in name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise error(f"{meta_path}: model_file {name!r} must be a file name inside {folder}")
    try:
        resolved = (folder / name).resolve()
        inside = resolved.is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as exc:
        raise error(f"{meta_path}: model_file {name!r} cannot be resolved: {exc}") from exc
    if not inside:
        raise error(f"{meta_path}: model_file {name!r} resolves to {resolved}, outside {folder}")
    check_text(meta_path, meta["model_sha256"], "model_sha256", error)
    return folder / name


def check_io(path: Path, meta: dict, error: Error, *, n_inputs: int, n_outputs: int) -> None:
    """`inputs` and `outputs`: lists of {name: str, dtype: float32|float64, shape: [batch, int...]}."""
    for key, count in (("inputs", n_inputs), ("outputs", n_outputs)):
        declared = meta[key]
        if not isinstance(declared, list) or len(declared) != count:
            raise error(f"{path}: {key} must be a list of {count}, got {_show(declared)}")
        for i, item in enumerate(declared):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                raise error(f"{path}: {where} must be an object with name, dtype and shape")
            check_text(path, item.get("name"), f"{where}.name", error)
            if not isinstance(item.get("dtype"), str) or item["dtype"] not in ONNX_TYPES:
                raise error(f"{path}: {where}.dtype must be one of {sorted(ONNX_TYPES)}, got {_show(item.get('dtype'))}")
            shape = item.get("shape")
            if not isinstance(shape, list) or len(shape) < 2 or not all(
                    isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:]):
                raise error(f"{path}: {where}.shape must be [batch, positive sizes...], got {_show(shape)}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

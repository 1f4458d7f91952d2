"""Loading a shipped ONNX model only after checking it against the metadata its export wrote.

One set of rules for every model edge serves (the SOC generator, the RL policy): the metadata
file must be valid JSON with the required keys and the expected format; the model file it names
must exist and hash to its recorded sha256; the onnxruntime session's input and output names,
dtypes and shapes must be the ones the metadata declares. Any mismatch raises a
`ModelIntegrityError` naming the file. Each model adds its own checks (feature order, state
layout) on the metadata this returns. Tests: tests/edge/grading/test_grading_soc_model.py,
tests/edge/strategy/test_policy.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ONNX_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)"}


class ModelIntegrityError(RuntimeError):
    """The model or its metadata is missing, altered or inconsistent; the message names the file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_metadata(path: Path, fmt: str, required: tuple[str, ...], how_to_make: str,
                  error: type[ModelIntegrityError] = ModelIntegrityError) -> dict:
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise error(f"{path}: model metadata not found ({how_to_make})") from exc
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc}") from exc
    missing = [key for key in required if key not in meta]
    if missing:
        raise error(f"{path}: metadata lacks {missing}")
    if meta["format"] != fmt:
        raise error(f"{path}: format {meta['format']!r}, this edge reads {fmt!r}")
    return meta


def open_session(meta_path: Path, meta: dict, error: type[ModelIntegrityError] = ModelIntegrityError,
                 threads: int = 1):
    """The onnxruntime session of the model `meta` names, after its sha256, names, dtypes and shapes check out.

    `threads`: onnxruntime's intra-op threads. With more than one, its workers do not spin while
    they wait: on 2 shared cores spinning workers doubled the CPU time of the SOC generator's
    640 000 rows for no gain (median wall 1.46 s against 0.80 s without spinning, load ~6)."""
    import onnxruntime as ort

    model_path = meta_path.parent / meta["model_file"]
    if not model_path.is_file():
        raise error(f"{model_path}: model file named by {meta_path} not found")
    actual = sha256_of(model_path)
    if actual != meta["model_sha256"]:
        raise error(f"{model_path}: sha256 {actual[:16]}... does not match {meta_path} "
                    f"({meta['model_sha256'][:16]}...); the model was altered or the metadata belongs to another export")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if threads > 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise error(f"{model_path}: onnxruntime cannot load it: {exc}") from exc
    for declared, actual_io, kind in ((meta["inputs"], session.get_inputs(), "input"),
                                      (meta["outputs"], session.get_outputs(), "output")):
        if [d["name"] for d in declared] != [a.name for a in actual_io]:
            raise error(f"{model_path}: {kind} names {[a.name for a in actual_io]} differ from the metadata's "
                        f"{[d['name'] for d in declared]}")
        for d, a in zip(declared, actual_io):
            if ONNX_TYPES.get(d.get("dtype")) != a.type:
                raise error(f"{model_path}: {kind} {a.name} is {a.type}, metadata says {d.get('dtype')}")
            if _fixed(d["shape"])[1:] != _fixed(a.shape)[1:]:
                raise error(f"{model_path}: {kind} {a.name} has shape {a.shape}, metadata says {d['shape']}")
    return session, model_path


def _fixed(shape) -> list:
    """A shape with its symbolic dimensions (batch) as None."""
    return [dim if isinstance(dim, int) else None for dim in shape]

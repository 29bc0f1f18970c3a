"""Data loading from local files, pipelines and the class-balanced test batch."""
import gzip
import os

import numpy as np
import pytest

from ladder_tf.data import balanced_test_batch, load_dataset, train_batches
from ladder_tf.data.mnist import DEBIAN_FASHION_DIR, DataNotFoundError, read_idx

rng = np.random.default_rng(0)


def write_idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as fh:
        fh.write(payload)


@pytest.fixture
def fake_mnist(tmp_path):
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (60, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(60) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(20) % 10}
    for i, (name, arr) in enumerate(arrays.items()):
        compress = i % 2 == 0  # mix gzipped and plain files
        write_idx(tmp_path / (name + (".gz" if compress else "")), arr, compress)
    return tmp_path, arrays


def test_idx_directory_loads_exactly(fake_mnist):
    path, arrays = fake_mnist
    data = load_dataset("mnist_digit", str(path), allow_download=False)
    np.testing.assert_array_equal(data.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert data.x_train.shape == (60, 28, 28, 1) and data.x_train.dtype == np.uint8


def test_keras_npz_loads(tmp_path):
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=np.arange(30) % 10, x_test=x[:10],
             y_test=np.arange(10))
    data = load_dataset("mnist_digit", str(tmp_path / "mnist.npz"), allow_download=False, train_size=12)
    assert len(data.x_train) == 12
    np.testing.assert_array_equal(data.x_test[..., 0], x[:10])


def test_truncated_idx_is_rejected(tmp_path):
    write_idx(tmp_path / "a.gz", rng.integers(0, 256, (3, 28, 28)), True)
    raw = gzip.open(tmp_path / "a.gz").read()[:-10]
    with gzip.open(tmp_path / "b.gz", "wb") as fh:
        fh.write(raw)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(tmp_path / "b.gz"))


def test_missing_data_lists_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no Keras cache either
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist_digit", None, allow_download=False)
    msg = str(err.value)
    assert "--data-dir" in msg and "TensorFlow Datasets" in msg and "IDX" in msg
    assert f"Keras' cache {tmp_path / 'keras' / 'datasets' / 'mnist.npz'}" in msg


def test_train_batches_are_seeded_and_resumable():
    images = rng.integers(0, 256, (50, 28, 28, 1), dtype=np.uint8)
    a = np.concatenate(list(train_batches(images, 8, seed=3, epoch=2).as_numpy_iterator()))
    b = np.concatenate(list(train_batches(images, 8, seed=3, epoch=2).as_numpy_iterator()))
    c = np.concatenate(list(train_batches(images, 8, seed=3, epoch=3).as_numpy_iterator()))
    resumed = np.concatenate(list(train_batches(images, 8, seed=3, epoch=2, skip_batches=2).as_numpy_iterator()))
    assert a.shape == (48, 28, 28, 1) and a.dtype == np.float32 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(resumed, a[16:])


def test_balanced_test_batch_matches_original_counts():
    labels = np.tile(np.arange(10), 100)
    images = np.zeros((1000, 28, 28, 1), np.uint8)
    _, y = balanced_test_batch(images, labels, 256)
    counts = np.bincount(y, minlength=10)
    np.testing.assert_array_equal(counts, [26] * 6 + [25] * 4)


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION_DIR), reason="Debian dataset-fashion-mnist not installed")
def test_full_fashion_mnist_from_debian():
    data = load_dataset("mnist_fashion", allow_download=False)
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert set(np.unique(data.y_train)) == set(range(10))

"""Keras' own download cache (~/.keras/datasets, or $KERAS_HOME/datasets) as a data source:
after a prepared TensorFlow Datasets copy, before the Debian package and any download."""
import numpy as np
import pytest

from ladder_tf.data import load_dataset
from ladder_tf.data.mnist import keras_cache_path
from test_data import write_idx

rng = np.random.default_rng(0)
IDX = {"train-images-idx3-ubyte": (40, 28, 28), "train-labels-idx1-ubyte": (40,),
       "t10k-images-idx3-ubyte": (10, 28, 28), "t10k-labels-idx1-ubyte": (10,)}


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras home and no prepared TFDS copy."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    return tmp_path / "keras" / "datasets"


def test_cache_locations_follow_keras(keras_home, monkeypatch):
    assert keras_cache_path("mnist_digit") == str(keras_home / "mnist.npz")
    assert keras_cache_path("mnist_fashion") == str(keras_home / "fashion-mnist")
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", "/home/someone")
    assert keras_cache_path("mnist_digit") == "/home/someone/.keras/datasets/mnist.npz"


def test_digits_from_keras_mnist_npz(keras_home):
    x = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    np.savez(keras_home / "mnist.npz", x_train=x, y_train=np.arange(30) % 10, x_test=x[:10],
             y_test=np.arange(10))
    data = load_dataset("mnist_digit", allow_download=False)
    assert data.source == f"npz file {keras_home / 'mnist.npz'}"
    np.testing.assert_array_equal(data.x_train[..., 0], x)


def test_fashion_from_keras_folder_comes_before_debian(keras_home):
    """Keras keeps Fashion-MNIST as the four gzipped IDX files; they win over Debian's copy."""
    folder = keras_home / "fashion-mnist"
    folder.mkdir()
    arrays = {name: rng.integers(0, 10 if len(shape) == 1 else 256, shape) for name, shape in IDX.items()}
    for name, arr in arrays.items():
        write_idx(folder / f"{name}.gz", arr, compress=True)
    data = load_dataset("mnist_fashion", allow_download=False)
    assert data.source == f"IDX files in {folder}"
    np.testing.assert_array_equal(data.y_train, arrays["train-labels-idx1-ubyte"])

"""`ladder data mnist_digit`: the pickled MNIST of the package index, checked and converted exactly."""
import gzip
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from ladder_tf.commands import data as data_cmd
from ladder_tf.data import load_dataset
from ladder_tf.data.mnist_pickle import (DigitsSourceError, SplitSpec, decode_mnist_pickle, read_pickle_gz,
                                         write_keras_npz)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = SplitSpec(sizes=(20, 10, 10), train_counts=(3,) * 10, test_counts=(1,) * 10)


def small_mnist(rng):
    """(uint8 images, labels) of each split, and the gzipped float32 pickle of them in MNIST's layout."""
    splits, raw = [], []
    for n, labels in ((20, np.arange(20) % 10), (10, np.arange(10)), (10, np.arange(10)[::-1])):
        k = rng.integers(0, 256, (n, 784))
        splits.append((k.astype(np.uint8).reshape(n, 28, 28), labels.astype(np.int64)))
        raw.append(((k / 256.0).astype(np.float32), labels.astype(np.int64)))
    return splits, gzip.compress(pickle.dumps(tuple(raw), protocol=2))


def test_a_generated_pickle_converts_exactly(tmp_path):
    splits, gz = small_mnist(np.random.default_rng(0))
    arrays = decode_mnist_pickle(gz, spec=SMALL)
    np.testing.assert_array_equal(arrays["x_train"], np.concatenate([splits[0][0], splits[1][0]]))
    np.testing.assert_array_equal(arrays["y_train"], np.concatenate([splits[0][1], splits[1][1]]))
    np.testing.assert_array_equal(arrays["x_test"], splits[2][0])
    out = tmp_path / "mnist.npz"
    write_keras_npz(arrays, str(out))
    with np.load(out) as f:
        assert {k: f[k].dtype for k in f.files} == {k: np.uint8 for k in ("x_train", "y_train", "x_test", "y_test")}
    data = load_dataset("mnist_digit", str(out), allow_download=False)  # what training reads
    np.testing.assert_array_equal(data.x_test[..., 0], splits[2][0])
    np.testing.assert_array_equal(data.y_train[:20], splits[0][1])


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_naming_another_global_is_refused_without_running_it(monkeypatch):
    gz = gzip.compress(pickle.dumps((np.zeros(3), Boom()), protocol=2))
    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd))
    with pytest.raises(DigitsSourceError, match=r"names (posix|os)\.system; only numpy arrays"):
        decode_mnist_pickle(gz, spec=SMALL)
    assert ran == []


def test_object_arrays_are_refused():
    gz = gzip.compress(pickle.dumps(np.array([1, "a"], dtype=object), protocol=2))
    with pytest.raises(DigitsSourceError, match="holds Python objects"):
        decode_mnist_pickle(gz, spec=SMALL)


@pytest.mark.parametrize("damage, message", [
    ("counts", "label counts per class are 3 3 3 3 3 3 3 3 3 3; MNIST's are 3 3 3 3 3 3 3 3 3 4"),
    ("pixel", "1 train pixel.s. are not k/256"),
    ("shape", r"train images are float32 \(20, 783\)"),
    ("gzip", "not a complete gzip file"),
])
def test_a_wrong_file_is_refused_and_nothing_is_written(tmp_path, damage, message):
    rng = np.random.default_rng(1)
    _, gz = small_mnist(rng)
    spec = SMALL
    if damage == "counts":
        spec = SplitSpec(SMALL.sizes, (3,) * 9 + (4,), SMALL.test_counts)
    elif damage in ("pixel", "shape"):
        data = pickle.loads(gzip.decompress(gz), encoding="latin1")
        x = data[0][0].copy()
        x = x[:, :783] if damage == "shape" else x
        if damage == "pixel":
            x[3, 5] = 0.3
        gz = gzip.compress(pickle.dumps(((x, data[0][1]),) + data[1:], protocol=2))
    else:
        gz = gz[: len(gz) // 2]
    out = tmp_path / "mnist.npz"
    with pytest.raises(DigitsSourceError, match=message):
        write_keras_npz(decode_mnist_pickle(gz, spec=spec), str(out))
    assert os.listdir(tmp_path) == []


def test_a_source_with_another_hash_is_refused(tmp_path):
    _, gz = small_mnist(np.random.default_rng(2))
    (tmp_path / "mnist.pkl.gz").write_bytes(gz)
    with pytest.raises(DigitsSourceError, match="has SHA-256 .* expected f11bb9e4"):
        read_pickle_gz(str(tmp_path / "mnist.pkl.gz"))
    (tmp_path / "fake.whl").write_bytes(b"PK not a wheel")
    with pytest.raises(DigitsSourceError, match="expected 0e3e0a08"):
        read_pickle_gz(str(tmp_path / "fake.whl"))


def test_the_command_fails_in_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "bad.pkl.gz").write_bytes(b"\x1f\x8b corrupted")
    out = tmp_path / "out" / "mnist.npz"
    proc = subprocess.run([sys.executable, "-m", "ladder_tf", "data", "mnist_digit", "--source",
                           str(tmp_path / "bad.pkl.gz"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "has SHA-256" in proc.stderr
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:
        data_cmd.main(["mnist_fashion", "--source", "x"])
    assert exc.value.code == 2


def test_an_existing_output_is_kept(tmp_path, capsys):
    out = tmp_path / "mnist.npz"
    out.write_bytes(b"anything")
    assert data_cmd.main(["mnist_digit", "--out", str(out)]) == 0
    assert "already at" in capsys.readouterr().out and out.read_bytes() == b"anything"

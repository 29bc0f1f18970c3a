"""Input checked before it is trusted (issue 17): data files, config values, interpolation
flags, and user-caused conditions that used to end in a raw traceback. Each case gets one
error line naming what was wrong and what is allowed (exit 2 in the CLIs)."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from ladder_tf import locks
from ladder_tf.commands.common import quiet_tensorflow
from ladder_tf.config import ConfigError, apply_overrides, from_dict, load
from ladder_tf.data import load_dataset
from ladder_tf.data.mnist import DataFormatError, DataNotFoundError
from synthetic import synthetic_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = synthetic_data(n_train=32, n_test=16)


def save_npz(path, **replace):
    arrays = {"x_train": DATA.x_train[..., 0], "y_train": DATA.y_train,
              "x_test": DATA.x_test[..., 0], "y_test": DATA.y_test}
    np.savez(path, **{**arrays, **replace})
    return str(path)


def cli_error(main, argv, capsys):
    """Run a CLI's main in-process: exit 2 and exactly one 'error:' line, returned."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# -- data ------------------------------------------------------------------------------------
def test_explicit_data_dir_never_falls_through(tmp_path):
    # Fashion-MNIST is found automatically on this machine when no --data-dir is given
    for bad, message in ((tmp_path / "missing", "does not exist"),
                         (tmp_path, "holds no usable mnist_fashion data"),
                         (tmp_path / "notes.txt", "is a file but not a .npz")):
        (tmp_path / "notes.txt").write_text("x")
        with pytest.raises(DataNotFoundError, match=message):
            load_dataset("mnist_fashion", str(bad), allow_download=False)


@pytest.mark.parametrize("content, message", [
    (lambda raw: raw[: len(raw) // 2], "is not a complete gzip file"),
    (lambda raw: b"plain bytes, not gzip", "is not a complete gzip file"),
])
def test_damaged_gz_idx_names_the_file(tmp_path, content, message):
    header = bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big")
    raw = gzip.compress(header + bytes(range(10)))
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")
    for name in names:
        (tmp_path / f"{name}.gz").write_bytes(raw)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(content(raw))
    with pytest.raises(DataFormatError, match=f"train-images-idx3-ubyte.gz {message}"):
        load_dataset("mnist_digit", str(tmp_path), allow_download=False)


def nan_pixel():
    x = DATA.x_train[..., 0].astype(np.float32) / 255
    x[3, 4, 5] = np.nan
    return x


@pytest.mark.parametrize("replace, message", [
    (lambda: {"x_train": nan_pixel()}, "array 'x_train' has 1 non-finite pixel value"),
    (lambda: {"x_test": DATA.x_test[..., 0].astype(np.float32) - 1}, "array 'x_test' has .* outside"),
    (lambda: {"x_train": DATA.x_train[..., 0].astype(np.int16) * 2}, "outside \\[0, 255\\]"),
    (lambda: {"x_train": np.zeros((32, 32, 32), np.uint8)}, "'x_train' has shape \\(32, 32, 32\\); expected 28x28"),
    (lambda: {"y_train": DATA.y_train[:-1]}, "'y_train' has shape \\(31,\\); expected \\(32,\\)"),
    (lambda: {"y_test": DATA.y_test + 0.5}, "'y_test' holds non-integer labels"),
])
def test_bad_npz_arrays_are_named(tmp_path, replace, message):
    path = save_npz(tmp_path / "mnist.npz", **replace())
    with pytest.raises(DataFormatError, match=message) as err:
        load_dataset("mnist_digit", path, allow_download=False)
    assert path in str(err.value)


def test_float_npz_in_documented_ranges_loads(tmp_path):
    for scale in (1.0, 255.0):
        path = save_npz(tmp_path / "mnist.npz", x_train=DATA.x_train[..., 0] / 255.0 * scale)
        np.testing.assert_array_equal(load_dataset("mnist_digit", path).x_train, DATA.x_train)


def test_npz_that_is_not_a_zip(tmp_path, capsys):
    import train_mnist

    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 but truncated")
    (tmp_path / "other.npz").write_text("hello")
    for name in ("mnist.npz", "other.npz"):
        with pytest.raises(DataFormatError, match=f"{name} is not a readable .npz file"):
            load_dataset("mnist_digit", str(tmp_path / name))
    line = cli_error(train_mnist.main, ["--dataset", "mnist_digit", "--data-dir",
                                        str(tmp_path / "other.npz"), "--out-dir", str(tmp_path / "r")], capsys)
    assert "other.npz is not a readable .npz file" in line and not (tmp_path / "r").exists()


# -- config ----------------------------------------------------------------------------------
def test_non_finite_config_values_are_rejected(tmp_path):
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ConfigError, match="learning_rate_ae' = .* is not a finite number"):
            from_dict({"learning_rate_ae": value})
    with pytest.raises(ConfigError, match="sigma' = nan is not a finite number"):
        apply_overrides(from_dict({}), ["sigma=NaN"])
    (tmp_path / "c.json").write_text('{"grad_clip_value": Infinity}')
    with pytest.raises(ConfigError, match="grad_clip_value' = inf"):
        load(tmp_path / "c.json")


# -- interpolation ---------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["--start", "3", "--end", "3"], "--start and --end are both 3"),
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--lr", "-1"], "--lr must be a finite number > 0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--beta2", "1"], "--beta2 must be a finite number in \\[0, 1\\)"),
    (["--out", "FILE"], "is an existing file"),
])
def test_interpolation_flags_are_checked_before_computing(tmp_path, capsys, extra, message):
    from ladder_tf.commands import interpolate

    (tmp_path / "FILE").write_text("x")
    argv = ["no-such-model", "--start", "1", "--end", "2", "--out", str(tmp_path / "out")]
    argv += [str(tmp_path / a) if a == "FILE" else a for a in extra]
    line = cli_error(interpolate.main, argv, capsys)
    assert __import__("re").search(message, line), line
    assert not (tmp_path / "out").exists()


# -- user-caused conditions that used to be tracebacks -----------------------------------------
def test_unwritable_run_directory_is_one_line(tmp_path, capsys, monkeypatch):
    import train_mnist

    npz = save_npz(tmp_path / "mnist.npz")
    (tmp_path / "file").write_text("x")
    base = ["--dataset", "mnist_digit", "--data-dir", npz, "--no-progress", "--set", "batch_size=16",
            "--set", "num_hidden_units=64"]
    line = cli_error(train_mnist.main, base + ["--out-dir", str(tmp_path / "file" / "run")], capsys)
    assert "file/run: Not a directory" in line

    def read_only(path, record):  # what a read-only directory does to the lock (as non-root)
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(locks, "_create", read_only)
    line = cli_error(train_mnist.main, base + ["--out-dir", str(tmp_path / "ro")], capsys)
    assert line.endswith("ro/run.lock: Permission denied")


def test_tensorflow_cpp_lines_are_hidden_unless_verbose(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    script = ("import sys; from ladder_tf.commands.common import quiet_tensorflow; quiet_tensorflow()\n"
              "import numpy as np, tensorflow as tf\n"
              "noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)\n"
              "jpeg = tf.io.encode_jpeg(noise).numpy()  # cut in half: libjpeg logs an error\n"
              "try:\n    tf.io.decode_jpeg(jpeg[: len(jpeg) // 2])\n"
              "except tf.errors.InvalidArgumentError:\n    print('rejected')\n"
              "print('kept', file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "rejected" and "kept" in proc.stderr, proc.stderr
    assert "jpeg_mem.cc" not in proc.stderr and "Premature end of JPEG" not in proc.stderr
    for startup in ("absl::InitializeLog", "port.cc", "cudart_stub.cc", "cpu_feature_guard"):
        assert startup not in proc.stderr, proc.stderr  # logged while TensorFlow loads


def test_start_up_filter_keeps_every_other_line(capfd):
    from ladder_tf.commands.common import hidden_startup_lines

    with hidden_startup_lines():
        os.write(2, b"I0000 00:00:1795722950.723008    5140 port.cc:153] oneDNN custom operations\n"
                    b"Traceback: a real error\n")
    err = capfd.readouterr().err
    assert "oneDNN" not in err and "a real error" in err


# -- issue 26: headers read before data, bounds, empty splits, labels ---------------------------
def npy_bytes(array=None, header_shape=None, body=b""):
    """A .npy file's bytes: ``array`` saved, or a header claiming ``header_shape`` (uint8)
    followed by ``body``."""
    import io

    buf = io.BytesIO()
    if array is not None:
        np.save(buf, array)
    else:
        np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                                   "shape": header_shape})
        buf.write(body)
    return buf.getvalue()


def test_npz_header_claiming_a_billion_images_is_refused_unread(tmp_path):
    import zipfile

    path = str(tmp_path / "mnist.npz")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x_train.npy", npy_bytes(header_shape=(10 ** 9, 28, 28), body=bytes(784)))
        for k in ("y_train", "x_test", "y_test"):
            z.writestr(f"{k}.npy", npy_bytes(getattr(DATA, k)))
    with pytest.raises(DataFormatError, match=r"array 'x_train' declares shape \(1000000000, 28, 28\), "
                                              r"730\.2 GiB in memory; more than the 1\.0 GiB") as err:
        load_dataset("mnist_digit", path)
    assert path in str(err.value)
    with zipfile.ZipFile(path, "w") as z:  # a header that does not match the data behind it
        z.writestr("x_train.npy", npy_bytes(header_shape=(1000, 28, 28), body=bytes(784)))
        for k in ("y_train", "x_test", "y_test"):
            z.writestr(f"{k}.npy", npy_bytes(getattr(DATA, k)))
    with pytest.raises(DataFormatError, match=r"declares shape \(1000, 28, 28\) \(0\.7 MiB\) but holds "
                                              r"0\.0 MiB; the file is damaged"):
        load_dataset("mnist_digit", path)


def test_zip_bomb_npz_is_refused_before_expanding(tmp_path, monkeypatch):
    from ladder_tf.data import mnist

    monkeypatch.setattr(mnist, "MAX_ARRAY_BYTES", 2 ** 20)  # 1 MiB stands in for 1 GiB
    path = str(tmp_path / "mnist.npz")
    np.savez_compressed(path, x_train=np.zeros((2000, 28, 28), np.uint8), y_train=np.zeros(2000, np.uint8),
                        x_test=DATA.x_test, y_test=DATA.y_test)
    assert os.path.getsize(path) < 20000  # 1.5 MiB of zeros in a few KB
    with pytest.raises(DataFormatError, match=r"'x_train' declares shape \(2000, 28, 28\), 1\.5 MiB in "
                                              r"memory; more than the 1\.0 MiB"):
        load_dataset("mnist_digit", path)


def idx_files(folder, images_header=None, images_size=None):
    """The four plain IDX files of DATA in ``folder``; the train images' header and size may be replaced."""
    for key, stem in (("x_train", "train-images-idx3-ubyte"), ("y_train", "train-labels-idx1-ubyte"),
                      ("x_test", "t10k-images-idx3-ubyte"), ("y_test", "t10k-labels-idx1-ubyte")):
        a = getattr(DATA, key)
        a = a[..., 0] if a.ndim == 4 else a.astype(np.uint8)
        header = bytes([0, 0, 8, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
        if key == "x_train" and images_header is not None:
            header = images_header
        with open(folder / stem, "wb") as fh:
            fh.write(header + a.tobytes())
            if key == "x_train" and images_size is not None:
                fh.truncate(images_size)  # sparse: no disk blocks
    return str(folder / "train-images-idx3-ubyte")


def test_idx_header_is_checked_against_the_file_before_reading(tmp_path):
    import tracemalloc

    path = idx_files(tmp_path, images_size=256 * 2 ** 20)
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=r"train-images-idx3-ubyte does not match its IDX header: "
                                                  r"\[32, 28, 28\] declares 25088 values, the file holds "):
            load_dataset("mnist_digit", str(tmp_path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20  # the 256 MiB were never read
    assert path


@pytest.mark.parametrize("header, message", [
    (bytes([0, 0, 8, 200]) + bytes(800), r"train-images-idx3-ubyte: its IDX header declares 200 dimensions"),
    (bytes([0, 0, 8, 0]), r"train-images-idx3-ubyte: its IDX header declares 0 dimensions"),
    (bytes([0, 0, 8, 3]) + (2 * 10 ** 6).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2,
     r"train-images-idx3-ubyte declares shape \(2000000, 28, 28\), 1\.5 GiB in memory"),
])
def test_nonsensical_idx_header_names_the_file(tmp_path, header, message):
    idx_files(tmp_path, images_header=header)
    with pytest.raises(DataFormatError, match=message):
        load_dataset("mnist_digit", str(tmp_path))


@pytest.mark.parametrize("replace, message", [
    (lambda: {"x_train": np.zeros((0, 28, 28), np.float32), "y_train": np.zeros(0, np.int64)},
     r"array 'x_train' holds no images \(shape \(0, 28, 28\)\)"),
    (lambda: {"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.int64)},
     r"array 'x_test' holds no images"),
    (lambda: {"y_train": np.where(np.arange(32) == 3, 10, np.where(np.arange(32) == 5, -1, DATA.y_train))},
     r"array 'y_train' has 2 label\(s\) outside 0\.\.9 \(e\.g\. 10\); both MNIST data sets have 10 classes"),
])
def test_empty_splits_and_out_of_range_labels_are_one_line(tmp_path, capsys, replace, message):
    import train_mnist

    path = save_npz(tmp_path / "mnist.npz", **replace())
    with pytest.raises(DataFormatError, match=message):
        load_dataset("mnist_digit", path)
    line = cli_error(train_mnist.main, ["--dataset", "mnist_digit", "--data-dir", path,
                                        "--out-dir", str(tmp_path / "run")], capsys)
    assert __import__("re").search(message, line) and not (tmp_path / "run").exists()


def test_refused_training_leaves_no_run_directory_and_out_dir_file_is_named(tmp_path, capsys):
    import train_mnist

    npz = save_npz(tmp_path / "mnist.npz")
    base = ["--dataset", "mnist_digit", "--data-dir", npz, "--no-progress", "--set", "num_hidden_units=64"]
    line = cli_error(train_mnist.main, base + ["--set", "batch_size=64", "--out-dir", str(tmp_path / "r")], capsys)
    assert "32 training images are fewer than one batch of 64" in line
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("x")
    line = cli_error(train_mnist.main, base + ["--out-dir", str(tmp_path / "file")], capsys)
    assert line.endswith(f"--out-dir {tmp_path / 'file'} is an existing file, not a directory; give a new "
                         "directory or a run directory to resume")


def test_epochs_beyond_the_step_counter_are_refused(capsys):
    import train_mnist

    with pytest.raises(ConfigError, match=r"'num_epochs' = 100000000000000000000 is out of range; it must "
                                          r"be <= 2147483647"):
        from_dict({"num_epochs": 10 ** 20})
    assert from_dict({"num_epochs": 2 ** 31 - 1}).num_epochs == 2 ** 31 - 1
    line = cli_error(train_mnist.main, ["--epochs", "100000000000000000000"], capsys)
    assert "num_epochs" in line and "2147483647" in line


def torchscript_bytes(offset, size, stride, numel=4):
    """A TorchScript-like archive whose data.pkl is one tensor over a 4-float storage,
    pickled by hand (protocol 2 opcodes), as a crafted file would be."""
    import io
    import struct
    import zipfile

    def text(value):
        return b"X" + struct.pack("<I", len(value)) + value.encode()

    def tup(*items):
        return b"(" + b"".join(items) + b"t"

    def num(value):
        return b"J" + struct.pack("<i", value)

    pkl = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n("
           + tup(text("storage"), b"ctorch\nFloatStorage\n", text("0"), text("cpu"), num(numel)) + b"Q"
           + num(offset) + tup(*map(num, size)) + tup(*map(num, stride)) + b"\x89tR.")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/data.pkl", pkl)
        z.writestr("m/data/0", np.arange(4, dtype="<f4").tobytes())
    return io.BytesIO(buf.getvalue())


@pytest.mark.parametrize("offset, size, stride, message", [
    (-2, (4,), (1,), "storage offset -2 is not an integer >= 0"),
    (0, (5,), (1,), r"reaches element 4 of a storage of 4"),
    (1, (2, 2), (2, 1), r"reaches element 4 of a storage of 4"),
    (3, (2,), (-1,), "not one non-negative stride per non-negative dimension"),
    (0, (2, 2), (1,), "not one non-negative stride per non-negative dimension"),
])
def test_torchscript_tensors_must_lie_inside_their_storage(offset, size, stride, message):
    from ladder_tf.evaluation.torchscript_reader import TorchScriptFormatError, read_torchscript

    tree, _ = read_torchscript(torchscript_bytes(0, (2, 2), (1, 2)))  # a transposed view reads fine
    np.testing.assert_array_equal(tree, np.arange(4.0).reshape(2, 2).T)
    with pytest.raises(TorchScriptFormatError, match=message):
        read_torchscript(torchscript_bytes(offset, size, stride))

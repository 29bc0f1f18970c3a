"""Faults around a trained model's outputs (issue 26): SavedModel signatures that check their
inputs, the FID classifier cache, and `ladder sample` writing what `ladder evaluate` scored."""
import os

import numpy as np
import pytest
import tensorflow as tf

from ladder_tf.config import from_dict
from ladder_tf.workflows import export
from ladder_tf.workflows.build import build_model


def test_saved_model_signatures_check_inputs_at_their_entry(tmp_path):
    cfg = from_dict({"exp_name": "mnist_digit", "prior": "hierarchical", "num_hidden_units": 64,
                     "code_size": 3, "representation_size": 2, "n_layers_inner_VAE": 1,
                     "num_hidden_units_inner_VAE": 16})
    vae, prior = build_model(cfg)
    sig = tf.saved_model.load(export.export_run(vae, prior, cfg, str(tmp_path / "sm"))).signatures
    x, z, t = tf.zeros([2, 28, 28, 1]), tf.zeros([2, 3]), tf.zeros([2, 2])
    assert sig["encode"](images=x)["mean"].shape == (2, 3)  # right inputs pass
    cases = [("encode", dict(images=tf.zeros([2, 32, 32, 1])), r"encode: images must have shape \(B, 28, 28, 1\); got shape\] \[2 32 32 1\]"),
             ("reconstruct", dict(images=tf.zeros([2, 784])), r"reconstruct: images must have shape \(B, 28, 28, 1\); got shape\] \[2 784\]"),
             ("decode", dict(z=tf.zeros([2, 5])), r"decode: z must have shape \(B, 3\); got shape\] \[2 5\]"),
             ("encode_t", dict(z=tf.zeros([2, 2])), r"encode_t: z must have shape \(B, 3\)"),
             ("decode_t", dict(t=tf.zeros([4, 3])), r"decode_t: t must have shape \(B, 2\); got shape\] \[4 3\]"),
             ("log_prob_t", dict(t=tf.zeros([4])), r"log_prob_t: t must have shape \(B, 2\); got shape\] \[4\]"),
             ("sample", dict(n=tf.constant(-3), seed=tf.constant(0)), r"sample: n must be >= 0; got\] \[-3\]")]
    for name, inputs, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            sig[name](**inputs)
    assert sig["decode_t"](t=t)["z"].shape == (2, 3) and sig["sample"](n=tf.constant(0), seed=tf.constant(0))["z"].shape == (0, 3)
    assert sig["decode"](z=z)["images"].shape == (2, 28, 28, 1)


def test_classifier_and_stats_caches_are_keyed_by_data_and_broken_entries_replaced(tmp_path, monkeypatch):
    from ladder_tf.evaluation import classifier as clf_lib
    from synthetic import synthetic_data

    root, small, other = str(tmp_path / "c"), synthetic_data(64, 20, seed=0), synthetic_data(64, 20, seed=1)
    first = clf_lib.get_classifier("mnist_digit", small, root, epochs=1, progress=False)
    second = clf_lib.get_classifier("mnist_digit", other, root, epochs=1, progress=False)  # other data
    assert os.path.dirname(second.weights_path) != os.path.dirname(first.weights_path)
    with monkeypatch.context() as patch:
        patch.setattr(clf_lib, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
        again = clf_lib.get_classifier("mnist_digit", small, root, progress=False)
    assert again.weights_path == first.weights_path and again.info["n_classes"] == 10
    with open(first.weights_path, "wb") as fh:
        fh.write(b"not HDF5")  # a damaged entry: retrained, not a traceback
    with pytest.warns(UserWarning, match="the cached classifier cannot be loaded .*training a new one"):
        fresh = clf_lib.get_classifier("mnist_digit", small, root, epochs=1, progress=False)
    x = small.x_test[:4].astype(np.float32) / 255
    assert fresh.features(x).shape == (4, 128) and fresh.weights_path == first.weights_path
    bad = synthetic_data(64, 20)
    bad.y_train[:3] = [10, 10, -1]
    with pytest.raises(ValueError, match=r"mnist_digit training labels has 3 label\(s\) outside 0\.\.9"):
        clf_lib.get_classifier("mnist_digit", bad, root, epochs=1, progress=False)

    from ladder_tf.evaluation.fid import GaussianStats, StatsCache

    cache, calls = StatsCache(str(tmp_path / "stats")), []
    stats = GaussianStats(np.zeros(2), np.eye(2), 3)
    cache.get("k", lambda: calls.append(1) or stats)
    (path,) = [str(p) for p in (tmp_path / "stats").iterdir()]
    with open(path, "r+b") as fh:
        fh.truncate(40)  # a damaged statistics file: computed again
    with pytest.warns(UserWarning, match="damaged cached statistics .*computing them again"):
        np.testing.assert_array_equal(cache.get("k", lambda: calls.append(1) or stats).cov, np.eye(2))
    assert len(calls) == 2


# -- ladder sample ---------------------------------------------------------------------------
from test_faults import DATA, finished  # noqa: E402,F401  (a tiny trained run)


class Recorder:
    """An FID feature network that keeps the images it is given (as uint8), in batches of 16."""

    dim, batch_size = 2, 16

    def __init__(self):
        self.images = []

    def __call__(self, x):
        from ladder_tf.evaluation.fid_inception import quantise_uint8

        self.images.append(quantise_uint8(x).numpy())
        return np.stack([np.mean(x, axis=(1, 2, 3)), np.std(x, axis=(1, 2, 3))], 1)


def scored(model, n, sampled=True):
    """The (generated, reconstructed) images evaluate's repeat 0 scores with --num-samples n."""
    from ladder_tf.evaluation import fid as fid_lib

    recorder = Recorder()
    fid_lib.model_stats(model, recorder, DATA.x_test, n, 1, seed=0, sampled_reconstruction=sampled,
                        progress=False)
    images = np.concatenate(recorder.images)
    return images[:n], images[n:]


def sampled(run_dir, out, *args):
    from ladder_tf.commands import sample

    assert sample.main([run_dir, "--out", str(out), *args]) == 0
    with np.load(out) as f:
        return f["images"]


def test_sample_writes_the_images_evaluate_scored_whatever_the_batch(finished, tmp_path, capsys):
    from ladder_tf.evaluation import fid as fid_lib
    from ladder_tf.evaluation.fid_inception import quantise_uint8
    from ladder_tf.workflows.trained import load_model

    np.savez(tmp_path / "d.npz", x_train=DATA.x_train, y_train=DATA.y_train, x_test=DATA.x_test, y_test=DATA.y_test)
    model = load_model(finished)
    generated, reconstructed = scored(model, 120)  # all 40 test images
    _, subset_reconstructed = scored(model, 30)  # a random 30 of them
    for batch in ("7", "50", "64"):
        images = sampled(finished, tmp_path / f"g{batch}.npz", "--num-samples", "120", "--batch", batch)
        np.testing.assert_array_equal(images, generated)
        for n, expected in (("120", reconstructed), ("30", subset_reconstructed)):
            images = sampled(finished, tmp_path / f"r{batch}.npz", "--num-samples", n, "--batch", batch,
                             "--what", "reconstruction", "--data-dir", str(tmp_path / "d.npz"), "--no-progress")
            np.testing.assert_array_equal(images, expected)
    assert "120/120" in capsys.readouterr().err  # the progress bar
    seed = fid_lib.derive_seed(fid_lib.derive_seed(0, 0, 1), 2)  # image 110: row 10 of the third chunk
    np.testing.assert_array_equal(generated[110], quantise_uint8(model.generate(50, seed)[10]).numpy())


def test_sample_refuses_what_cannot_fit_and_never_holds_all_images(finished, tmp_path, capsys, monkeypatch):
    import shutil
    import tracemalloc
    from collections import namedtuple

    from ladder_tf.commands import sample
    from ladder_tf.model.trained import InProcessModel

    generate, calls = InProcessModel.generate, []

    def counted(self, n, seed):
        calls.append(n)
        if len(calls) > 200:
            raise RuntimeError("more than 10,000 images made")
        return generate(self, n, seed)

    monkeypatch.setattr(InProcessModel, "generate", counted)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 9 * 10 ** 11, 10 ** 10))
    for out, message in (("big.npz", "1000000000 images of 28x28x1 would take 784.0 GB, and .* has 10.0 GB free"),
                         ("pngs", "1000000000 images of 28x28x1 would take at least 67.0 GB as PNG files")):
        with pytest.raises(SystemExit) as exc:
            sample.main([finished, "--num-samples", "1000000000", "--out", str(tmp_path / out)])
        line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
        assert exc.value.code == 2 and len(line) == 1 and __import__("re").search(message, line[0]), line
    assert calls == [] and not os.path.exists(tmp_path / "pngs")

    def peak_bytes(n):
        tracemalloc.start()
        try:
            sample.main([finished, "--num", str(n), "--out", str(tmp_path / f"s{n}.npz"), "--no-progress"])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak_bytes(50), peak_bytes(8000)  # 8,000 images: 6.3 MB as uint8
    assert large - small < 2 * 2 ** 20, (small, large)
    assert "warning: --num is deprecated; use --num-samples" in capsys.readouterr().err
    with np.load(tmp_path / "s8000.npz") as f:
        assert f["images"].shape == (8000, 28, 28, 1)
    assert "--num-samples" in sample.parser().format_help() and "--num " not in sample.parser().format_help()

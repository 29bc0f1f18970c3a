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


def test_classifier_cache_is_keyed_by_training_data_and_a_broken_entry_is_replaced(tmp_path, monkeypatch):
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

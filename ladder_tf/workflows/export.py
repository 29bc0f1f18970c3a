"""Export a trained model as a self-contained TensorFlow SavedModel (``ladder export``, whose
arguments ladder_tf.commands.export reads; training exports at its end, ladder_tf.workflows.train).

The SavedModel needs neither this package nor its config to be used::

    m = tf.saved_model.load(path)
    m.signatures["sample"](n=tf.constant(16), seed=tf.constant(0))["images"]

Signatures (float32 images (B, H, W, C) in [0, 1]; int32 scalars n and seed); every input is
checked in the graph at the signature's entry (``checked_input``), so a wrong shape or a
negative n fails with a message giving the expected shape, also under TensorFlow Serving:

- ``encode``      images -> {mean, std} of q(z|x), each (B, d_z)
- ``decode``      z (B, d_z) -> {images}, the decoder's mean image
- ``reconstruct`` images -> {images}, the decoded posterior mean
- ``sample``      n, seed -> {images (n, H, W, C), z (n, d_z)} drawn from the trained prior;
  the same draws as ``Run.generate(n, seed)`` in process (stateless RNG, seed pair [seed, 0])
- ``log_prob_z``  z -> {log_prob} (B,), for priors with a tractable density (normal, gmm, vampprior)
- ``log_prob_z_estimate``  z, n_samples, seed -> {log_prob_estimate} (B,), for the prior-VAE
  priors (ladder, hierarchical), whose p(z) = int p(z|t) p(t) dt has no closed form: an
  importance-sampled estimate with n_samples draws t ~ q(t|z) (the log of an unbiased estimate
  of p(z), so below log p(z) on average, tightening as n_samples grows; ladder_tf.model.importance),
  the same numbers as ``Prior.log_prob_estimate(z, n_samples, seed)`` in process
- prior-VAE priors (ladder, hierarchical) also: ``encode_t`` z -> {mean, std} of q(t|z);
  ``decode_t`` t -> {z}, the mean of p(z|t); ``log_prob_t`` t -> {log_prob}, the hyper prior's
  log-density (LaDDer: the accurate mixture once fitted, else the fast one, as for sampling).
- ``serving_default``: the same function as ``encode`` (what TensorFlow Serving and
  ``saved_model_cli run`` call when no signature is named).

Assets: ``assets/config.json`` (the effective config) and ``assets/export_info.json``.

The model is saved into a temporary directory beside its destination and renamed into place, so an
interrupted export never leaves a half-written model where a good one was. Temporary
folders carry their process id and host; the next export removes those whose process is
gone (a ``kill -9`` in mid-export leaves them behind). ``serving_version_dir`` gives
``OUT/<version>/``, the numbered layout TensorFlow Serving watches
(``--model_base_path=OUT``); ``next`` is one above the highest existing one.

Every prior's ``sample(n, seed)`` (and a prior VAE's ``log_prob_t``) is graph-safe: it traces
with tensor n and seed, so the exported ``sample`` draws what ``Run.generate`` draws.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile

import tensorflow as tf

from ladder_tf import config as config_lib
from ladder_tf.config import Config
from ladder_tf.export_format import CONFIG_ASSET, FORMAT_VERSION, INFO_ASSET
from ladder_tf.locks import owned_by_dead_process
from ladder_tf.model.trained import has_exact_density
from ladder_tf.workflows.runs import load_run

SERVING_DEFAULT = "encode"  # the signature `serving_default` repeats
TEMP_PREFIXES = (".tmp-saved_model-", ".old-saved_model-", ".tmp-export-assets-")
_TEMP_OWNER = re.compile(r"^(?P<pid>\d+)@(?P<host>.+)-[a-z0-9_]+$")


# -- the exported module ---------------------------------------------------------------
def checked_input(x: tf.Tensor, what: str, dims: tuple[int, ...]) -> tf.Tensor:
    """``x`` once an in-graph check passed that its shape is (B, *dims); else the call fails
    with 'assertion failed: [<what> must have shape (B, ...); got shape] [...]'.

    A signature's declared shape is not enforced when a server feeds its graph (TensorFlow
    Serving, ``saved_model_cli``), so without this a wrong input fails deep inside the
    networks. ``what``: 'signature: input', e.g. 'encode: images'.
    """
    expected = tf.constant((-1,) + dims, tf.int32)
    shape = tf.shape(x, out_type=tf.int32)
    padded = tf.concat([shape, tf.fill([len(dims) + 1], -2)], 0)[: len(dims) + 1]
    ok = tf.logical_and(tf.equal(tf.size(shape), len(dims) + 1),
                        tf.reduce_all(tf.logical_or(tf.equal(padded, expected), tf.equal(expected, -1))))
    wanted = ", ".join(["B"] + [str(d) for d in dims])
    check = tf.debugging.Assert(ok, [f"{what} must have shape ({wanted}); got shape", shape], summarize=8)
    with tf.control_dependencies([check]):
        return tf.identity(x)


def checked_count(n: tf.Tensor, what: str, minimum: int = 0) -> tf.Tensor:
    """The int32 scalar ``n`` once an in-graph check passed that it is >= ``minimum``."""
    check = tf.debugging.Assert(n >= minimum, [f"{what} must be >= {minimum}; got", n])
    with tf.control_dependencies([check]):
        return tf.identity(n)


class ExportModule(tf.Module):
    """The functions a user needs, over the trained variables only (no optimisers)."""

    def __init__(self, vae, prior, cfg: Config, config_path: str, info_path: str):
        super().__init__(name="ladder_export")
        seen, tracked = set(), []
        for v in list(vae.variables) + list(prior.variables):
            if v.ref() not in seen:
                seen.add(v.ref())
                tracked.append(v)
        self.model_variables = tracked
        self.config_asset = tf.saved_model.Asset(config_path)
        self.info_asset = tf.saved_model.Asset(info_path)
        h, w, c = cfg.image_shape
        images = tf.TensorSpec([None, h, w, c], tf.float32, name="images")
        z = tf.TensorSpec([None, cfg.code_size], tf.float32, name="z")
        scalar = lambda name: tf.TensorSpec([], tf.int32, name=name)  # noqa: E731
        sample_z, d_z = prior.sample, cfg.code_size

        def encode(images):
            mean, std = vae.encode(checked_input(images, "encode: images", (h, w, c)))
            return {"mean": mean, "std": std}

        def sample(n, seed):
            z_draw = sample_z(checked_count(n, "sample: n"), seed)
            return {"images": vae.decode(z_draw), "z": z_draw}

        fns = {
            "encode": (encode, [images]),
            "decode": (lambda z: {"images": vae.decode(checked_input(z, "decode: z", (d_z,)))}, [z]),
            "reconstruct": (lambda images: {"images": vae.reconstruct(
                checked_input(images, "reconstruct: images", (h, w, c)))}, [images]),
            "sample": (sample, [scalar("n"), scalar("seed")]),
        }
        if has_exact_density(prior):
            log_prob_z = prior.log_prob
            fns["log_prob_z"] = (lambda z: {"log_prob": log_prob_z(checked_input(z, "log_prob_z: z", (d_z,)))},
                                 [z])
        elif prior.has_density:  # a prior VAE: importance-sampled, as Prior.log_prob_estimate
            estimate = prior.log_prob_estimate
            fns["log_prob_z_estimate"] = (
                lambda z, n_samples, seed: {"log_prob_estimate": estimate(
                    checked_input(z, "log_prob_z_estimate: z", (d_z,)),
                    checked_count(n_samples, "log_prob_z_estimate: n_samples", 1), seed)},
                [z, scalar("n_samples"), scalar("seed")])
        if prior.has_t_space:
            d_t = prior.d_t
            t = tf.TensorSpec([None, d_t], tf.float32, name="t")
            log_prob_t = prior.log_prob_t

            def encode_t(z):
                mean, std = prior.encode(checked_input(z, "encode_t: z", (d_z,)))
                return {"mean": mean, "std": std}

            fns["encode_t"] = (encode_t, [z])
            fns["decode_t"] = (lambda t: {"z": prior.decode(checked_input(t, "decode_t: t", (d_t,)))}, [t])
            fns["log_prob_t"] = (lambda t: {"log_prob": log_prob_t(checked_input(t, "log_prob_t: t", (d_t,)))},
                                 [t])
        self.signature_names = sorted(fns)
        for name, (fn, spec) in fns.items():
            setattr(self, name, tf.function(fn, input_signature=spec))

    def signatures(self) -> dict:
        """The named signatures plus ``serving_default`` (= ``SERVING_DEFAULT``)."""
        fns = {name: getattr(self, name).get_concrete_function() for name in self.signature_names}
        return {**fns, "serving_default": fns[SERVING_DEFAULT]}


def _export_info(prior, cfg: Config, signatures: list[str], checkpoint: str | None) -> dict:
    hyper = prior.hyper_prior_name() if prior.has_t_space else None
    return {"format_version": FORMAT_VERSION, "prior": cfg.prior, "exp_name": cfg.exp_name,
            "image_shape": list(cfg.image_shape), "code_size": cfg.code_size,
            "representation_size": cfg.representation_size if prior.has_t_space else None,
            "hyper_prior": hyper, "signatures": signatures, "serving_default": SERVING_DEFAULT,
            "checkpoint": checkpoint,
            "tensorflow": tf.__version__, "sample_seed": "stateless, seed pair [seed, 0]"}


def _publish_permissions(root: str) -> None:
    """Ordinary permissions (umask) for the tree that mkdtemp/mkstemp created private."""
    umask = os.umask(0)
    os.umask(umask)
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o666 & ~umask)


def _temp_dir(parent: str, prefix: str) -> str:
    """A new temporary folder in ``parent`` named after this process (``PREFIXpid@host-x``)."""
    return tempfile.mkdtemp(dir=parent, prefix=f"{prefix}{os.getpid()}@{socket.gethostname()}-")


def remove_stale_temp_dirs(parent: str) -> list[str]:
    """Remove the temporary export folders in ``parent`` whose process no longer runs.

    Folders of live processes (a concurrent export) and of other hosts are kept; names
    without an owner (older versions) count as stale. Returns the removed paths.
    """
    removed = []
    for name in os.listdir(parent) if os.path.isdir(parent) else []:
        prefix = next((p for p in TEMP_PREFIXES if name.startswith(p)), None)
        if prefix is None:
            continue
        owner = _TEMP_OWNER.match(name[len(prefix):])
        if owner is None or owned_by_dead_process(int(owner["pid"]), owner["host"]):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
            removed.append(os.path.join(parent, name))
    return removed


def _replace_dir(tmp: str, out_dir: str) -> None:
    """Move the finished ``tmp`` to ``out_dir``; an existing model is only removed after."""
    old = None
    if os.path.lexists(out_dir):
        old = _temp_dir(os.path.dirname(out_dir), ".old-saved_model-")
        os.rmdir(old)
        os.rename(out_dir, old)
    os.rename(tmp, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export_run(vae, prior, cfg: Config, out_dir: str, checkpoint: str | None = None) -> str:
    """Write the SavedModel of (vae, prior) to ``out_dir`` atomically; returns ``out_dir``.

    Called after training (ladder_tf.workflows.train) and by ``export_checkpoint``.
    """
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    remove_stale_temp_dirs(parent)
    tmp = _temp_dir(parent, ".tmp-saved_model-")
    staging = _temp_dir(parent, ".tmp-export-assets-")
    try:
        config_path = os.path.join(staging, CONFIG_ASSET)
        info_path = os.path.join(staging, INFO_ASSET)
        config_lib.save(cfg, config_path)
        open(info_path, "w").close()  # filled in once the signatures are known
        module = ExportModule(vae, prior, cfg, config_path, info_path)
        with open(info_path, "w", encoding="utf-8") as fh:
            json.dump(_export_info(prior, cfg, module.signature_names, checkpoint), fh, indent=2)
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        _publish_permissions(tmp)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def export_checkpoint(run_dir: str, out_dir: str | None = None, checkpoint: str | None = None) -> str:
    """Restore ``run_dir``'s latest (or the given) checkpoint and export it; returns the
    SavedModel's path (default ``run_dir/saved_model``). Raises RunNotFoundError (no run, no
    readable checkpoint), ConfigError (a damaged config.json) and OSError."""
    run = load_run(run_dir, checkpoint)
    return export_run(run.vae, run.prior, run.config, out_dir or os.path.join(run_dir, "saved_model"),
                      checkpoint=run.checkpoint)


def serving_version_dir(base: str, version: str) -> str:
    """``base/<n>``, TensorFlow Serving's numbered layout: ``version`` is a positive integer
    or 'next' (one above the highest numbered folder in ``base``, 1 when there is none).

    Raises ValueError for any other ``version`` and for a number that already exists (a
    served version is replaced by a new number, not overwritten).
    """
    if version == "next":
        taken = [int(n) for n in os.listdir(base) if n.isdigit()] if os.path.isdir(base) else []
        return os.path.join(base, str(max(taken, default=0) + 1))
    if not version.isdigit() or int(version) < 1:
        raise ValueError(f"--model-version must be a positive integer or 'next', got {version!r}")
    path = os.path.join(base, str(int(version)))
    if os.path.lexists(path):
        raise ValueError(f"{path} exists already; choose another --model-version (or 'next')")
    return path

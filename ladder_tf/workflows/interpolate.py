"""Interpolate between two test images along the SP and the SLP (ladder_tf.model.interpolation).

    ladder interpolate MODEL --start I --end J --steps N --out DIR

MODEL is a run directory (config.json + checkpoints/) or an exported SavedModel; I and J
index the test split of the model's data set. Writes to DIR:

- ``slp_sp_strip.png``: the decoded SLP (top) and SP (bottom), end images included
  (the supplementary's Figures 6 and 7);
- ``slp_losses.png``: the SLP's total loss, length, equal-length term and -log-likelihood
  per iteration;
- ``path_density_2d.png`` when the path space is 2-D: both paths over the prior density
  and the embeddings of the first test images;
- ``interpolation.json``: settings and, per method, path length and log p along the path;
- ``paths.npz``: both full paths (ends included) and their decoded images.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import tensorflow as tf

from ladder_tf import figures
from ladder_tf.model.interpolation import SLPSettings, interpolate_images, path_space
from ladder_tf.io_utils import atomic_path, atomic_write_text

BACKGROUND_IMAGES = 1000  # test embeddings drawn under the 2-D density figure


def load_model(path: str):
    """A SavedModel directory (ladder_tf.workflows.saved_model) or a run directory (ladder_tf.workflows.runs)."""
    from ladder_tf.workflows.saved_model import is_saved_model, load_saved_model

    if is_saved_model(path):
        return load_saved_model(path)
    from ladder_tf.workflows.runs import load_run

    return load_run(path)


def split_images(x_test, index) -> np.ndarray:
    """float32 images in [0, 1] at ``index`` (an index array or slice) of a test split held
    as uint8 arrays (MNIST) or a lazily loaded collection with ``to_numpy`` (CelebA)."""
    sub = x_test[index]
    arr = sub.to_numpy() if hasattr(sub, "to_numpy") else np.asarray(sub)
    return arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)


def interpolate(model_path: str, start: int, end: int, out_dir: str,
                settings: SLPSettings = SLPSettings(), seed: int = 0, data_dir: str | None = None,
                allow_download: bool = True, model=None, data=None) -> dict:
    """The CLI as a function; returns the JSON summary written to ``out_dir``.

    ``model`` / ``data`` (a loaded model and its ``ImageData``) skip loading them again.
    """
    from ladder_tf.data import load_dataset

    t0 = time.perf_counter()
    model = model if model is not None else load_model(model_path)
    cfg = model.config
    data = data if data is not None else load_dataset(cfg.exp_name, data_dir, allow_download=allow_download)
    n_test = len(data.x_test)
    for label, index in (("--start", start), ("--end", end)):
        if not 0 <= index < n_test:
            raise ValueError(f"{label} {index} is not a test-set index (0 to {n_test - 1})")
    x = split_images(data.x_test, np.array([start, end]))
    space = path_space(model)
    out = interpolate_images(space, x[0], x[1], settings, seed)
    slp, sp = out["SLP"], out["SP"]
    os.makedirs(out_dir, exist_ok=True)
    title = f"{cfg.prior} ({cfg.exp_name}): test {start} -> {end}, {settings.n_step} steps in {space.name}"
    written = [figures.save_image_rows([("SLP", slp.images), ("SP", sp.images)],
                                       os.path.join(out_dir, "slp_sp_strip.png"), title=title),
               figures.plot_curves({"total loss": slp.history["total"],
                                    "path length": slp.history["length"],
                                    "equal-length term (std of segments)": slp.history["equal_length"],
                                    "negative log-likelihood": slp.history["neg_log_likelihood"]},
                                   os.path.join(out_dir, "slp_losses.png"),
                                   title=f"SLP optimisation, {cfg.prior}")]
    if space.dim == 2:
        k = min(BACKGROUND_IMAGES, n_test)
        points = space.embed(tf.constant(split_images(data.x_test, slice(0, k))), seed).numpy()
        written.append(figures.plot_density_2d(
            lambda p: space.log_prob(tf.constant(p)).numpy(), points, data.y_test[:k],
            os.path.join(out_dir, "path_density_2d.png"),
            path_points={"SLP": slp.full, "SP": sp.full},
            title=f"{cfg.prior}: paths over p({space.name}), test {start} -> {end}"))
    with atomic_path(os.path.join(out_dir, "paths.npz"), suffix=".npz") as tmp:
        np.savez(tmp, slp=slp.full, sp=sp.full, slp_images=slp.images, sp_images=sp.images,
                 **{f"slp_{k}": v for k, v in slp.history.items()})
    summary = {"model": os.path.abspath(model_path), "prior": cfg.prior, "exp_name": cfg.exp_name,
               "start": int(start), "end": int(end), "seed": int(seed), "path_space": space.name,
               "dim": int(space.dim), "settings": settings.to_dict(),
               "start_point": out["start"].tolist(), "end_point": out["end"].tolist(),
               "methods": out["summary"],
               "slp_final_loss": {k: float(v[-1]) for k, v in slp.history.items()},
               "figures": [os.path.basename(p) for p in written], "seconds": time.perf_counter() - t0}
    atomic_write_text(os.path.join(out_dir, "interpolation.json"), json.dumps(summary, indent=2) + "\n")
    return summary


def parser() -> argparse.ArgumentParser:
    from ladder_tf.commands.common import new_parser

    d = SLPSettings()
    p = new_parser(__doc__)
    p.add_argument("model", metavar="MODEL", help="run directory or exported SavedModel directory")
    what = p.add_argument_group("the two images and the outputs")
    what.add_argument("--start", type=int, required=True, metavar="I",
                      help="test-set index of the first image")
    what.add_argument("--end", type=int, required=True, metavar="J",
                      help="test-set index of the last image")
    what.add_argument("--steps", type=int, default=d.n_step, metavar="N",
                      help="intermediate points (n_step)")
    what.add_argument("--out", required=True, metavar="DIR", help="output directory")
    what.add_argument("--seed", type=int, default=0, help="seed of the z sample behind LaDDer's t end points")
    data = p.add_argument_group("data")
    data.add_argument("--data-dir", metavar="PATH", help="local data: IDX files or a Keras-style .npz")
    data.add_argument("--no-download", action="store_true", help="never try a TensorFlow Datasets download")
    slp = p.add_argument_group("shortest likely path optimisation")
    slp.add_argument("--w-path", type=float, default=d.w_path, help="weight of the path length")
    slp.add_argument("--w-equal", type=float, default=d.w_equal, help="weight of the segment-length std")
    slp.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate")
    slp.add_argument("--beta1", type=float, default=d.beta1, help="Adam beta1")
    slp.add_argument("--beta2", type=float, default=d.beta2, help="Adam beta2")
    slp.add_argument("--epsilon", type=float, default=d.epsilon, help="Adam epsilon")
    slp.add_argument("--clip", type=float, default=d.clip, help="element-wise gradient clip (0: none)")
    slp.add_argument("--iterations", type=int, default=d.iterations, help="Adam steps")
    return p


# flag -> (test of a finite value, what is allowed)
NUMBER_FLAGS = {"lr": (lambda v: v > 0, "> 0"), "w_path": (lambda v: v >= 0, ">= 0"),
                "w_equal": (lambda v: v >= 0, ">= 0"), "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
                "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"), "epsilon": (lambda v: v > 0, "> 0"),
                "clip": (lambda v: v >= 0, ">= 0 (0: no clipping)")}


def check_args(args: argparse.Namespace) -> None:
    """Every mistake that needs no model or data: one error line, exit 2, before computing."""
    from ladder_tf.commands.common import fail

    if args.steps < 1 or args.iterations < 1:
        fail("--steps and --iterations must be at least 1")
    if args.start == args.end:
        fail(f"--start and --end are both {args.start}: a path needs two different test images")
    for key, (ok, allowed) in NUMBER_FLAGS.items():
        value = getattr(args, key)
        if not math.isfinite(value) or not ok(value):
            fail(f"--{key.replace('_', '-')} must be a finite number {allowed}, got {value}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"--out {args.out} is an existing file; give a directory (new or existing)")


def main(argv: list[str] | None = None) -> int:
    from ladder_tf.commands.common import error_text, fail, quiet_tensorflow
    from ladder_tf.data import DataNotFoundError
    from ladder_tf.workflows.runs import RunNotFoundError

    args = parser().parse_args(argv)
    check_args(args)
    quiet_tensorflow(args.verbose)
    settings = SLPSettings(n_step=args.steps, w_path=args.w_path, w_equal=args.w_equal,
                           learning_rate=args.lr, beta1=args.beta1, beta2=args.beta2,
                           epsilon=args.epsilon, clip=args.clip, iterations=args.iterations)
    try:
        summary = interpolate(args.model, args.start, args.end, args.out, settings, args.seed,
                              args.data_dir, allow_download=not args.no_download)
    except (RunNotFoundError, DataNotFoundError, ValueError, NotImplementedError) as err:
        fail(str(err))
    except OSError as err:  # an unwritable --out, a SavedModel that is not an export
        fail(error_text(err))
    for name, s in summary["methods"].items():
        print(f"{name}: length {s['path_length']:.3f}, log p min {s['log_p_min']:.2f} "
              f"mean {s['log_p_mean']:.2f} (dense min {s['log_p_dense_min']:.2f})")
    print(f"outputs in {args.out}: {', '.join(summary['figures'])}, interpolation.json, paths.npz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

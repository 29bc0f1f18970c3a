"""Interpolate between two test images of a trained model along the SP and the SLP
(ladder_tf.model.interpolation), and write the figures, numbers and paths (``ladder interpolate``).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf

from ladder_tf import figures
from ladder_tf.data import ImageData, as_images, load_run_data
from ladder_tf.io_utils import atomic_path, atomic_write_text
from ladder_tf.model.interpolation import SLPSettings, interpolate_images, path_space
from ladder_tf.workflows.trained import TrainedModel, load_model

BACKGROUND_IMAGES = 1000  # test embeddings drawn under the 2-D density figure


def interpolate(model_path: str, start: int, end: int, out_dir: str,
                settings: SLPSettings = SLPSettings(), seed: int = 0, data_dir: str | None = None,
                allow_download: bool = True, model: TrainedModel | None = None,
                data: ImageData | None = None) -> dict:
    """SP and SLP between test images ``start`` and ``end`` of the model at ``model_path`` (a
    run directory or a SavedModel), written to ``out_dir`` (slp_sp_strip.png, slp_losses.png,
    path_density_2d.png for a 2-D path space, interpolation.json, paths.npz); returns the
    summary that interpolation.json holds.

    ``model`` / ``data`` (a loaded model and its ``ImageData``) skip loading them again.
    Raises what ``load_model`` and ``load_dataset`` raise, ValueError for an index outside the
    test split, NotImplementedError for a model without a log-density, OSError on writing.
    """
    t0 = time.perf_counter()
    model = model if model is not None else load_model(model_path)
    cfg = model.config
    if data is None:
        data = load_run_data(cfg, data_dir, allow_download)
    n_test = len(data.x_test)
    for label, index in (("--start", start), ("--end", end)):
        if not 0 <= index < n_test:
            raise ValueError(f"{label} {index} is not a test-set index (0 to {n_test - 1})")
    x = as_images(data.x_test)[np.array([start, end])].floats()
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
        points = space.embed(tf.constant(as_images(data.x_test)[:k].floats()), seed).numpy()
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

"""What a training run writes besides its checkpoints, epoch by epoch.

    figures/ground_truth.png                   the fixed test batch, once per invocation
    figures/reconstructions_eNNN.png           its reconstructions (posterior means decoded)
    figures/samples_eNNN.png                   100 images decoded from z ~ p(z), seed = epoch
    figures/<prior figure>_eNNN.png            the prior's own figures (Prior.figure_data)
    figures/losses.png                         every train/test metric against epoch
    mixture/mixture_eNNN.npz                   the fitted mixture (Prior.mixture_arrays)
    metrics.jsonl                              one row per epoch (test_batch_spread: see
                                               reconstruction_spread)
    tensorboard/, run_record.json, console     ladder_tf.workflows.run_log

The priors say what their figures and mixture files hold; this module draws and writes them.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import tensorflow as tf

from ladder_tf import figures
from ladder_tf.config import Config
from ladder_tf.io_utils import atomic_path, read_jsonl, write_jsonl
from ladder_tf.model.priors.base import DensityFigure, Prior, PriorFigure
from ladder_tf.model.vae import VAE
from ladder_tf.workflows.resume import METRICS_FILE
from ladder_tf.workflows.run_log import RunLog

SAMPLES_SHOWN = 100
COLLAPSE_SPREAD = 0.05  # below this reconstruction spread an epoch warns (reconstruction_spread)


def reconstruction_spread(recon: np.ndarray, images: np.ndarray) -> float:
    """How much the reconstructions vary from image to image, relative to the images: the
    mean over pixels of the standard deviation across the batch, reconstructions over images
    (both (N, H, W, C)). About 1 for a decoder that follows z; near 0 when it outputs one
    image whatever z is (posterior collapse, a saturated output layer)."""
    return float(np.mean(np.std(recon, axis=0)) / max(float(np.mean(np.std(images, axis=0))), 1e-12))


def draw_prior_figure(run_dir: str, epoch: int, fig: PriorFigure, labels: np.ndarray | None) -> str:
    """Draw one of a prior's figures as ``run_dir/figures/<fig.name>_eNNN.png``; its path.

    ``labels`` (N,): the classes that colour a density figure's points (None: one colour).
    """
    path = figures.figure_path(run_dir, fig.name, epoch)
    if isinstance(fig, DensityFigure):
        return figures.plot_density_2d(fig.log_prob, fig.points, labels, path, means=fig.means,
                                       covariances=fig.covariances, weights=fig.weights,
                                       title=f"{fig.title}, epoch {epoch}")
    return figures.save_image_grid(fig.images, path, ncols=fig.ncols)


def write_mixture(run_dir: str, epoch: int, arrays: dict[str, np.ndarray]) -> str:
    """``run_dir/mixture/mixture_eNNN.npz`` holding ``arrays``, written atomically; its path."""
    path = os.path.join(run_dir, "mixture", f"mixture_e{epoch:03d}.npz")
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return path


class Reporter:
    """The per-epoch outputs of one Trainer in ``out_dir`` (see the module docstring).

    ``test_x`` (N, H, W, C) float images in [0, 1] and ``test_y`` (N,): the fixed test batch
    the figures show. ``chief``: whether this process reports (ladder_tf.workflows.run_log).
    """

    def __init__(self, out_dir: str, cfg: Config, test_x: np.ndarray, test_y: np.ndarray,
                 chief: bool = True):
        self.out_dir, self.test_x, self.test_y = out_dir, test_x, test_y
        self.metrics_path = os.path.join(out_dir, METRICS_FILE)
        self.log = RunLog(out_dir, cfg, chief=chief)

    def start(self, first_epoch: int) -> None:
        """An invocation starts at ``first_epoch``: the ground-truth figure and its record."""
        figures.save_image_grid(self.test_x, os.path.join(self.out_dir, "figures", "ground_truth.png"))
        self.log.start(first_epoch)

    def finish(self, status: str, last_epoch: int) -> None:
        """The invocation ended (``status`` finished, interrupted or failed)."""
        self.log.finish(status, last_epoch)

    def rows(self) -> list[dict[str, Any]]:
        """The metrics rows of every finished epoch."""
        return read_jsonl(self.metrics_path)

    def epoch(self, row: dict[str, Any], vae: VAE, prior: Prior) -> None:
        """Figures, the prior's mixture file, the metrics line, TensorBoard and the console
        line of the finished epoch ``row["epoch"]`` (``row``: its metrics)."""
        epoch = row["epoch"]
        recon = vae.reconstruct(tf.constant(self.test_x)).numpy()
        row["test_batch_spread"] = reconstruction_spread(recon, self.test_x)
        if row["test_batch_spread"] < COLLAPSE_SPREAD:
            warnings.warn(f"epoch {epoch}: the reconstructions hardly depend on the image (spread "
                          f"{row['test_batch_spread']:.3f} of the test images'): the decoder ignores "
                          "z, and every sample will look the same. See docs/decisions.md "
                          "(output activation) if this lasts.", stacklevel=2)
        samples = vae.decode(prior.sample(SAMPLES_SHOWN, seed=epoch)).numpy()
        figures.save_image_grid(recon, figures.figure_path(self.out_dir, "reconstructions", epoch))
        figures.save_image_grid(samples, figures.figure_path(self.out_dir, "samples", epoch), ncols=10)
        z_mean = vae.encode(tf.constant(self.test_x))[0].numpy()
        for fig in prior.figure_data(z_mean):
            draw_prior_figure(self.out_dir, epoch, fig, self.test_y)
        arrays = prior.mixture_arrays(epoch)
        if arrays:
            write_mixture(self.out_dir, epoch, arrays)
        rows = self.rows() + [row]
        write_jsonl(self.metrics_path, rows)
        figures.plot_loss_curves(rows, os.path.join(self.out_dir, "figures", "losses.png"))
        self.log.epoch(row, recon, samples)

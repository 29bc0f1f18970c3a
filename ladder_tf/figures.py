"""Figures: image grids, loss curves, 2-D latent densities. Reads arrays, never trains."""
from __future__ import annotations

import math
import os
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ladder_tf.io_utils import atomic_path  # noqa: E402


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, H, W, C) in [0, 1] -> one (rows*(H+pad)-pad, cols*(W+pad)-pad, C) tiled image."""
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    n, h, w, c = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    canvas = np.ones((nrows * ncols, h + pad, w + pad, c), np.float32)
    canvas[:n, :h, :w] = images
    canvas = canvas.reshape(nrows, ncols, h + pad, w + pad, c).transpose(0, 2, 1, 3, 4)
    return canvas.reshape(nrows * (h + pad), ncols * (w + pad), c)[:-pad or None, :-pad or None]


def save_image_grid(images: np.ndarray, path: str, ncols: int | None = None) -> str:
    """Write ``images`` as one PNG grid (grey when C == 1), atomically; returns ``path``."""
    grid = image_grid(images, ncols)
    with atomic_path(path, suffix=".png") as tmp:
        if grid.shape[-1] == 1:
            plt.imsave(tmp, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            plt.imsave(tmp, grid)
    return path


def _save(fig: plt.Figure, path: str) -> str:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_loss_curves(rows: Sequence[dict], path: str, keys: Sequence[str] | None = None) -> str:
    """One panel per metric (train and test where both exist) against epoch."""
    if keys is None:
        keys = sorted({k[len("train_"):] for r in rows for k in r if k.startswith("train_")})
    ncols = min(3, max(1, len(keys)))
    nrows = int(math.ceil(len(keys) / ncols)) or 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, key in zip(axes.flat, keys):
        for split, style in (("train", "-"), ("test", "--")):
            values = [r.get(f"{split}_{key}", np.nan) for r in rows]
            if not all(np.isnan(values)):
                ax.plot(epochs, values, style, marker=".", label=split)
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


LOG_DENSITY_RANGE = 8.0  # nats below the density's maximum that the colour map spans


def plot_density_2d(log_prob: Callable[[np.ndarray], np.ndarray], points: np.ndarray,
                    labels: np.ndarray | None, path: str, means: np.ndarray | None = None,
                    covariances: np.ndarray | None = None, weights: np.ndarray | None = None,
                    path_points: dict[str, np.ndarray] | None = None, title: str = "") -> str:
    """A 2-D density image with embedded points coloured by class, mixture ellipses and paths.

    log_prob maps (M, 2) -> (M,); the image is log p, its colours spanning the top
    ``LOG_DENSITY_RANGE`` nats (a sharp mode would otherwise hide every other). Ellipses
    are 2-sigma with line width by weight (the original's figure). ``path_points`` maps a
    label to a (P, 2) polyline.
    """
    lo = np.percentile(points, 0.5, axis=0)
    hi = np.percentile(points, 99.5, axis=0)
    span = hi - lo
    lo, hi = lo - 0.25 * span, hi + 0.25 * span
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    log_density = np.asarray(log_prob(grid)).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.imshow(log_density, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]), cmap="viridis",
              aspect="auto", vmin=log_density.max() - LOG_DENSITY_RANGE, vmax=log_density.max())
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, s=4, cmap="tab10", alpha=0.7)
    if labels is not None:
        fig.colorbar(scatter, ax=ax, label="class")
    if means is not None and covariances is not None:
        w = weights if weights is not None else np.ones(len(means))
        vals, vecs = np.linalg.eigh(covariances)
        angles = np.degrees(np.arctan2(vecs[:, 1, 1], vecs[:, 0, 1]))
        from matplotlib.collections import EllipseCollection
        ax.add_collection(EllipseCollection(
            4 * np.sqrt(vals[:, 1]), 4 * np.sqrt(vals[:, 0]), angles, units="xy",
            offsets=means, offset_transform=ax.transData, facecolors="none",
            edgecolors="white", linewidths=0.3 + 2.5 * w / w.max()))
    for name, pts in (path_points or {}).items():
        ax.plot(pts[:, 0], pts[:, 1], marker="o", ms=3, label=name)
    if path_points:
        ax.legend()
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title)
    return _save(fig, path)


def figure_path(run_dir: str, name: str, epoch: int) -> str:
    """``run_dir/figures/<name>_e<epoch:03d>.png``."""
    return os.path.join(run_dir, "figures", f"{name}_e{epoch:03d}.png")


def save_image_rows(rows: Sequence[tuple[str, np.ndarray]], path: str, title: str = "") -> str:
    """Labelled image strips one above the other (e.g. SLP over SP), each row (N, H, W, C)
    in [0, 1], as one PNG; returns ``path``."""
    n_max = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), 1, figsize=(0.9 * n_max + 0.8, 1.0 * len(rows) + 0.4),
                             squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows):
        strip = image_grid(images, ncols=len(images))
        ax.imshow(strip[..., 0] if strip.shape[-1] == 1 else strip, cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def save_labelled_grids(grids: Sequence[tuple[str, np.ndarray]], path: str, ncols: int = 8,
                        title: str = "") -> str:
    """Image grids side by side, each under its label (e.g. one prior's samples each); every
    entry (N, H, W, C) in [0, 1] becomes a grid of ``ncols`` columns. Returns ``path``."""
    fig, axes = plt.subplots(1, len(grids), figsize=(2.3 * len(grids), 2.6), squeeze=False)
    for ax, (label, images) in zip(axes[0], grids):
        grid = image_grid(images, ncols=ncols)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_curves(curves: dict[str, np.ndarray], path: str, xlabel: str = "iteration",
                title: str = "") -> str:
    """One panel per named 1-D curve against its index (e.g. the SLP's loss terms)."""
    ncols = min(4, max(1, len(curves)))
    nrows = int(math.ceil(len(curves) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, curves.items()):
        ax.plot(np.arange(len(values)), np.asarray(values))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)

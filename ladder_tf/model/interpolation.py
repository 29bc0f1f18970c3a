"""Latent interpolation: the shortest path (SP) and the shortest likely path (SLP).

docs/original.md, section 9 (the authors' demo; supplementary F.4, Figures 6 and 7). A path
between two end points a, b in a latent space with density p has ``n_step`` intermediate
points p_1..p_n; with p_0 = a, p_{n+1} = b its n + 1 segment lengths l_i = |p_i - p_{i-1}|.

- SP: p_k = a + (b - a) k / (n + 1), evenly spaced strictly between the ends.
- SLP: from the SP, minimise over p_1..p_n (the ends stay fixed)

      w_path * sum_i l_i  +  w_equal * std_i(l_i)  -  sum_k log p(p_k)

  with Adam (lr 1e-2, beta1 0.9, beta2 0.95, gradients clipped element-wise to [-1, 1]) for
  500 iterations; w_path 10, w_equal 100, n_step 8. std is the population standard deviation.

The path space (:class:`PathSpace`): for LaDDer (and the hierarchical prior) it is t, the
ends being the prior encoder's t means of one sampled z of each image, log p the hyper
prior (LaDDer: the accurate mixture) and the decoder t -> z -> x; for priors without t it
is z, the ends being the z means and log p = prior.log_prob.

The whole optimisation is one ``tf.function`` (a ``tf.while_loop`` of 500 Adam steps).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from ladder_tf.model.trained import TrainedModel, has_exact_density

LOSS_KEYS = ("total", "length", "equal_length", "neg_log_likelihood")
DENSE_PER_SEGMENT = 16  # points per segment when log p is measured along the polyline


@dataclass(frozen=True)
class SLPSettings:
    """The original's optimiser settings, weights and iteration count (docs/original.md, section 9).

    ``epsilon``: Adam's, as TF1's AdamOptimizer default (the original's optimiser).
    """

    n_step: int = 8
    w_path: float = 10.0
    w_equal: float = 100.0
    learning_rate: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.95
    epsilon: float = 1e-8
    clip: float = 1.0
    iterations: int = 500

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class PathSpace:
    """The latent space a path lives in.

    ``embed(images, seed)``: (B, H, W, C) in [0, 1] and an int seed -> (B, d) end points;
    ``log_prob``: (..., d) -> (...), graph-safe; ``decode``: (B, d) -> images (B, H, W, C).
    """

    name: str  # "t" or "z"
    dim: int
    embed: Callable[[tf.Tensor, int], tf.Tensor]
    log_prob: Callable[[tf.Tensor], tf.Tensor]
    decode: Callable[[tf.Tensor], tf.Tensor]


@dataclass
class PathResult:
    """One method's path: intermediate ``points`` (n, d), the ``full`` path with both ends
    (n + 2, d), the decoded ``images`` (n + 2, H, W, C), and for SLP the per-iteration
    ``history`` of each loss term (iterations,)."""

    points: np.ndarray
    full: np.ndarray
    images: np.ndarray | None = None
    history: dict[str, np.ndarray] | None = None


# -- path spaces ---------------------------------------------------------------------
def sampled_t_mean(encode, encode_t, images: tf.Tensor, seed: int) -> tf.Tensor:
    """t mean of one z ~ q(z|x) per image (the end points of docs/original.md, section 9), (B, d_t).

    The z noise is ``stateless_normal(seed=[seed, 0])``, so a run and its SavedModel agree.
    """
    mean, std = encode(images)
    eps = tf.random.stateless_normal(tf.shape(mean), seed=[int(seed), 0])
    return encode_t(mean + std * eps)[0]


def path_space(model: TrainedModel) -> PathSpace:
    """The path space of a trained model (an in-process run or a SavedModel): t for priors
    with a t space, else z with the prior's exact log-density; NotImplementedError for a
    prior with neither."""
    cfg = model.config
    if model.has_t_space:
        return PathSpace("t", cfg.representation_size,
                         lambda x, seed: sampled_t_mean(model.encode, model.encode_t, x, seed),
                         model.log_prob_t, lambda t: model.decode(model.decode_t(t)))
    if not has_exact_density(model):
        raise NotImplementedError(f"the {model.name} prior has no log-density for the SLP")
    return PathSpace("z", cfg.code_size, lambda x, seed: model.encode(x)[0], model.log_prob_z,
                     model.decode)


# -- paths ---------------------------------------------------------------------------
def straight_path(start, end, n_step: int) -> np.ndarray:
    """SP: ``n_step`` points evenly spaced strictly between ``start`` and ``end`` (d,)."""
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    frac = (np.arange(1, n_step + 1, dtype=np.float32) / (n_step + 1))[:, None]
    return start + frac * (end - start)


def with_ends(points, start, end) -> tf.Tensor:
    """(n, d) intermediate points -> (n + 2, d) full path."""
    points = tf.convert_to_tensor(points, tf.float32)
    return tf.concat([tf.reshape(tf.cast(start, tf.float32), [1, -1]), points,
                      tf.reshape(tf.cast(end, tf.float32), [1, -1])], axis=0)


def segment_lengths(full: tf.Tensor) -> tf.Tensor:
    """(n + 2, d) path -> (n + 1,) Euclidean segment lengths."""
    return tf.norm(full[1:] - full[:-1], axis=-1)


def path_loss_terms(points: tf.Tensor, start: tf.Tensor, end: tf.Tensor,
                    log_prob: Callable[[tf.Tensor], tf.Tensor],
                    settings: SLPSettings = SLPSettings()) -> dict[str, tf.Tensor]:
    """The SLP objective's terms (scalars): length, equal_length (std), neg_log_likelihood, total.

    ``length`` and ``equal_length`` are unweighted; ``total`` applies w_path and w_equal.
    """
    lengths = segment_lengths(with_ends(points, start, end))
    length = tf.reduce_sum(lengths)
    equal = tf.math.reduce_std(lengths)
    nll = -tf.reduce_sum(log_prob(points))
    total = settings.w_path * length + settings.w_equal * equal + nll
    return {"total": total, "length": length, "equal_length": equal, "neg_log_likelihood": nll}


def shortest_likely_path(log_prob: Callable[[tf.Tensor], tf.Tensor], start, end,
                         settings: SLPSettings = SLPSettings()) -> PathResult:
    """SLP from the SP initialisation: ``settings.iterations`` Adam steps in one tf.function.

    ``log_prob`` must be graph-safe, (n, d) -> (n,). The history holds each term's value at
    the points before each step (so entry 0 is the SP's loss).
    """
    start_t = tf.constant(np.asarray(start, np.float32))
    end_t = tf.constant(np.asarray(end, np.float32))
    init = tf.constant(straight_path(start, end, settings.n_step))
    s = settings

    @tf.function
    def optimise(points):
        def body(i, p, m, v, hist):
            with tf.GradientTape() as tape:
                tape.watch(p)
                terms = path_loss_terms(p, start_t, end_t, log_prob, s)
            grad = tape.gradient(terms["total"], p)
            if s.clip:
                grad = tf.clip_by_value(grad, -s.clip, s.clip)
            step = tf.cast(i + 1, tf.float32)
            m = s.beta1 * m + (1.0 - s.beta1) * grad
            v = s.beta2 * v + (1.0 - s.beta2) * tf.square(grad)
            lr = s.learning_rate * tf.sqrt(1.0 - s.beta2 ** step) / (1.0 - s.beta1 ** step)
            p = p - lr * m / (tf.sqrt(v) + s.epsilon)
            hist = hist.write(i, tf.stack([terms[k] for k in LOSS_KEYS]))
            return i + 1, p, m, v, hist

        zeros = tf.zeros_like(points)
        hist = tf.TensorArray(tf.float32, size=s.iterations)
        _, points, _, _, hist = tf.while_loop(
            lambda i, *_: i < s.iterations, body, (tf.constant(0), points, zeros, zeros, hist))
        return points, hist.stack()

    points, hist = optimise(init)
    hist = hist.numpy().reshape(s.iterations, len(LOSS_KEYS))
    points = points.numpy()
    return PathResult(points, with_ends(points, start, end).numpy(),
                      history={k: hist[:, j] for j, k in enumerate(LOSS_KEYS)})


def summarise_path(full: np.ndarray, log_prob: Callable[[tf.Tensor], tf.Tensor]) -> dict[str, float]:
    """Path length, segment-length spread, and log p along the path.

    ``log_p_min``/``log_p_mean``: at the intermediate points (what the SLP optimises);
    ``log_p_dense_min``/``log_p_dense_mean``: along the whole polyline, ends included,
    ``DENSE_PER_SEGMENT`` points per segment (catches a segment that jumps a gap).
    """
    full = np.asarray(full, np.float32)
    lengths = segment_lengths(tf.constant(full)).numpy()
    lp_points = log_prob(tf.constant(full[1:-1])).numpy()
    frac = np.linspace(0.0, 1.0, DENSE_PER_SEGMENT, endpoint=False, dtype=np.float32)[None, :, None]
    dense = (full[:-1, None] + frac * (full[1:] - full[:-1])[:, None]).reshape(-1, full.shape[1])
    lp_dense = log_prob(tf.constant(np.concatenate([dense, full[-1:]]))).numpy()
    return {"path_length": float(lengths.sum()),
            "segment_length_std": float(lengths.std()),
            "segment_length_max_over_min": float(lengths.max() / max(lengths.min(), 1e-12)),
            "log_p_min": float(lp_points.min()), "log_p_mean": float(lp_points.mean()),
            "log_p_dense_min": float(lp_dense.min()), "log_p_dense_mean": float(lp_dense.mean())}


def interpolate_images(space: PathSpace, x_start, x_end, settings: SLPSettings = SLPSettings(),
                       seed: int = 0) -> dict:
    """Both paths between two images: {"start", "end", "SLP": PathResult, "SP": PathResult,
    "summary": {"SLP": {...}, "SP": {...}}}; images decoded for the full paths."""
    pair = tf.constant(np.stack([np.asarray(x_start, np.float32), np.asarray(x_end, np.float32)]))
    ends = space.embed(pair, seed).numpy()
    start, end = ends[0], ends[1]
    sp_points = straight_path(start, end, settings.n_step)
    results = {"SLP": shortest_likely_path(space.log_prob, start, end, settings),
               "SP": PathResult(sp_points, with_ends(sp_points, start, end).numpy())}
    for result in results.values():
        result.images = np.asarray(space.decode(tf.constant(result.full)))
    summary = {name: summarise_path(r.full, space.log_prob) for name, r in results.items()}
    return {"start": start, "end": end, **results, "summary": summary}

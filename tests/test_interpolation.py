"""SP and SLP interpolation (issue 7): closed forms, the objective against numpy/scipy, the
hand-written Adam against Keras's, the low-density gap, equal segments, and the CLI."""
import json
import os

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from ladder_tf.commands import interpolate as interpolate_cmd
from ladder_tf.workflows import interpolate as cli
from ladder_tf.config import from_dict
from ladder_tf.data import ImageData
from ladder_tf.model.interpolation import (LOSS_KEYS, SLPSettings, path_loss_terms, path_space,
                                     shortest_likely_path, straight_path, summarise_path, with_ends)
from ladder_tf.workflows.runs import Run
from ladder_tf.workflows.build import build_model

tfd = tfp.distributions
START, END = np.float32([-2.0, 0.0]), np.float32([2.0, 0.0])


def rotated_scale(degrees, long=1.2, short=0.25):
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return rot @ np.diag([long, short])


def v_mixture():
    """Two elongated Gaussians forming a V (arms along +-45 degrees, meeting near (0, 1.2)).

    The ends (-2, 0) and (2, 0) lie on the arms' axes; the straight line between them
    crosses the empty inside of the V (log p ~ -16 at the origin), a curved path does not.
    Returns the tfp mixture and the same density as a scipy function (the reference).
    """
    scales = [rotated_scale(45), rotated_scale(-45)]
    covs = np.stack([s @ s.T for s in scales]).astype(np.float32)
    locs = np.float32([[-1.0, 1.0], [1.0, 1.0]])
    mixture = tfd.MixtureSameFamily(tfd.Categorical(probs=[0.5, 0.5]),
                                    tfd.MultivariateNormalTriL(loc=locs, scale_tril=np.linalg.cholesky(covs)))

    def scipy_log_prob(x):
        parts = [scipy.stats.multivariate_normal(m, c).logpdf(x) for m, c in zip(locs, covs)]
        return np.logaddexp(*parts) + np.log(0.5)

    return mixture, scipy_log_prob


@pytest.fixture(scope="module")
def v_paths():
    mixture, _ = v_mixture()
    slp = shortest_likely_path(mixture.log_prob, START, END)
    return mixture, slp


def test_straight_path_is_evenly_spaced_strictly_between_the_ends():
    pts = straight_path(START, END, 3)
    np.testing.assert_allclose(pts, [[-1, 0], [0, 0], [1, 0]], atol=1e-6)
    a, b = np.float32([0.5, -1, 2]), np.float32([1.5, 3, -2])
    ref = np.stack([np.linspace(a[i], b[i], 10)[1:-1] for i in range(3)], axis=1)
    np.testing.assert_allclose(straight_path(a, b, 8), ref, atol=1e-6)


def test_loss_terms_match_numpy_and_scipy():
    mixture, scipy_lp = v_mixture()
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5, 2)).astype(np.float32)
    s = SLPSettings(w_path=3.0, w_equal=7.0)
    terms = {k: float(v) for k, v in path_loss_terms(tf.constant(pts), START, END, mixture.log_prob, s).items()}
    full = np.concatenate([START[None], pts, END[None]])
    lengths = np.sqrt(((full[1:] - full[:-1]) ** 2).sum(-1))
    nll = -scipy_lp(pts).sum()
    assert terms["length"] == pytest.approx(lengths.sum(), rel=1e-5)
    assert terms["equal_length"] == pytest.approx(np.std(lengths), rel=1e-4)
    assert terms["neg_log_likelihood"] == pytest.approx(nll, rel=1e-4)
    assert terms["total"] == pytest.approx(3 * lengths.sum() + 7 * np.std(lengths) + nll, rel=1e-4)


def test_optimiser_is_keras_adam_with_clipping():
    """20 steps of the compiled loop equal 20 steps of Keras Adam(clipvalue=1) on the loss."""
    mixture, _ = v_mixture()
    s = SLPSettings(iterations=20, n_step=4)
    ours = shortest_likely_path(mixture.log_prob, START, END, s)
    p = tf.Variable(straight_path(START, END, 4))
    opt = keras.optimizers.Adam(s.learning_rate, beta_1=s.beta1, beta_2=s.beta2, epsilon=s.epsilon,
                                clipvalue=s.clip)
    totals = []
    for _ in range(20):
        with tf.GradientTape() as tape:
            loss = path_loss_terms(p, START, END, mixture.log_prob, s)["total"]
        totals.append(float(loss))
        opt.apply_gradients([(tape.gradient(loss, p), p)])
    np.testing.assert_allclose(ours.points, p.numpy(), atol=2e-5)
    np.testing.assert_allclose(ours.history["total"], totals, rtol=1e-4)
    assert set(ours.history) == set(LOSS_KEYS) and ours.history["total"].shape == (20,)


def test_slp_avoids_the_low_density_gap_with_fixed_ends(v_paths):
    mixture, slp = v_paths
    _, scipy_lp = v_mixture()
    sp_full = with_ends(straight_path(START, END, 8), START, END).numpy()
    sp, ours = summarise_path(sp_full, mixture.log_prob), summarise_path(slp.full, mixture.log_prob)
    # end points never move; 8 intermediate points
    np.testing.assert_array_equal(slp.full[0], START)
    np.testing.assert_array_equal(slp.full[-1], END)
    assert slp.points.shape == (8, 2)
    # reference log-densities from scipy
    assert ours["log_p_min"] == pytest.approx(scipy_lp(slp.points).min(), abs=1e-3)
    assert sp["log_p_min"] == pytest.approx(scipy_lp(sp_full[1:-1]).min(), abs=1e-3)
    assert sp["log_p_min"] < -10 and ours["log_p_min"] > -4          # SP crosses the gap
    assert ours["log_p_min"] > sp["log_p_min"] + 8
    assert ours["log_p_dense_min"] > sp["log_p_dense_min"] + 8      # and not between points
    assert ours["path_length"] > sp["path_length"] == pytest.approx(4.0, rel=1e-5)
    assert slp.points[:, 1].min() > 0.2                              # it went round, inside the V
    # the loss went down; its first entry is the SP's loss
    h = slp.history
    assert h["total"][-1] < 0.75 * h["total"][0]
    assert h["neg_log_likelihood"][0] == pytest.approx(-scipy_lp(sp_full[1:-1]).sum(), rel=1e-4)


def test_equal_length_term_keeps_segments_equal(v_paths):
    mixture, slp = v_paths
    lengths = np.linalg.norm(np.diff(slp.full, axis=0), axis=1)
    assert lengths.max() / lengths.min() < 1.05
    assert lengths.std() < 0.01 * lengths.mean()
    free = shortest_likely_path(mixture.log_prob, START, END, SLPSettings(w_equal=0.0))
    free_lengths = np.linalg.norm(np.diff(free.full, axis=0), axis=1)
    assert free_lengths.max() / free_lengths.min() > 1.3  # without it the points bunch up


TINY = {"exp_name": "mnist_digit", "num_hidden_units": 64, "batch_size": 8, "n_mixtures": 3,
        "n_MC_samples": 4, "test_batch_size": 10, "code_size": 2, "representation_size": 2,
        "n_layers_inner_VAE": 1, "num_hidden_units_inner_VAE": 16}


def tiny_images(n, seed):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 28, 28, 1)) * 255).astype(np.uint8), rng.integers(0, 10, n)


@pytest.mark.parametrize("prior", ["gmm", "ladder"])
def test_interpolate_function_writes_figures_and_json(tmp_path, prior):
    cfg = from_dict({**TINY, "prior": prior})
    vae, p = build_model(cfg)
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(-2, 0.3, (100, 2)), rng.normal(2, 0.3, (100, 2))]).astype(np.float32)
    if prior == "gmm":
        p.mixture.fit(points)
    else:
        p.accurate.fit(points)
        p.has_accurate.assign(True)
    run = Run(cfg, vae, p, str(tmp_path), "none")
    (xtr, ytr), (xte, yte) = tiny_images(16, 0), tiny_images(30, 1)
    data = ImageData(xtr, ytr, xte, yte, source="random")
    out = tmp_path / "interp"
    s = SLPSettings(n_step=5, iterations=30)
    summary = cli.interpolate("model", 3, 7, str(out), s, seed=2, model=run, data=data)
    for name in ("slp_sp_strip.png", "slp_losses.png", "path_density_2d.png", "interpolation.json", "paths.npz"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "interpolation.json").read_text())["methods"] == summary["methods"]
    assert summary["path_space"] == ("t" if prior == "ladder" else "z") and summary["dim"] == 2
    arrays = np.load(out / "paths.npz")
    assert arrays["slp"].shape == (7, 2) and arrays["slp_images"].shape == (7, 28, 28, 1)
    # SP's length is the distance between the end points; those are the model's embeddings
    space = path_space(run)
    ends = space.embed(tf.constant(xte[[3, 7]].astype(np.float32) / 255.0), 2).numpy()
    np.testing.assert_allclose(arrays["sp"][[0, -1]], ends, atol=1e-6)
    assert summary["methods"]["SP"]["path_length"] == pytest.approx(np.linalg.norm(ends[1] - ends[0]), rel=1e-4)
    ref_lp = (p.accurate if prior == "ladder" else p.mixture).distribution().log_prob(arrays["slp"][1:-1])
    assert summary["methods"]["SLP"]["log_p_min"] == pytest.approx(float(tf.reduce_min(ref_lp)), abs=1e-3)
    np.testing.assert_allclose(arrays["sp_images"], space.decode(tf.constant(arrays["sp"])).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="test-set index"):
        cli.interpolate("model", 0, 30, str(out), s, model=run, data=data)


def test_cli_rejects_a_missing_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        interpolate_cmd.main([str(tmp_path / "nope"), "--start", "0", "--end", "1", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o")

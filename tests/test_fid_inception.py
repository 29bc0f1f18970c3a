"""The standard FID network port, TTUR's preprocessing, and the repeat protocol."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from ladder_tf.evaluation import fid as fid_lib
from ladder_tf.evaluation.frechet import GaussianStats
from ladder_tf.evaluation.fid_inception import quantise_uint8, tf1_resize_bilinear, ttur_preprocess
from ladder_tf.evaluation.fid_weights import FIDWeightsError, convert, find_fid_weights, load_params
from ladder_tf.evaluation.torchscript_reader import TorchScriptFormatError, read_torchscript
from fixtures.make_fid_inception_fixture import OUT as FIXTURE, fixture_images, images_sha256


# -- preprocessing ----------------------------------------------------------------------
def test_tf1_resize_against_hand_computed_values():
    # TF1 resize_bilinear(align_corners=False): output i reads input i * in / out.
    x = np.array([[0.0, 30.0, 90.0]], np.float32)          # one row of 3 pixels -> 4
    coords = np.arange(4) * 3 / 4                            # 0, 0.75, 1.5, 2.25
    expected = [0.0, 0.75 * 30, 30 + 0.5 * 60, 90.0]         # the last clamps to the edge
    out = tf1_resize_bilinear(x[None, :, :, None], 4).numpy()  # (1, 4, 4, 1): rows too
    np.testing.assert_allclose(out[0, 0, :, 0], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out[0, :, 1, 0], expected[1], atol=1e-5)  # one input row
    assert coords[-1] > 2  # (the edge case above is really exercised)
    # 2x2 -> 4x4: [a, (a+b)/2, b, b] in both directions
    a, b, c, d = 10.0, 50.0, 90.0, 250.0
    out = tf1_resize_bilinear(np.array([[[a], [b]], [[c], [d]]], np.float32)[None], 4).numpy()[0, :, :, 0]
    row0 = [a, (a + b) / 2, b, b]
    row1 = [(a + c) / 2, (a + b + c + d) / 4, (b + d) / 2, (b + d) / 2]
    row2 = [c, (c + d) / 2, d, d]
    np.testing.assert_allclose(out, [row0, row1, row2, row2], atol=1e-5)
    # and it is not TF2's half-pixel resize
    tf2 = tf.image.resize(np.array([[[a], [b]], [[c], [d]]], np.float32)[None], (4, 4)).numpy()[0, :, :, 0]
    assert np.abs(tf2 - out).max() > 1.0


def test_ttur_preprocess_quantises_resizes_repeats_and_scales():
    v = np.array([0, 1, 127, 128, 200, 255], np.uint8)
    grey = np.tile(v, 6 * 1)[:36].reshape(1, 6, 6, 1)
    out = ttur_preprocess(grey).numpy()
    assert out.shape == (1, 299, 299, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    const = ttur_preprocess(np.full((1, 28, 28, 1), 200, np.uint8)).numpy()
    np.testing.assert_allclose(const, (200 - 128) / 128, atol=1e-6)
    assert ttur_preprocess(np.zeros((1, 5, 5, 3), np.uint8)).numpy().min() == -1.0
    assert ttur_preprocess(np.full((1, 5, 5, 3), 255, np.uint8)).numpy().max() == pytest.approx(0.9921875)
    # float images in [0, 1] are the same images as their uint8 values; outside values clip
    floats = grey.astype(np.float32) / 255.0
    np.testing.assert_array_equal(ttur_preprocess(floats).numpy(), out)
    np.testing.assert_array_equal(quantise_uint8(np.array([-0.2, 0.5, 0.999, 1.3], np.float32)).numpy(),
                                  [0, 128, 255, 255])


# -- the network ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fid_params():
    path = find_fid_weights()
    if path is None:
        pytest.skip("FID Inception weights not converted: run `make fid-weights` "
                    "(ladder fid-weights)")
    return load_params(path)


@pytest.mark.parametrize("fuse", [True, False])
def test_port_matches_the_torchscript_network(fid_params, fuse):
    from ladder_tf.evaluation.fid_inception import build_fid_inception

    fx = np.load(FIXTURE)
    images = np.stack([fixture_images(int(s)) for s in fx["seeds"]])
    assert images_sha256(images) == str(fx["images_sha256"]), "numpy's generator changed the inputs"
    got = build_fid_inception(fid_params, fuse=fuse)(images.astype(np.float32) / 128.0 - 1.0).numpy()
    ref = fx["features"]
    assert got.shape == ref.shape == (4, 2048)
    err = np.abs(got - ref).max(axis=1) / np.abs(ref).max(axis=1)
    assert err.max() < 1e-4, err
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-5


def test_fid_of_identical_sets_is_zero_and_batching_does_not_matter(fid_params):
    from ladder_tf.data.images import as_images
    from ladder_tf.evaluation.features import accumulate_stats
    from ladder_tf.evaluation.fid_inception import FIDInceptionFeatures

    ext = FIDInceptionFeatures(fid_params, "test", batch_size=3)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    a = accumulate_stats(ext, as_images(images).float_batches(3), progress=False)
    b = accumulate_stats(ext, as_images(images).float_batches(6), progress=False)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-5, atol=1e-6)
    assert fid_lib.fid(a, b) < 1e-6 * np.trace(a.cov)
    assert np.abs(ext(255 - images[:2]).mean(0) - a.mean).max() > 0.1  # features do see the images


# -- the converter ----------------------------------------------------------------------
def test_converter_checks_the_source_hash():
    with pytest.raises(FIDWeightsError, match="SHA-1"):
        convert(b"not the network")


def test_reader_refuses_anything_but_a_torchscript_archive():
    with pytest.raises(TorchScriptFormatError, match="not a zip"):
        read_torchscript(io.BytesIO(b"plain bytes"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/data.pkl", pickle.dumps(os.getcwd))  # a global outside the allowed few
    with pytest.raises(TorchScriptFormatError, match="refusing"):
        read_torchscript(io.BytesIO(buf.getvalue()))


# -- the repeat protocol -----------------------------------------------------------------
class MeanFeatures:
    """A cheap extractor: per-image mean and std of the pixels and of each row, (B, 30)."""

    dim, batch_size = 30, 16

    def __call__(self, images):
        x = np.asarray(images, np.float64).reshape(len(images), 28, 28)
        return np.concatenate([x.mean(axis=2), x.mean(axis=(1, 2))[:, None], x.std(axis=(1, 2))[:, None]], 1)


class NoisyModel:
    """reconstruct: the image plus noise of the seed (posterior mean: no noise); generate: noise."""

    name = "fake"

    def reconstruct(self, x, seed=None):
        if seed is None:
            return x
        return x + 0.1 * np.random.default_rng(list(seed)).normal(size=x.shape)

    def generate(self, n, seed):
        return np.random.default_rng(seed).uniform(size=(n, 28, 28, 1))


def test_repeats_draw_afresh_and_posterior_mean_repeats_are_identical(tmp_path):
    x_test = np.random.default_rng(1).integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    ext, model = MeanFeatures(), NoisyModel()
    sampled = fid_lib.model_stats(model, ext, x_test, 40, 2, seed=0, progress=False)
    for kind in ("generation", "reconstruction"):
        a, b = sampled[kind]
        assert not np.allclose(a.mean, b.mean), kind
    mean = fid_lib.model_stats(model, ext, x_test, 40, 2, seed=0, sampled_reconstruction=False, progress=False)
    np.testing.assert_array_equal(mean["reconstruction"][0].mean, mean["reconstruction"][1].mean)
    notes = fid_lib.sampling_notes(40, 40, 2, True)
    assert "spread is 0" in notes["real"] and "fresh draws" in notes["reconstruction"]
    assert "fresh random subset" in fid_lib.sampling_notes(40, 20, 2, False)["real"]


def test_stats_cache_skips_finished_sets_and_pytorch_fid_layout(tmp_path):
    cache = fid_lib.StatsCache(str(tmp_path / "c"))
    calls = []

    def compute():
        calls.append(1)
        return GaussianStats(np.arange(3.0), np.eye(3), 5)

    first = cache.get("reference|x", compute)
    again = cache.get("reference|x", compute)
    assert len(calls) == 1 and np.array_equal(first.cov, again.cov)
    cache.get("reference|y", compute)
    assert len(calls) == 2
    first.save_pytorch_fid(str(tmp_path / "s.npz"))
    with np.load(tmp_path / "s.npz") as f:
        assert sorted(f.files) == ["mu", "sigma"]
        np.testing.assert_array_equal(f["sigma"], np.eye(3))


def test_vae_reconstruction_from_a_sampled_z():
    from ladder_tf.config import from_dict
    from ladder_tf.model.vae import VAE

    vae = VAE(from_dict({"prior": "normal", "code_size": 4, "num_hidden_units": 64}))
    x = tf.constant(np.random.default_rng(2).uniform(size=(3, 28, 28, 1)), tf.float32)
    mean, std = vae.encode(x)
    seed = tf.constant([5, 1], tf.int32)
    expected = vae.decode(mean + std * tf.random.stateless_normal(tf.shape(mean), seed))
    np.testing.assert_allclose(vae.reconstruct(x, seed).numpy(), expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(vae.reconstruct(x).numpy(), vae.decode(mean).numpy(), atol=1e-6)
    assert not np.allclose(vae.reconstruct(x, seed).numpy(), vae.reconstruct(x).numpy())

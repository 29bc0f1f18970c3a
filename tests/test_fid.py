"""Fréchet distance against closed forms, streaming statistics, feature extractors."""
import os

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from ladder_tf.data.mnist import DEBIAN_FASHION_DIR
from ladder_tf.evaluation import classifier as clf_lib
from ladder_tf.evaluation import features as feat_lib
from ladder_tf.data.images import as_images
from ladder_tf.evaluation.fid import fid, fid_rows, subset_indices, summarise
from ladder_tf.evaluation.frechet import GaussianStats, StreamingStats, frechet_distance

HAVE_FASHION = os.path.isdir(DEBIAN_FASHION_DIR)
rng = np.random.default_rng(0)


def random_spd(d, cond=10.0, seed=0):
    r = np.random.default_rng(seed)
    q, _ = np.linalg.qr(r.normal(size=(d, d)))
    return (q * np.geomspace(1.0, cond, d)) @ q.T


def scipy_fid(mu1, c1, mu2, c2):
    """The textbook formula with scipy's general matrix square root (fine when well conditioned)."""
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


# -- the distance ---------------------------------------------------------------------
def test_one_dimensional_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) = (m1 - m2)^2 + (s1 - s2)^2
    value = frechet_distance([1.5], [[4.0]], [-0.5], [[0.25]])
    assert value == pytest.approx(2.0 ** 2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_commuting_covariances_closed_form():
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    a, b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    value = frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert value == pytest.approx(expected, rel=1e-10)


def test_general_covariances_match_scipy_and_are_symmetric():
    d = 20
    c1, c2 = random_spd(d, 50.0, 1), random_spd(d, 20.0, 2)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    value = frechet_distance(mu1, c1, mu2, c2)
    assert value == pytest.approx(scipy_fid(mu1, c1, mu2, c2), rel=1e-9)
    assert frechet_distance(mu2, c2, mu1, c1) == pytest.approx(value, rel=1e-10)


def test_zero_for_identical_statistics():
    c = random_spd(30, 1e3, 3)
    mu = rng.normal(size=30)
    assert abs(frechet_distance(mu, c, mu, c)) < 1e-9 * np.trace(c)


def test_near_singular_fewer_samples_than_dimensions():
    d, n = 64, 20  # rank-19 sample covariances
    x = rng.normal(size=(n, d)) @ random_spd(d, 100.0, 4)
    y = rng.normal(size=(n, d)) @ random_spd(d, 100.0, 5) + 0.3
    a, b = (GaussianStats(v.mean(0), np.cov(v, rowvar=False), n) for v in (x, y))
    value = fid(a, b)
    assert isinstance(value, float) and np.isfinite(value) and value >= 0.0
    assert fid(b, a) == pytest.approx(value, rel=1e-8)
    # identical rank-deficient statistics: zero (scipy's sqrtm is not reliable here)
    assert 0.0 <= fid(a, a) < 1e-8 * np.trace(a.cov)
    # independent route: tr (C1 C2)^{1/2} = sum sqrt(eig(C1 C2)), the eigenvalues being real >= 0
    eig = np.clip(np.linalg.eigvals(a.cov @ b.cov).real, 0.0, None)
    expected = np.sum((a.mean - b.mean) ** 2) + np.trace(a.cov) + np.trace(b.cov) - 2 * np.sum(np.sqrt(eig))
    assert value == pytest.approx(expected, rel=1e-6)


def test_rank_deficient_diagonal_closed_form():
    a = np.array([2.0, 0.5, 0.0, 0.0])
    b = np.array([0.0, 1.5, 3.0, 0.0])
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    value = frechet_distance(np.zeros(4), np.diag(a), np.zeros(4), np.diag(b))
    assert value == pytest.approx(expected, rel=1e-12)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# -- statistics -----------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 7, 100, 1000])
def test_streaming_stats_match_numpy_for_any_batching(batch):
    x = rng.normal(size=(300, 5)) * [1, 2, 3, 4, 5] + 1e4  # large offset: cancellation test
    s = StreamingStats(5)
    for i in range(0, len(x), batch):
        s.update(x[i:i + batch].astype(np.float32) if batch == 7 else x[i:i + batch])
    out = s.finalize()
    ref = x.astype(np.float32).astype(np.float64) if batch == 7 else x
    np.testing.assert_allclose(out.mean, ref.mean(0), rtol=1e-12)
    np.testing.assert_allclose(out.cov, np.cov(ref, rowvar=False), rtol=1e-8, atol=1e-8)
    assert out.n == 300


def test_stats_save_load_roundtrip(tmp_path):
    s = GaussianStats(rng.normal(size=3), random_spd(3), 42)
    s.save(str(tmp_path / "s.npz"))
    t = GaussianStats.load(str(tmp_path / "s.npz"))
    np.testing.assert_array_equal(t.mean, s.mean)
    np.testing.assert_array_equal(t.cov, s.cov)
    assert t.n == 42


def test_rows_difference_is_paired_and_std_is_sample_std():
    rows = fid_rows([10.0, 12.0, 14.0], [4.0, 5.0, 9.0], [1.0, 1.0, 1.0])
    assert rows["difference"]["values"] == [6.0, 7.0, 5.0]
    assert rows["difference"]["mean"] == pytest.approx(6.0)
    assert rows["generation"]["std"] == pytest.approx(np.std([10, 12, 14], ddof=1))
    assert summarise([3.0])["std"] is None


def test_test_subsets_are_fresh_per_repeat_and_capped():
    a, b = subset_indices(1000, 100, 0, 0), subset_indices(1000, 100, 0, 1)
    assert len(set(a)) == 100 and not np.array_equal(a, b)
    assert np.array_equal(subset_indices(50, 100, 0, 3), np.arange(50))


# -- feature extractors -----------------------------------------------------------------
def test_missing_inception_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    monkeypatch.setattr(feat_lib, "keras_cache_dirs", lambda: [str(tmp_path / "kh" / "models")])
    with pytest.raises(feat_lib.WeightsNotFoundError) as err:
        feat_lib.find_inception_weights()
    msg = str(err.value)
    assert "--inception-weights" in msg and "--features classifier" in msg and "\n" not in msg
    with pytest.raises(feat_lib.WeightsNotFoundError):
        feat_lib.find_inception_weights(str(tmp_path / "nope.h5"))
    (tmp_path / "kh" / "models").mkdir(parents=True)
    (tmp_path / "kh" / "models" / feat_lib.NOTOP_FILE).write_bytes(b"x")
    assert feat_lib.find_inception_weights().endswith(feat_lib.NOTOP_FILE)


def test_paper_preprocessing():
    ext = feat_lib.InceptionFeatures(protocol="paper", model=object())  # model unused here
    x = np.concatenate([np.full((1, 28, 28, 1), 0.25, np.float32),
                        np.full((1, 28, 28, 1), 1.7, np.float32)])  # a generated value above 1
    out = ext.preprocess(x).numpy()
    assert out.shape == (2, 140, 140, 3)
    np.testing.assert_allclose(out[0], -0.5, atol=1e-6)  # 2 * 0.25 - 1
    np.testing.assert_allclose(out[1], 1.0, atol=1e-6)   # clipped to 1 first
    g = rng.uniform(size=(1, 28, 28, 1)).astype(np.float32)
    y = ext.preprocess(g).numpy()
    assert np.array_equal(y[..., 0], y[..., 1]) and np.array_equal(y[..., 0], y[..., 2])
    assert y.min() >= -1 and y.max() <= 1
    std = feat_lib.InceptionFeatures(protocol="standard", model=object())
    assert std.preprocess(g).shape == (1, 299, 299, 3)


def numpy_tf1_resize(x, size):
    """TensorFlow 1's resize_images (bilinear, align_corners=False, no half-pixel centres), in
    numpy float64: output pixel i reads input coordinate i * in / out, the upper neighbour
    clamped at the edge. (B, H, W, C) -> (B, size, size, C)."""
    def axis_weights(n_in):
        coord = np.arange(size) * (n_in / size)
        lo = np.floor(coord).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), coord - lo

    y0, y1, fy = axis_weights(x.shape[1])
    x0, x1, fx = axis_weights(x.shape[2])
    rows = x[:, y0] * (1 - fy)[None, :, None, None] + x[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


def test_paper_protocol_resizes_on_tensorflow_1s_grid():
    """The authors' utility called TF1's resize_images: no half-pixel centres (issue 23)."""
    ext = feat_lib.InceptionFeatures(protocol="paper", model=object())
    x = np.random.default_rng(3).uniform(size=(2, 28, 28, 1))
    expected = numpy_tf1_resize(numpy_tf1_resize(np.repeat(2.0 * x - 1.0, 3, axis=-1), 64), 140)
    got = ext.preprocess(x.astype(np.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)
    half_pixel = tf.image.resize(tf.image.resize(np.repeat(2 * x - 1, 3, -1), (64, 64)), (140, 140)).numpy()
    assert np.abs(half_pixel - expected).max() > 0.05  # the two grids really differ on these images
    assert "tf1grid" in ext.fingerprint  # statistics of the old grid are not reused from caches


@pytest.mark.slow
def test_inception_weight_files_load(tmp_path):
    """Both Keras files (no-top and full) give the network they were saved from."""
    import tf_keras as keras

    keras.utils.set_random_seed(1)
    ref = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(140, 140, 3),
                                         pooling="avg")
    notop = str(tmp_path / feat_lib.NOTOP_FILE)
    ref.save_weights(notop)
    full = keras.applications.InceptionV3(include_top=True, weights=None)
    full_path = str(tmp_path / feat_lib.TOP_FILE)
    full.save_weights(full_path)
    x = rng.uniform(size=(3, 28, 28, 1)).astype(np.float32)
    ext = feat_lib.InceptionFeatures(notop, "paper", batch_size=3)
    expected = ref(ext.preprocess(x), training=False).numpy()
    np.testing.assert_allclose(ext(x), expected, rtol=1e-4, atol=1e-5)
    assert ext(x).shape == (3, 2048) and not ext.weights_are_official
    ext_full = feat_lib.InceptionFeatures(full_path, "paper")
    pooled = keras.Model(full.input, full.get_layer("avg_pool").output)
    ref_full = keras.applications.InceptionV3(include_top=False, weights=None,
                                              input_shape=(140, 140, 3), pooling="avg")
    ref_full.set_weights(pooled.get_weights())
    np.testing.assert_allclose(ext_full(x), ref_full(ext.preprocess(x), training=False).numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def quick_classifier():
    """A classifier trained for 1 epoch on 3,000 Fashion-MNIST images (a few seconds)."""
    if not HAVE_FASHION:
        pytest.skip(f"Fashion-MNIST not installed at {DEBIAN_FASHION_DIR} "
                    "(apt package dataset-fashion-mnist)")
    from ladder_tf.data import load_dataset

    data = load_dataset("mnist_fashion", allow_download=False)
    clf = clf_lib.train_classifier(data.x_train[:3000], data.y_train[:3000], data.x_test[:1000],
                                   data.y_test[:1000], epochs=1, batch_size=32,
                                   progress=False)
    return clf, data


def test_classifier_fid_separates_real_from_noise_and_blur(quick_classifier):
    clf, data = quick_classifier
    assert clf.info["test_accuracy"] > 0.6
    ext = feat_lib.ClassifierFeatures(clf, "mnist_fashion")
    ref = feat_lib.accumulate_stats(ext, as_images(data.x_train[3000:8000]).float_batches(500), progress=False)

    def fid_of(images):
        return fid(feat_lib.accumulate_stats(ext, as_images(images).float_batches(500), progress=False), ref)

    test = data.x_test[:2000].astype(np.float32) / 255.0
    noise = np.random.default_rng(1).uniform(size=test.shape).astype(np.float32)
    padded = tf.pad(test, [[0, 0], [2, 2], [2, 2], [0, 0]], "SYMMETRIC")
    blurred = tf.nn.avg_pool2d(padded, 5, 1, "VALID").numpy()  # 5x5 box blur
    real, f_noise, f_blur = fid_of(test), fid_of(noise), fid_of(blurred)
    assert real < 0.1 * f_blur and f_blur < f_noise, (real, f_blur, f_noise)


def test_classifier_cache_roundtrip_and_reuse(quick_classifier, tmp_path, monkeypatch):
    clf, data = quick_classifier
    clf_lib.save_classifier(clf, clf_lib.classifier_dir("mnist_fashion", str(tmp_path)))
    monkeypatch.setattr(clf_lib, "train_classifier", lambda *a, **k: pytest.fail("retrained"))
    again = clf_lib.get_classifier("mnist_fashion", data, str(tmp_path), progress=False)
    x = data.x_test[:8].astype(np.float32) / 255.0
    np.testing.assert_allclose(again.features(x).numpy(), clf.features(x).numpy(), rtol=1e-5, atol=1e-6)
    assert again.info["test_accuracy"] == clf.info["test_accuracy"]
    assert sorted(os.listdir(tmp_path / "mnist_fashion")) == [clf_lib.INFO_FILE, clf_lib.WEIGHTS_FILE]

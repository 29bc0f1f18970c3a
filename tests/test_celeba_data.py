"""CelebA input pipeline on a generated folder: split, preprocessing, bad files, cache."""
import hashlib
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from ladder_tf.data import (DataNotFoundError, as_images, balanced_test_batch, eval_batches, load_dataset,
                            train_batches, warn_skipped_files)
from ladder_tf.data import celeba
from ladder_tf.data import folder as folder_lib
from synthetic import write_synthetic_folder

N_JPEG = 36  # plus 2 exact PNGs, 1 non-image and 1 truncated JPEG


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("img_align_celeba")
    write_synthetic_folder(str(root), N_JPEG, sizes=((218, 178), (100, 80), (64, 96)))
    rng = np.random.default_rng(1)
    exact = {"square.png": rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),  # resize = identity
             "wide.png": rng.integers(0, 256, (128, 200, 3), dtype=np.uint8)}    # centre crop = identity
    for name, array in exact.items():
        Image.fromarray(array).save(root / name)
    (root / "notes.jpg").write_text("not an image")
    whole = (root / "000001.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    return str(root), exact


def epoch_images(images, batch, epoch=1):
    return np.concatenate(list(train_batches(images, batch, seed=0, epoch=epoch).as_numpy_iterator()))


def test_split_is_seeded_exact_and_independent_of_the_run(folder):
    root, _ = folder
    data = load_dataset("celeba", root, test_size=7)
    n_readable = N_JPEG + 2 + 1  # the truncated JPEG passes the header check; it fails to decode
    assert (len(data.x_train), len(data.x_test)) == (n_readable - 7, 7)
    train, test = set(data.x_train.rows), set(data.x_test.rows)
    assert not train & test and train | test == set(range(n_readable))
    again = load_dataset("celeba", root, test_size=7)
    np.testing.assert_array_equal(again.x_test.rows, data.x_test.rows)
    ref_train, ref_test = celeba.split_indices(n_readable, 7, seed=celeba.SPLIT_SEED)
    perm = np.random.default_rng(celeba.SPLIT_SEED).permutation(n_readable)  # independent restatement
    np.testing.assert_array_equal(ref_test, np.sort(perm[:7]))
    np.testing.assert_array_equal(data.x_train.rows, ref_train)
    sub = load_dataset("celeba", root, test_size=7, train_size=5)
    assert len(sub.x_train) == 5 and len(sub.y_train) == 5
    with pytest.raises(ValueError, match="test_size"):
        load_dataset("celeba", root, test_size=n_readable)


def test_shapes_range_and_exact_preprocessing(folder):
    root, exact = folder
    for crop in ("none", "center_square"):
        data = celeba.load_celeba(root, test_size=4, crop=crop)
        images = epoch_images(data.x_train, 8)
        assert images.shape == (8 * (len(data.x_train) // 8), 128, 128, 3) and images.dtype == np.float32
        assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.05
        store, names = data.x_train.store, [os.path.basename(p) for p in data.x_train.store.paths]
        everything = celeba.ImageFiles(store, np.arange(len(names)))
        square = everything[np.array([names.index("square.png")])].floats()[0]
        np.testing.assert_allclose(square, exact["square.png"] / 255.0, atol=1e-6)
        wide = everything[names.index("wide.png")]
        if crop == "center_square":  # (128, 200) -> columns 36..163, then an identity resize
            np.testing.assert_allclose(wide, exact["wide.png"][:, 36:164] / 255.0, atol=1e-6)
        else:  # the plain resize squeezes the width: the mean colour survives, the pixels do not
            np.testing.assert_allclose(wide.mean(axis=(0, 1)), exact["wide.png"].mean(axis=(0, 1)) / 255,
                                       atol=2e-3)
            assert not np.allclose(wide, exact["wide.png"][:, 36:164] / 255.0, atol=0.1)
    x, y = balanced_test_batch(data.x_test, data.y_test, 3)
    assert x.shape == (3, 128, 128, 3) and list(y) == [0, 0, 0]


def test_bad_files_are_skipped_counted_and_warned_once_per_epoch(folder):
    root, _ = folder
    data = load_dataset("celeba", root, test_size=4)
    truncated_in_train = any(p.endswith("truncated.jpg") for p in data.x_train.store.paths[data.x_train.rows])
    assert truncated_in_train  # with this split; the refill below is then exercised
    for epoch in (1, 2):
        images = epoch_images(data.x_train, 5, epoch)
        assert len(images) == 5 * (len(data.x_train) // 5)  # the epoch keeps its batch count
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            skipped = warn_skipped_files(data, epoch)
        assert len(caught) == 1 and f"epoch {epoch}: skipped 2 unreadable" in str(caught[0].message)
        assert sorted(os.path.basename(p) for p in skipped) == ["notes.jpg", "truncated.jpg"]
        assert "notes.jpg" in str(caught[0].message)
    # evaluation passes: every readable test image exactly once, bad ones dropped
    assert sum(len(b) for b in eval_batches(data.x_test, 3)) == len(data.x_test)


def test_cache_is_identical_reused_and_invalidated(folder, tmp_path, monkeypatch, capsys):
    root, _ = folder
    plain = load_dataset("celeba", root, test_size=4)
    cache_dir = str(tmp_path / "cache")
    built = load_dataset("celeba", root, test_size=4, cache_dir=cache_dir)
    assert "building the CelebA cache" in capsys.readouterr().out
    (entry,) = os.listdir(cache_dir)
    np.testing.assert_array_equal(epoch_images(built.x_train, 8), epoch_images(plain.x_train, 8))
    np.testing.assert_array_equal(built.x_test.rows, plain.x_test.rows)
    with pytest.warns(UserWarning, match="skipped 2"):
        skipped = warn_skipped_files(built, 1)
    assert sorted(os.path.basename(p) for p in skipped) == ["notes.jpg", "truncated.jpg"]

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(folder_lib, "_write_cache", no_rebuild)
    reused = load_dataset("celeba", root, test_size=4, cache_dir=cache_dir)
    assert "cache" in reused.source and reused.x_train.store.cache is not None
    np.testing.assert_array_equal(epoch_images(reused.x_train, 8, epoch=3), epoch_images(plain.x_train, 8, epoch=3))
    with pytest.raises(AssertionError, match="rebuilt"):  # another crop is another cache
        celeba.load_celeba(root, test_size=4, crop="center_square", cache_dir=cache_dir)


def test_missing_or_empty_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_dataset("celeba", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="holds no files"):
        load_dataset("celeba", str(tmp_path / "empty"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_text("x")
    with pytest.raises(DataNotFoundError, match="no readable image"):
        load_dataset("celeba", str(tmp_path / "junk"))


def test_content_id_names_the_images_without_decoding_them(folder, monkeypatch):
    root, _ = folder
    data = load_dataset("celeba", root, test_size=7)
    again = load_dataset("celeba", root, test_size=7)
    assert data.x_test.content_id() == again.x_test.content_id()
    assert data.x_test.content_id() != data.x_train[:7].content_id()
    assert data.x_test.content_id() != data.x_test[::-1].content_id()  # order matters
    cropped = celeba.load_celeba(root, test_size=7, crop="center_square")
    assert cropped.x_test.content_id() != data.x_test.content_id()
    monkeypatch.setattr(celeba.ImageFiles, "_pipeline", lambda *a, **k: pytest.fail("decoded images"))
    before = data.x_test.content_id()
    path = str(data.x_test.store.paths[data.x_test.rows[0]])
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was replaced
    assert data.x_test.content_id() != before
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data.x_test.content_id() == before
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4, 1)
    assert as_images(x).content_id() == hashlib.sha1(x.tobytes()).hexdigest()[:10]
    assert as_images(x[:, ::-1]).content_id() == hashlib.sha1(x[:, ::-1].copy().tobytes()).hexdigest()[:10]

"""--dataset folder and tfds:NAME, the data source a run records, and a 64x64 folder trained,
evaluated and sampled without repeating --data-dir."""
import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ladder_tf.config import ConfigError, from_dict, load as load_config
from ladder_tf.data import DataNotFoundError, as_images, load_dataset, load_run_data, run_data_dir
from synthetic import write_synthetic_folder

FOLDER = {"exp_name": "folder", "dim_input_x": 64, "dim_input_y": 64, "dim_input_channel": 3,
          "activation": "leaky_relu", "output_activation": "linear", "test_size": 8}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """32 JPEGs in two levels of subfolders (64x64, 80x100, 50x70), one PNG that is not an
    image (listed, skipped), a CSV (not an image extension) and a hidden folder (both ignored)."""
    root = tmp_path_factory.mktemp("pictures")
    write_synthetic_folder(str(root / "a"), 20, sizes=((64, 64), (80, 100)))
    write_synthetic_folder(str(root / "b" / "c"), 12, sizes=((50, 70),), seed=1)
    write_synthetic_folder(str(root / ".thumbnails"), 2, sizes=((64, 64),), seed=2)
    (root / "b" / "labels.csv").write_text("name,label\n")
    (root / "a" / "broken.png").write_text("not a png")
    return root


def test_folder_is_searched_recursively_resized_and_split(pictures):
    data = load_dataset("folder", str(pictures), cfg=from_dict(FOLDER))
    store = data.x_train.store
    names = [os.path.relpath(p, pictures) for p in store.paths]
    assert len(names) == 32 and names == sorted(names) and sum(n.startswith("b/c/") for n in names) == 12
    assert [os.path.basename(p) for p in store.scan_skipped] == ["broken.png"]
    assert (len(data.x_train), len(data.x_test)) == (24, 8)
    images = as_images(data.x_test).floats()
    assert images.shape == (8, 64, 64, 3) and 0 <= images.min() and images.max() <= 1
    # a 64x64 source is its own resize: the decoded JPEG itself
    i = names.index(os.path.join("a", "000000.jpg"))
    everything = data.x_train.store
    from ladder_tf.data.image_files import ImageFiles
    got = ImageFiles(everything, np.array([i])).floats()[0]
    decoded = tf.io.decode_jpeg(tf.io.read_file(str(pictures / "a" / "000000.jpg"))).numpy()
    np.testing.assert_allclose(got, decoded / 255.0, atol=1e-6)
    # grey: one channel, the luma of the colour image (libjpeg decodes its Y channel directly,
    # without the chroma round trip, so single pixels differ by a few levels)
    grey = load_dataset("folder", str(pictures), cfg=from_dict({**FOLDER, "dim_input_channel": 1}))
    g = ImageFiles(grey.x_train.store, np.array([i])).floats()[0]
    luma = decoded.astype(np.float64) @ [0.299, 0.587, 0.114] / 255.0
    diff = np.abs(g[..., 0] - luma)
    assert g.shape == (64, 64, 1) and diff.mean() < 1 / 255 and diff.max() < 6 / 255
    with pytest.raises(DataNotFoundError, match="needs --data-dir"):
        load_dataset("folder", None, cfg=from_dict(FOLDER))
    with pytest.raises(ValueError, match="test_size"):
        load_dataset("folder", str(pictures), cfg=from_dict({**FOLDER, "test_size": 32}))


def test_folder_cache_holds_the_same_pixels(pictures, tmp_path, capsys):
    cfg = from_dict({**FOLDER, "dim_input_x": 16, "dim_input_y": 16, "dim_input_channel": 1})
    plain = load_dataset("folder", str(pictures), cfg=cfg)
    cached = load_dataset("folder", str(pictures), cfg=cfg, cache_dir=str(tmp_path))
    assert "building the image cache" in capsys.readouterr().out
    (entry,) = os.listdir(tmp_path)
    assert entry.startswith("folder-16-none-")
    np.testing.assert_array_equal(as_images(cached.x_train).floats(), as_images(plain.x_train).floats())
    assert cached.x_train.store.cache.shape == (32, 16, 16, 1)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    """A tiny TFDS image set prepared on disk (10 train, 4 test 16x16 images), built offline."""
    import tensorflow_datasets as tfds

    class LadderTinyImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(16, 16, 3)), "label": tfds.features.ClassLabel(num_classes=2)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, 10), "test": self._generate_examples(10, 4)}

        def _generate_examples(self, start, n):
            for i in range(start, start + n):
                yield i, {"image": tiny_image(i), "label": i % 2}

    root = tmp_path_factory.mktemp("tfds")
    LadderTinyImages(data_dir=str(root)).download_and_prepare()
    return str(root)


def tiny_image(i):
    return np.random.default_rng([i, 7]).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def test_a_prepared_tfds_image_set_is_read_and_never_downloaded(tfds_dir):
    cfg = from_dict({**FOLDER, "exp_name": "tfds:ladder_tiny_images", "dim_input_x": 16, "dim_input_y": 16,
                     "test_size": 4})
    data = load_dataset(cfg.exp_name, tfds_dir, cfg=cfg)
    assert (len(data.x_train), len(data.x_test)) == (10, 4)
    got = np.round(np.concatenate([as_images(data.x_train).floats(), as_images(data.x_test).floats()]) * 255)
    expected = np.stack([tiny_image(i) for i in range(14)]).astype(np.float64)
    key = lambda a: sorted(x.tobytes() for x in a.astype(np.uint8))  # noqa: E731 (TFDS reorders examples)
    assert key(got) == key(expected)  # 16x16 at 16x16: every image exactly, none twice
    with pytest.raises(DataNotFoundError, match="not prepared"):
        load_dataset("tfds:ladder_absent_images", tfds_dir, cfg=cfg)
    with pytest.raises(ConfigError, match="tfds:NAME"):
        from_dict({**FOLDER, "exp_name": "tfds:Bad Name"})


def test_the_recorded_data_source_is_used_unless_a_directory_is_given(tmp_path, pictures):
    from ladder_tf.commands.train import with_data_dir
    from ladder_tf.config import save
    from ladder_tf.workflows.evaluate import EvaluationError, EvaluationSettings, load_data

    cfg = from_dict({**FOLDER, "data_dir": str(pictures)})
    assert run_data_dir(cfg) == str(pictures) and run_data_dir(cfg, "elsewhere") == "elsewhere"
    gone = from_dict({**FOLDER, "data_dir": str(tmp_path / "moved")})
    with pytest.raises(DataNotFoundError, match=f"{tmp_path / 'moved'} recorded in the run's config.json"):
        load_run_data(gone)
    assert run_data_dir(from_dict(FOLDER)) is None
    # training records an absolute path; resuming without --data-dir reads the recorded one
    run = tmp_path / "run"
    run.mkdir()
    save(cfg, run / "config.json")
    assert with_data_dir(from_dict(FOLDER), None, [str(run)]).data_dir == str(pictures)
    assert with_data_dir(from_dict(FOLDER), "rel", [str(run)]).data_dir == os.path.abspath("rel")
    assert with_data_dir(from_dict({**FOLDER, "exp_name": "celeba", "dim_input_x": 128, "dim_input_y": 128}),
                         None, [str(run)]).data_dir == ""  # another data set's record is not ours
    # two runs of one data set that read different folders are not evaluated together
    models = [SimpleNamespace(config=cfg), SimpleNamespace(config=from_dict({**FOLDER, "data_dir": str(tmp_path)}))]
    with pytest.raises(EvaluationError, match="read different data"):
        load_data(models, EvaluationSettings())


@pytest.fixture()
def weights():
    from ladder_tf.evaluation.fid_weights import find_fid_weights

    path = find_fid_weights()
    if path is None:
        pytest.skip("FID Inception weights not converted: run `make fid-weights` (ladder fid-weights)")
    return path


def read_error(capsys, main, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    return line


@pytest.mark.e2e
def test_a_64x64_folder_trains_then_evaluates_and_samples_without_data_dir(tmp_path, pictures, capsys, weights):
    from ladder_tf.commands import fid as fid_cmd
    from ladder_tf.commands import evaluate, sample
    from ladder_tf.commands import train as train_cmd
    from ladder_tf.workflows.trained import load_model

    folder, run = tmp_path / "pictures", tmp_path / "run"
    shutil.copytree(pictures, folder)
    small = ["--set", "num_hidden_units=16", "--set", "code_size=4", "--set", "test_size=8", "--set",
             "batch_size=8", "--set", "test_batch_size=10", "--set", "steps_per_epoch=2"]
    assert train_cmd.main_mnist(["--dataset", "folder", "--data-dir", str(folder), "--out-dir", str(run),
                                 "--prior", "normal", "--epochs", "1", "--no-progress", "--no-export", *small]) == 0
    recorded = json.load(open(run / "config.json"))
    assert (recorded["exp_name"], recorded["data_dir"], recorded["dim_input_x"], recorded["dim_input_y"],
            recorded["celeba_crop"]) == ("folder", str(folder), 64, 64, "none")
    assert recorded["code_size"] == 4 and recorded["representation_size"] == 32  # configs/folder.json
    capsys.readouterr()

    stats_dir, out = tmp_path / "stats", str(tmp_path / "eval")
    assert evaluate.main([str(run), "--features", "fid-inception", "--num-samples", "8", "--repeats", "1",
                          "--save-stats", str(stats_dir), "--cache-dir", str(tmp_path / "cache"),
                          "--no-progress", "--out", out]) == 0
    result = json.load(open(out + ".json"))
    info = result["fid"]["per_dataset"]["folder"]
    assert info["reference_of"] == 24 and info["num_test"] == 8
    assert all(np.isfinite(v) and v > 0 for key in ("generation", "reconstruction", "real")
               for v in result["columns"][0]["fid"][key]["values"])

    # ladder fid-stats on the same images (the training split) gives the statistics evaluate saved
    with np.load(stats_dir / "folder-reference.npz") as f:
        ref_mu, ref_sigma = f["mu"], f["sigma"]
    data = load_run_data(load_config(run / "config.json"))
    train_images = np.round(as_images(data.x_train).floats() * 255).astype(np.uint8)
    np.savez(tmp_path / "train.npz", images=train_images)
    png = tmp_path / "train_png"
    for i, im in enumerate(train_images):
        (png / f"part{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(png / f"part{i % 2}" / f"{i:03d}.png")
    for source in (tmp_path / "train.npz", png):
        target = tmp_path / f"{source.stem}_stats.npz"
        assert fid_cmd.main_stats([str(source), "--out", str(target), "--no-progress"]) == 0
        with np.load(target) as f:
            np.testing.assert_allclose(f["mu"], ref_mu, rtol=0, atol=1e-6)
            np.testing.assert_allclose(f["sigma"], ref_sigma, rtol=0, atol=1e-6)
    capsys.readouterr()

    # ladder sample --what reconstruction reads the recorded folder: the run's own test images
    num = "--num-samples" if "--num-samples" in sample.parser().format_help() else "--num"
    rec = tmp_path / "rec"
    assert sample.main([str(run), num, "3", "--what", "reconstruction", "--reconstruction", "mean",
                        "--out", str(rec)]) == 0
    model = load_model(str(run))
    x = as_images(load_dataset("folder", str(folder), cfg=model.config).x_test)[:3].floats()
    expected = np.round(np.clip(np.asarray(model.reconstruct(x)), 0, 1) * 255).astype(np.uint8)
    written = np.stack([np.asarray(Image.open(rec / f"{i:06d}.png")) for i in range(3)])
    assert written.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(written, expected)

    # the folder moved: one line naming the recorded path; an explicit --data-dir still wins
    moved = tmp_path / "moved"
    folder.rename(moved)
    line = read_error(capsys, sample.main, [str(run), num, "2", "--what", "reconstruction",
                                            "--out", str(tmp_path / "r2.npz")])
    assert str(folder) in line and "no longer exists" in line
    assert sample.main([str(run), num, "2", "--what", "reconstruction", "--out", str(tmp_path / "r2.npz"),
                        "--data-dir", str(moved)]) == 0

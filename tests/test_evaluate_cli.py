"""evaluate.py end to end on a tiny trained run, and its one-line errors on bad input."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ladder_tf.data.mnist import DEBIAN_FASHION_DIR
from ladder_tf.evaluation.report import column_names, output_paths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_FASHION = os.path.isdir(DEBIAN_FASHION_DIR)


def run_cli(*args, env=None):
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, env=full_env, timeout=300)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for f in fragments:
        assert f in errors[0], errors[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A normal-prior run trained for 8 steps on 1,000 Fashion-MNIST images, plus a small
    data folder (1,000 train / 300 test images) that evaluate.py reads with --data-dir."""
    if not HAVE_FASHION:
        pytest.skip(f"Fashion-MNIST not installed at {DEBIAN_FASHION_DIR} "
                    "(apt package dataset-fashion-mnist)")
    from ladder_tf.config import from_dict
    from ladder_tf.data import ImageData, load_dataset
    from ladder_tf.workflows.training import Trainer

    root = tmp_path_factory.mktemp("evalcli")
    full = load_dataset("mnist_fashion", allow_download=False)
    small = ImageData(full.x_train[:1000], full.y_train[:1000], full.x_test[:300], full.y_test[:300], "small")
    data_dir = root / "data"
    data_dir.mkdir()
    np.savez(data_dir / "fashion-mnist.npz", x_train=small.x_train, y_train=small.y_train,
             x_test=small.x_test, y_test=small.y_test)
    cfg = from_dict({"exp_name": "mnist_fashion", "prior": "normal", "code_size": 4,
                     "num_hidden_units": 64, "batch_size": 64, "num_epochs": 1, "steps_per_epoch": 8,
                     "test_batch_size": 20})
    run_dir = root / "run"
    Trainer(cfg, small, str(run_dir), show_progress=False).fit()
    return {"root": root, "run": str(run_dir), "data": str(data_dir)}


@pytest.mark.e2e
def test_classifier_fid_and_nll_tables(tiny_run, capsys):
    import evaluate

    root = tiny_run["root"]
    cache, out = str(root / "cache"), str(root / "out" / "res")
    common = ["--features", "classifier", "--num-samples", "120", "--repeats", "2", "--data-dir",
              tiny_run["data"], "--cache-dir", cache, "--no-progress", "--seed", "3"]
    rc = evaluate.main([tiny_run["run"], *common, "--metrics", "fid,nll", "--nll-images", "6",
                        "--nll-samples", "4", "--out", out])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "training the mnist_fashion feature classifier" in printed
    assert len(glob.glob(os.path.join(cache, "_classifiers", "mnist_fashion", "*", "classifier.json"))) == 1
    result = json.load(open(out + ".json"))
    md = open(out + ".md").read()
    col = result["columns"][0]
    assert col["column"] == "normal" and col["dataset"] == "mnist_fashion"
    rows = col["fid"]
    assert len(rows["generation"]["values"]) == 2
    np.testing.assert_allclose(rows["difference"]["values"],
                               np.subtract(rows["generation"]["values"], rows["reconstruction"]["values"]))
    assert all(v > 0 for key in ("generation", "reconstruction", "real") for v in rows[key]["values"])
    assert rows["real"]["mean"] < rows["generation"]["mean"]
    assert result["fid"]["num_test"] == 120 and result["fid"]["reference_n"] == 1000
    for label in ("Generation", "Reconstruction", "Difference", "Real image", "classifier-FID", "bits/dim"):
        assert label in md and label in printed
    nll = col["nll"]
    assert nll["prior_density"] == "exact" and np.isfinite(nll["log_px_nats"]) and nll["n_images"] == 6

    # a second call reuses the cached classifier and reference statistics; two runs, two columns
    rc = evaluate.main([tiny_run["run"], tiny_run["run"], *common, "--out", out + "2.json"])
    printed = capsys.readouterr().out
    assert rc == 0 and "training the" not in printed
    again = json.load(open(out + "2.json"))
    assert [c["column"] for c in again["columns"]] == ["normal (run) #1", "normal (run) #2"]
    assert again["columns"][0]["fid"]["generation"]["values"] == rows["generation"]["values"]
    assert os.listdir(os.path.join(cache, "_fid_stats"))


@pytest.mark.e2e
def test_saved_model_export_as_input(tiny_run, capsys):
    """An exported SavedModel evaluates like its run (same draws); log p(x) is unsupported."""
    import evaluate
    from ladder_tf.workflows.export import export_checkpoint

    exported = export_checkpoint(tiny_run["run"], str(tiny_run["root"] / "export" / "saved_model"))
    out = str(tiny_run["root"] / "out" / "sm")
    rc = evaluate.main([exported, tiny_run["run"], "--features", "classifier", "--num-samples", "100",
                        "--repeats", "1", "--metrics", "fid,nll", "--nll-images", "4", "--nll-samples", "2",
                        "--data-dir", tiny_run["data"], "--cache-dir", str(tiny_run["root"] / "cache"),
                        "--no-progress", "--out", out])
    assert rc == 0
    cols = json.load(open(out + ".json"))["columns"]
    assert [c["column"] for c in cols] == ["normal (saved_model)", "normal (run)"]
    for row in ("generation", "reconstruction"):
        assert cols[0]["fid"][row]["mean"] == pytest.approx(cols[1]["fid"][row]["mean"], rel=1e-3)
    assert "unsupported" in cols[0]["nll"] and "log_px_nats" in cols[1]["nll"]
    assert "unsupported" in capsys.readouterr().out


def test_unknown_run_dir_and_bad_flags(tmp_path):
    assert_one_line_error(run_cli(str(tmp_path / "nope"), "--features", "classifier"),
                          "no such run directory")
    assert_one_line_error(run_cli(str(tmp_path), "--features", "classifier"), "no config.json")
    assert_one_line_error(run_cli(str(tmp_path), "--metrics", "fid,bogus"), "--metrics")


def main_error(args, capsys):
    """evaluate.main in-process: it must exit 2 with one 'error:' line on stderr."""
    import evaluate

    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(args)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    return lines[0]


def test_missing_checkpoint(tmp_path, capsys):
    from ladder_tf.config import from_dict, save

    save(from_dict({"prior": "normal"}), str(tmp_path / "config.json"))
    assert "no checkpoint" in main_error([str(tmp_path), "--features", "classifier"], capsys)


def test_missing_inception_weights(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    line = main_error([tiny_run["run"], "--features", "inception"], capsys)
    assert "--inception-weights" in line and "--features classifier" in line
    line = main_error([tiny_run["run"], "--inception-weights", str(tmp_path / "w.h5")], capsys)
    assert "no such file" in line and "--features classifier" in line


def test_column_names_and_output_paths():
    assert column_names(["normal", "ladder"], ["a/n", "a/l"]) == ["normal", "ladder"]
    assert column_names(["ladder", "ladder"], ["x/s1", "y/s2"]) == ["ladder (s1)", "ladder (s2)"]
    assert output_paths("res.json") == ("res.json", "res.md")
    assert output_paths("dir/res") == ("dir/res.json", "dir/res.md")


def test_fid_inception_needs_converted_weights(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("LADDER_FID_WEIGHTS", raising=False)
    line = main_error([tiny_run["run"], "--features", "fid-inception"], capsys)
    assert "ladder fid-weights" in line and "--fid-weights" in line
    line = main_error([tiny_run["run"], "--fid-weights", str(tmp_path / "w.npz")], capsys)
    assert "no such file" in line
    assert "--reference-size" in main_error([tiny_run["run"], "--reference-size", "1"], capsys)


@pytest.mark.e2e
def test_standard_fid_table_and_saved_statistics(tiny_run, capsys):
    import evaluate
    from ladder_tf.evaluation.fid_weights import find_fid_weights

    if find_fid_weights() is None:
        pytest.skip("FID Inception weights not converted: run `make fid-weights`")
    root = tiny_run["root"]
    out, stats = str(root / "out" / "std"), root / "stats"
    rc = evaluate.main([tiny_run["run"], "--num-samples", "4", "--repeats", "2", "--reference-size", "5",
                        "--data-dir", tiny_run["data"], "--cache-dir", str(root / "cache"), "--no-progress",
                        "--save-stats", str(stats), "--out", out])
    assert rc == 0
    result, md = json.load(open(out + ".json")), open(out + ".md").read()
    assert result["fid"]["features"] == "fid-inception" and result["fid"]["reference_n"] == 5
    assert "standard FID" in md and "2015-12-05" in md and "z ~ q(z|x)" in md
    rec = result["columns"][0]["fid"]["reconstruction"]["values"]
    assert rec[0] != rec[1]
    names = sorted(os.listdir(stats))
    assert "mnist_fashion-reference.npz" in names and "normal-reconstruction-1.npz" in names
    with np.load(stats / "normal-generation-0.npz") as f:
        assert f["mu"].shape == (2048,) and f["sigma"].shape == (2048, 2048)


@pytest.mark.e2e
def test_sample_cli_writes_uint8_arrays_and_pngs(tiny_run, tmp_path, capsys):
    from PIL import Image

    from ladder_tf.commands import sample
    from ladder_tf.evaluation import fid as fid_lib
    from ladder_tf.workflows.trained import load_model

    assert sample.main([tiny_run["run"], "--num", "5", "--out", str(tmp_path / "g.npz")]) == 0
    with np.load(tmp_path / "g.npz") as f:
        images = f["images"]
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    model = load_model(tiny_run["run"])  # the draws evaluate.py makes for seed 0, repeat 0
    expected = next(fid_lib.generated_batches(model, 5, 500, fid_lib.derive_seed(0, 0, 1))).numpy()
    np.testing.assert_array_equal(images, np.round(np.clip(expected, 0, 1) * 255).astype(np.uint8))
    out = tmp_path / "rec"
    assert sample.main([tiny_run["run"], "--num", "3", "--what", "reconstruction", "--out", str(out),
                        "--data-dir", tiny_run["data"]]) == 0
    names = sorted(os.listdir(out))
    assert names == ["000000.png", "000001.png", "000002.png"]
    assert np.asarray(Image.open(out / names[0])).shape == (28, 28)
    with pytest.raises(SystemExit):
        sample.main([tiny_run["run"], "--num", "0", "--out", str(tmp_path / "x.npz")])


@pytest.mark.e2e
def test_celeba_run_is_evaluated_on_its_own_split(tmp_path, capsys):
    """A CelebA run (lazily read JPEGs) gets standard FID and log p(x) from its own test split:
    the run's ``test_size`` (8 of 24 images), not the default 20,000."""
    import evaluate
    from ladder_tf.data import celeba
    from ladder_tf.evaluation.fid_weights import find_fid_weights
    from synthetic import write_synthetic_folder

    if find_fid_weights() is None:
        pytest.skip("FID Inception weights not converted: run `make fid-weights`")
    folder, run, out = tmp_path / "img_align_celeba", tmp_path / "run", str(tmp_path / "res")
    write_synthetic_folder(str(folder), 24, sizes=((218, 178),))
    train = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train_celeba.py"), "--data-dir", str(folder), "--out-dir",
         str(run), "--prior", "normal", "--epochs", "1", "--no-progress", "--set", "batch_size=8",
         "--set", "num_hidden_units=16", "--set", "code_size=4", "--set", "test_size=8",
         "--set", "test_batch_size=10", "--set", "steps_per_epoch=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert train.returncode == 0, train.stderr[-3000:]
    rc = evaluate.main([str(run), "--features", "fid-inception", "--metrics", "fid,nll", "--num-samples", "4",
                        "--repeats", "2", "--reference-size", "5", "--nll-images", "3", "--nll-samples", "4",
                        "--data-dir", str(folder), "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                        "--out", out])
    assert rc == 0, capsys.readouterr().err
    result = json.load(open(out + ".json"))
    info = result["fid"]["per_dataset"]["celeba"]
    assert info["reference_of"] == 24 - 8 and info["num_test"] == 4
    assert "4 of the 8 test images" in info["sampling"]["real"]
    train_rows, _ = celeba.split_indices(24, 8, seed=celeba.SPLIT_SEED)
    assert len(train_rows) == info["reference_of"]
    col = result["columns"][0]
    assert all(np.isfinite(v) and v > 0 for key in ("generation", "reconstruction", "real")
               for v in col["fid"][key]["values"])
    assert col["nll"]["n_images"] == 3 and np.isfinite(col["nll"]["log_px_nats"])
    # CelebA has no class labels here, so classifier-FID is one clear error, not a meaningless number
    capsys.readouterr()
    line = main_error([str(run), "--features", "classifier", "--data-dir", str(folder), "--cache-dir",
                       str(tmp_path / "cache"), "--no-progress", "--out", out + "-clf"], capsys)
    assert "needs class labels" in line and "fid-inception" in line
    assert not os.path.exists(out + "-clf.json")

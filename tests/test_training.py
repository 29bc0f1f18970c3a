"""The training loop: outputs, resumption, non-finite guard, and real end-to-end runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from ladder_tf.workflows import train as train_workflow
from ladder_tf.workflows import training
from ladder_tf.config import from_dict
from ladder_tf.data.mnist import DEBIAN_FASHION_DIR, keras_cache_path
from ladder_tf.io_utils import read_jsonl
from ladder_tf.workflows.runs import load_run
from ladder_tf.workflows.trained import load_model
from synthetic import synthetic_data

HAVE_FASHION = os.path.isdir(DEBIAN_FASHION_DIR)
HAVE_DIGITS = os.path.isfile(keras_cache_path("mnist_digit"))
TINY = {"prior": "normal", "code_size": 4, "num_hidden_units": 64, "batch_size": 16,
        "num_epochs": 2, "test_batch_size": 20, "checkpoint_every_steps": 3}


def weights(trainer):
    return [v.numpy() for v in trainer.vae.trainable_variables]


def test_run_directory_contents_and_resume_equivalence(tmp_path):
    cfg = from_dict(TINY)
    data = synthetic_data()
    full = training.Trainer(cfg, data, str(tmp_path / "full"), show_progress=False)
    full.fit()

    class Crash(Exception):
        pass

    interrupted = training.Trainer(cfg, data, str(tmp_path / "cut"), show_progress=False)
    original_step = interrupted.train_step
    calls = {"n": 0}

    def crashing_step(*args):
        calls["n"] += 1
        if calls["n"] == 11:  # epoch 2, after the step-9 checkpoint
            raise Crash()
        return original_step(*args)

    interrupted.train_step = crashing_step
    with pytest.raises(Crash):
        interrupted.fit()
    assert [r["epoch"] for r in read_jsonl(tmp_path / "cut" / "metrics.jsonl")] == [1]
    resumed = training.Trainer(cfg, data, str(tmp_path / "cut"), show_progress=False)
    rows = resumed.fit()
    assert int(resumed.step) == 12 and [r["epoch"] for r in rows] == [1, 2]
    for a, b in zip(weights(full), weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # the resumed epoch's train_* metrics cover the whole epoch, as an uninterrupted one's
    full_row, cut_row = read_jsonl(tmp_path / "full" / "metrics.jsonl")[1], rows[1]
    train_keys = [k for k in full_row if k.startswith("train_")]
    assert "train_elbo" in train_keys
    for k in train_keys:
        np.testing.assert_allclose(cut_row[k], full_row[k], rtol=1e-4, atol=1e-4, err_msg=k)

    run = tmp_path / "full"
    for name in ("config.json", "metrics.jsonl", "checkpoints/checkpoint", "figures/losses.png",
                 "figures/reconstructions_e002.png", "figures/samples_e002.png",
                 "figures/ground_truth.png"):
        assert (run / name).exists(), name
    assert any(f.startswith("events.out") for f in os.listdir(run / "tensorboard"))
    row = read_jsonl(run / "metrics.jsonl")[-1]
    for key in ("train_elbo", "train_reconstruction", "train_sigma_term", "train_entropy",
                "train_cross_entropy", "test_elbo", "sigma", "epoch_seconds", "images_per_second"):
        assert np.isfinite(row[key]), key
    np.testing.assert_allclose(row["test_elbo"], row["test_reconstruction"] + row["test_sigma_term"]
                               + row["test_entropy"] + row["test_cross_entropy"], rtol=1e-4)


@pytest.mark.filterwarnings("ignore:epoch .*reconstructions hardly depend")
@pytest.mark.parametrize("accurate_fit", [2, 5])
def test_more_epochs_on_resume_continue_the_same_run(tmp_path, accurate_fit):
    """A finished LaDDer run resumed with a larger ``num_epochs`` ends where a run trained for
    that many epochs at once ends (weights, sigma, the mixture and every epoch's metrics), both
    when the shorter run's last epoch was an accurate-fit epoch anyway (accurate_fit 2) and
    when it was one only because it was the last (accurate_fit 5)."""
    ladder = {**TINY, "prior": "ladder", "steps_per_epoch": 3, "sg_pretraining": 1,
              "representation_size": 2, "n_layers_inner_VAE": 1, "num_hidden_units_inner_VAE": 16,
              "n_mixtures": 3, "n_MC_samples": 4, "fast_fit_samples": 60, "accurate_fit_samples": 60,
              "accurate_fit": accurate_fit, "checkpoint_every_steps": 100}
    data = synthetic_data()
    once = training.Trainer(from_dict({**ladder, "num_epochs": 3}), data, str(tmp_path / "once"),
                            show_progress=False)
    once.fit()
    training.Trainer(from_dict({**ladder, "num_epochs": 2}), data, str(tmp_path / "grown"),
                     show_progress=False).fit()
    grown = training.Trainer(from_dict({**ladder, "num_epochs": 3}), data, str(tmp_path / "grown"),
                             show_progress=False)
    grown.fit()
    prior_variables = list(once.prior.variables)
    assert any("mixture" in v.name or "weight" in v.name for v in prior_variables), \
        [v.name for v in prior_variables]
    for a, b in zip(list(once.vae.trainable_variables) + prior_variables,
                    list(grown.vae.trainable_variables) + list(grown.prior.variables)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=a.name)
    rows_once = read_jsonl(tmp_path / "once" / "metrics.jsonl")
    rows_grown = read_jsonl(tmp_path / "grown" / "metrics.jsonl")
    assert [r["epoch"] for r in rows_grown] == [1, 2, 3]
    for key in ("train_elbo", "test_elbo", "sigma", "test_cross_entropy"):
        np.testing.assert_allclose([r[key] for r in rows_grown], [r[key] for r in rows_once],
                                   rtol=1e-4, atol=1e-4, err_msg=key)


def test_non_finite_step_is_skipped_and_never_checkpointed(tmp_path, monkeypatch):
    cfg = from_dict({**TINY, "checkpoint_every_steps": 2, "num_epochs": 1})
    data = synthetic_data()
    real = training.train_batches

    def poisoned(*args, **kwargs):
        good = real(*args, **kwargs)
        bad = good.take(1).map(lambda x: x * np.nan)
        return good.take(2).concatenate(bad)

    monkeypatch.setattr(training, "train_batches", poisoned)
    trainer = training.Trainer(cfg, data, str(tmp_path), show_progress=False)
    with pytest.raises(training.TrainingDivergedError, match="non-finite loss"):
        trainer.fit()
    assert int(trainer.step) == 2
    assert all(np.all(np.isfinite(w)) for w in weights(trainer))
    run = load_run(str(tmp_path))
    assert run.checkpoint.endswith("ckpt-2")
    assert all(np.all(np.isfinite(v.numpy())) for v in run.vae.trainable_variables)


def test_enormous_finite_weights_are_never_checkpointed(tmp_path):
    """A learning rate of 1e38 gives finite weights of ~1e38 after one step, whose ELBO is not
    finite: nothing of it may be checkpointed, and the message says what was kept."""
    cfg = from_dict({**TINY, "learning_rate_ae": 1e38, "checkpoint_every_steps": 1, "num_epochs": 1})
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    with pytest.raises(training.TrainingDivergedError, match="no checkpoint exists yet") as err:
        trainer.fit()
    assert "not checkpointed" in str(err.value) or "not applied" in str(err.value)
    assert not os.path.exists(tmp_path / "checkpoints" / "checkpoint")
    assert not os.path.exists(tmp_path / "metrics.jsonl")


def test_loaded_run_reproduces_samples(tmp_path):
    cfg = from_dict({**TINY, "num_epochs": 1})
    trainer = training.Trainer(cfg, synthetic_data(), str(tmp_path), show_progress=False)
    trainer.fit()
    run = load_run(str(tmp_path))
    np.testing.assert_allclose(run.generate(5, seed=3), trainer.vae.decode(trainer.prior.sample(5, 3)),
                               rtol=1e-6)


def test_train_exports_after_fit_only_when_something_changed(tmp_path):
    """The train workflow exports what ``fit`` trained; a finished run is exported again only
    when its SavedModel is missing."""
    cfg, data, run = from_dict({**TINY, "num_epochs": 1}), synthetic_data(), str(tmp_path)
    rows = train_workflow.train(cfg, data, run, show_progress=False)
    saved = tmp_path / "saved_model"
    info = json.loads((saved / "assets" / "export_info.json").read_text())
    assert [r["epoch"] for r in rows] == [1] and info["checkpoint"].endswith("ckpt-6")
    np.testing.assert_allclose(tf.saved_model.load(str(saved)).signatures["sample"](
        n=tf.constant(3), seed=tf.constant(2))["images"], load_run(run).generate(3, seed=2), atol=1e-6)
    stamp = (saved / "saved_model.pb").stat().st_mtime_ns
    assert train_workflow.train(cfg, data, run, show_progress=False) == rows  # nothing to train
    assert (saved / "saved_model.pb").stat().st_mtime_ns == stamp
    shutil.rmtree(saved)
    train_workflow.train(cfg, data, run, show_progress=False, export=False)
    assert not saved.exists()
    train_workflow.train(cfg, data, run, show_progress=False)
    assert (saved / "saved_model.pb").exists()


@pytest.mark.e2e
@pytest.mark.skipif(not HAVE_FASHION, reason="Debian dataset-fashion-mnist not installed")
def test_cli_end_to_end_on_real_fashion_mnist(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "train_mnist.py", "--prior", "normal", "--epochs", "3", "--train-size", "512",
           "--out-dir", str(out), "--no-progress", "--no-download", "--set", "batch_size=64",
           "--set", "num_hidden_units=64", "--seed", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_elbo"] > rows[0]["train_elbo"] + 20  # the loss went down
    assert rows[-1]["test_elbo"] > rows[0]["test_elbo"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train_size"] == 512 and cfg["prior"] == "normal"
    assert tf.train.latest_checkpoint(str(out / "checkpoints"))
    assert (out / "figures" / "samples_e003.png").exists()
    assert (out / "saved_model" / "saved_model.pb").exists()


@pytest.mark.e2e
@pytest.mark.skipif(not HAVE_DIGITS, reason="MNIST digits not fetched (`ladder data mnist_digit`)")
def test_a_short_digits_run_shows_digits(tmp_path):
    """The shipped digits network, 250 steps: reconstructions follow the images and samples are
    not black. (With the paper's sigmoid output the decoder saturates at black within the
    first epoch and stays there: reconstruction spread 0.01, every image the same.)"""
    out = tmp_path / "run"
    cmd = [sys.executable, "train_mnist.py", "--dataset", "mnist_digit", "--prior", "normal", "--epochs", "1",
           "--train-size", "16000", "--set", "batch_size=64", "--out-dir", str(out), "--no-progress",
           "--no-download", "--no-export"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hardly depend on the image" not in proc.stderr
    row = read_jsonl(out / "metrics.jsonl")[-1]
    assert row["step"] == 250 and row["test_batch_spread"] > 0.2, row
    model = load_model(str(out))
    with np.load(keras_cache_path("mnist_digit")) as f:
        images = f["x_test"][:500, ..., None].astype(np.float32) / 255.0
    samples = model.generate(500, seed=0).numpy()
    assert samples.mean() > 0.4 * images.mean()  # a black decoder gives about 0
    recon = model.reconstruct(tf.constant(images)).numpy()
    black_error = np.abs(images).mean()
    assert np.abs(recon - images).mean() < 0.8 * black_error


@pytest.mark.e2e
@pytest.mark.skipif(not HAVE_FASHION, reason="Debian dataset-fashion-mnist not installed")
def test_killed_run_resumes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "train_mnist.py", "--prior", "normal", "--epochs", "2", "--train-size", "1280",
           "--out-dir", str(out), "--no-progress", "--no-download", "--set", "batch_size=32",
           "--set", "num_hidden_units=64", "--set", "checkpoint_every_steps=5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not tf.train.latest_checkpoint(str(out / "checkpoints")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    killed_at = int(latest.rsplit("-", 1)[1])
    assert 0 < killed_at < 80  # killed mid-run, after at least one step checkpoint
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resuming from step {killed_at}" in done.stdout
    rows = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[-1]["step"] == 80

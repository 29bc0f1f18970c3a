"""SavedModel export (issue 7): every signature loaded in a fresh Python that cannot import
ladder_tf, checked against the in-process model; atomic replacement; the loader adapter."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from ladder_tf import config as config_lib
from ladder_tf.commands import export as export_cmd
from ladder_tf.workflows import export
from ladder_tf.config import from_dict
from ladder_tf.model.interpolation import path_space
from ladder_tf.model.trained import TrainedModel
from ladder_tf.workflows.runs import Run, load_run
from ladder_tf.workflows.saved_model import SavedModelRun, is_saved_model, load_saved_model
from ladder_tf.workflows.build import build_model, make_checkpoint

PRIORS = ("normal", "gmm", "vampprior", "hierarchical", "ladder")
TINY = {"exp_name": "mnist_digit", "num_hidden_units": 64, "batch_size": 8, "n_mixtures": 3,
        "n_MC_samples": 4, "test_batch_size": 10, "code_size": 3, "representation_size": 2,
        "n_layers_inner_VAE": 1, "num_hidden_units_inner_VAE": 16}
N, SEED = 5, 11
IS_SAMPLES = 25  # importance samples of log_prob_z_estimate: more than one chunk of 10, not a multiple
COMMON = {"encode", "decode", "reconstruct", "sample"}
T_SIGNATURES = {"encode_t", "decode_t", "log_prob_t", "log_prob_z_estimate"}

# Runs in a fresh interpreter whose cwd and sys.path cannot reach ladder_tf.
LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import tensorflow as tf
    assert importlib.util.find_spec("ladder_tf") is None, "ladder_tf must not be importable here"
    manifest = json.load(open(sys.argv[1]))
    inputs = dict(np.load(manifest["inputs"]))
    for prior, path in manifest["models"].items():
        m = tf.saved_model.load(path)
        sig, out = m.signatures, {}
        x, z, t = (tf.constant(inputs[k]) for k in ("x", "z_" + prior, "t"))
        feeds = {"encode": dict(images=x), "serving_default": dict(images=x),
                 "reconstruct": dict(images=x), "decode": dict(z=z),
                 "log_prob_z": dict(z=z), "encode_t": dict(z=z), "decode_t": dict(t=t),
                 "log_prob_t": dict(t=t),
                 "log_prob_z_estimate": dict(z=z, n_samples=tf.constant(%d), seed=tf.constant(%d)),
                 "sample": dict(n=tf.constant(%d), seed=tf.constant(%d))}
        for name in sig.keys():
            for key, value in sig[name](**feeds[name]).items():
                out[name + "/" + key] = value.numpy()
        again = sig["sample"](n=tf.constant(%d), seed=tf.constant(%d))["images"].numpy()
        other = sig["sample"](n=tf.constant(%d), seed=tf.constant(%d))["images"].numpy()
        out["check/sample_repeat_equal"] = np.array(np.array_equal(again, out["sample/images"]))
        out["check/other_seed_differs"] = np.array(not np.allclose(other, out["sample/images"]))
        out["check/config_asset"] = np.array(open(m.config_asset.asset_path.numpy().decode()).read())
        np.savez(manifest["outputs"][prior], **out)
    print("ladder_tf" in sys.modules)
""" % (IS_SAMPLES, SEED, N, SEED, N, SEED, N, SEED + 1))


def tiny(prior):
    return from_dict({**TINY, "prior": prior})


def fitted_model(prior):
    """A freshly initialised (vae, prior) whose mixtures were fitted to synthetic clusters."""
    cfg = tiny(prior)
    vae, p = build_model(cfg)
    rng = np.random.default_rng(0)
    dim = cfg.representation_size if prior == "ladder" else cfg.code_size
    pts = np.concatenate([rng.normal(-2, 0.4, (150, dim)), rng.normal(2, 0.4, (150, dim))]).astype(np.float32)
    if prior == "gmm":
        p.mixture.fit(pts)
    if prior == "ladder":
        p.fast.fit(pts)
        p.accurate.fit(pts + 1.0)  # differs from the fast fit: export must use the accurate one
        p.has_accurate.assign(True)
    return cfg, vae, p


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every prior: a run directory with a checkpoint, its export, reference inputs."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(1)
    inputs = {"x": rng.random((4, 28, 28, 1)).astype(np.float32),
              "t": rng.normal(size=(6, 2)).astype(np.float32)}
    models = {}
    for prior in PRIORS:
        cfg, vae, p = fitted_model(prior)
        run_dir = str(root / prior)
        config_lib.save(cfg, os.path.join(run_dir, "config.json"))
        ckpt = make_checkpoint(vae, p).save(os.path.join(run_dir, "checkpoints", "ckpt"))
        if prior == "ladder":  # through the CLI, default --out
            assert export_cmd.main([run_dir]) == 0
        else:
            export.export_run(vae, p, cfg, os.path.join(run_dir, "saved_model"), checkpoint=ckpt)
        inputs[f"z_{prior}"] = rng.normal(size=(6, cfg.code_size)).astype(np.float32)
        models[prior] = Run(cfg, vae, p, run_dir, ckpt)
    return root, models, inputs


@pytest.fixture(scope="module")
def fresh_outputs(exported):
    """Run LOADER once for all priors in a subprocess without ladder_tf on its path."""
    root, models, inputs = exported
    np.savez(root / "inputs.npz", **inputs)
    manifest = {"inputs": str(root / "inputs.npz"),
                "models": {p: os.path.join(m.run_dir, "saved_model") for p, m in models.items()},
                "outputs": {p: str(root / f"out_{p}.npz") for p in models}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # -S: no .pth files, so not even an installed (editable) ladder_tf is reachable
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if os.path.basename(p) == "site-packages")
    proc = subprocess.run([sys.executable, "-S", "-c", LOADER, str(root / "manifest.json")], cwd=str(root),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"  # ladder_tf never imported
    return {p: dict(np.load(manifest["outputs"][p])) for p in models}


@pytest.mark.slow
@pytest.mark.parametrize("prior", PRIORS)
def test_fresh_process_signatures_agree_with_the_model(exported, fresh_outputs, prior):
    _, models, inputs = exported
    run, out = models[prior], fresh_outputs[prior]
    vae, p, cfg = run.vae, run.prior, run.config
    x, z, t = inputs["x"], inputs[f"z_{prior}"], inputs["t"]
    expected = COMMON | {"serving_default"}
    expected |= {"log_prob_z"} if prior in ("normal", "gmm", "vampprior") else set()
    expected |= T_SIGNATURES if prior in ("hierarchical", "ladder") else set()
    assert {k.split("/")[0] for k in out if not k.startswith("check/")} == expected
    # shapes
    assert out["encode/mean"].shape == out["encode/std"].shape == (4, cfg.code_size)
    assert out["reconstruct/images"].shape == out["decode/images"][:4].shape == (4, 28, 28, 1)
    assert out["decode/images"].shape == (6, 28, 28, 1)
    assert out["sample/images"].shape == (N, 28, 28, 1) and out["sample/z"].shape == (N, cfg.code_size)
    # values against the in-process model
    mean, std = vae.encode(tf.constant(x))
    np.testing.assert_allclose(out["encode/mean"], mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(out["encode/std"], std.numpy(), atol=1e-5)
    for key in ("mean", "std"):  # serving_default is encode
        np.testing.assert_array_equal(out[f"serving_default/{key}"], out[f"encode/{key}"])
    np.testing.assert_allclose(out["decode/images"], vae.decode(tf.constant(z)).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["reconstruct/images"], run.reconstruct(tf.constant(x)).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["sample/z"], p.sample(N, SEED).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["sample/images"], run.generate(N, SEED).numpy(), atol=1e-5)
    assert out["check/sample_repeat_equal"] and out["check/other_seed_differs"]
    assert config_lib.from_dict(json.loads(str(out["check/config_asset"]))) == cfg
    if "log_prob_z" in expected:
        np.testing.assert_allclose(out["log_prob_z/log_prob"], p.log_prob(tf.constant(z)).numpy(), rtol=1e-5)
        if prior == "normal":
            ref = scipy.stats.multivariate_normal(np.zeros(cfg.code_size)).logpdf(z)
            np.testing.assert_allclose(out["log_prob_z/log_prob"], ref, rtol=1e-5)
    if prior in ("hierarchical", "ladder"):  # the in-process estimator, same draws
        estimate = out["log_prob_z_estimate/log_prob_estimate"]
        assert estimate.shape == (6,) and "log_prob_z" not in out
        np.testing.assert_allclose(estimate, p.log_prob_estimate(tf.constant(z), IS_SAMPLES, SEED).numpy(),
                                   rtol=1e-5, atol=1e-4)
        other = p.log_prob_estimate(tf.constant(z), IS_SAMPLES, SEED + 1).numpy()
        assert not np.allclose(estimate, other)  # the seed is an input, not baked in
        t_mean, t_std = p.encode(tf.constant(z))
        assert out["encode_t/mean"].shape == (6, 2) and out["decode_t/z"].shape == (6, cfg.code_size)
        np.testing.assert_allclose(out["encode_t/mean"], t_mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(out["encode_t/std"], t_std.numpy(), atol=1e-5)
        np.testing.assert_allclose(out["decode_t/z"], p.decode(tf.constant(t)).numpy(), atol=1e-5)
        if prior == "ladder":  # independent reference: scipy on the accurate fit's parameters
            m = p.accurate
            parts = [np.log(w) + scipy.stats.multivariate_normal(mu, c).logpdf(t)
                     for w, mu, c in zip(m.weights.numpy(), m.means.numpy(), m.covariances.numpy())]
            ref = np.logaddexp.reduce(np.stack(parts), axis=0)
        else:
            ref = scipy.stats.multivariate_normal(np.zeros(2)).logpdf(t)
        assert out["log_prob_t/log_prob"].shape == (6,)
        np.testing.assert_allclose(out["log_prob_t/log_prob"], ref, rtol=1e-4, atol=1e-4)


def test_export_info_and_cli_default_location(exported):
    _, models, _ = exported
    path = os.path.join(models["ladder"].run_dir, "saved_model")
    with open(os.path.join(path, "assets", export.INFO_ASSET)) as fh:
        info = json.load(fh)
    assert info["prior"] == "ladder" and info["hyper_prior"] == "accurate"
    assert info["checkpoint"] == models["ladder"].checkpoint
    assert set(info["signatures"]) == COMMON | T_SIGNATURES
    assert info["serving_default"] == export.SERVING_DEFAULT == "encode"
    leftovers = [n for n in os.listdir(models["ladder"].run_dir) if n.startswith(".")]
    assert leftovers == []


def test_interrupted_export_keeps_the_previous_model(exported, monkeypatch):
    _, models, _ = exported
    run = models["normal"]
    out_dir = os.path.join(run.run_dir, "saved_model")
    before = load_saved_model(out_dir).generate(3, 0).numpy()
    real_save = tf.saved_model.save

    def crash(module, path, signatures=None):
        real_save(module, path, signatures=signatures)
        os.remove(os.path.join(path, "saved_model.pb"))  # half-written, then interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(run.vae, run.prior, run.config, out_dir)
    assert sorted(os.listdir(run.run_dir)) == ["checkpoints", "config.json", "saved_model"]
    np.testing.assert_array_equal(load_saved_model(out_dir).generate(3, 0).numpy(), before)


def test_loader_adapter_has_the_run_surface(exported):
    _, models, inputs = exported
    run = models["ladder"]
    path = os.path.join(run.run_dir, "saved_model")
    assert is_saved_model(path) and not is_saved_model(run.run_dir)
    sm = load_saved_model(path)
    assert isinstance(sm, SavedModelRun) and sm.name == run.name == "ladder"
    assert sm.config == run.config and sm.has_t_space and run.has_t_space
    assert isinstance(sm, TrainedModel) and isinstance(run, TrainedModel)  # the one surface
    assert (sm.has_density, sm.density_is_estimate) == (run.has_density, run.density_is_estimate) == (True, True)
    z = inputs["z_ladder"]
    np.testing.assert_allclose(sm.log_prob_z_estimate(z.reshape(2, 3, -1), 40, 5).numpy().reshape(-1),
                               run.log_prob_z_estimate(tf.constant(z), 40, 5).numpy(), rtol=1e-5, atol=1e-4)
    assert sm.sigma is None and float(run.sigma) == float(run.vae.sigma)
    x = inputs["x"]
    np.testing.assert_allclose(sm.reconstruct(x).numpy(), run.reconstruct(tf.constant(x)).numpy(), atol=1e-5)
    np.testing.assert_allclose(sm.generate(7, 3).numpy(), run.generate(7, 3).numpy(), atol=1e-5)
    # the interpolation path space is the same through either door
    a, b = path_space(sm), path_space(run)
    np.testing.assert_allclose(a.embed(tf.constant(x), 5).numpy(), b.embed(tf.constant(x), 5).numpy(), atol=1e-5)
    grid = tf.constant(inputs["t"].reshape(2, 3, 2))
    np.testing.assert_allclose(a.log_prob(grid).numpy(), b.log_prob(grid).numpy(), rtol=1e-5)
    with pytest.raises(NotImplementedError, match="log_prob_z"):
        sm.log_prob_z(inputs["z_ladder"])
    with pytest.raises(FileNotFoundError):
        load_saved_model(run.run_dir)


def test_restored_run_exports_the_same_model(exported, tmp_path):
    """The CLI path: load_run on the checkpoint, export to --out, same samples."""
    _, models, _ = exported
    run = models["gmm"]
    out = str(tmp_path / "elsewhere")
    assert export_cmd.main([run.run_dir, "--out", out]) == 0
    restored = load_run(run.run_dir)
    np.testing.assert_allclose(load_saved_model(out).generate(4, 2).numpy(),
                               restored.generate(4, 2).numpy(), atol=1e-5)
    np.testing.assert_allclose(load_saved_model(out).generate(4, 2).numpy(),
                               run.generate(4, 2).numpy(), atol=1e-5)


def test_serving_layout_and_saved_model_cli(exported, tmp_path, capsys):
    """--model-version writes TensorFlow Serving's numbered folders; TensorFlow's own
    saved_model_cli runs serving_default on one as the README shows."""
    _, models, inputs = exported
    run, base = models["normal"], str(tmp_path / "models" / "normal")
    for _ in range(2):
        assert export_cmd.main([run.run_dir, "--out", base, "--model-version", "next"]) == 0
    assert sorted(os.listdir(base)) == ["1", "2"]
    for bad in (["--out", base, "--model-version", "2"], ["--out", base, "--model-version", "0"],
                ["--model-version", "next"]):
        with pytest.raises(SystemExit) as exc:
            export_cmd.main([run.run_dir, *bad])
        assert exc.value.code == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") for e in errors), errors
    cli_tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli_tool):
        pytest.skip("saved_model_cli is not installed beside this Python")
    np.save(tmp_path / "images.npy", inputs["x"])
    proc = subprocess.run([cli_tool, "run", "--dir", os.path.join(base, "2"), "--tag_set", "serve",
                           "--signature_def", "serving_default", "--inputs", "images=images.npy",
                           "--outdir", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    mean, std = run.vae.encode(tf.constant(inputs["x"]))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "mean.npy"), mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "std.npy"), std.numpy(), atol=1e-5)

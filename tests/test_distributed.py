"""Multi-device training: a mirrored step equals a single-device step; two loopback workers train.

Logical devices must be configured before TensorFlow initialises, and a multi-worker
strategy needs its own processes, so both checks run in subprocesses.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ladder_tf import distributed
from ladder_tf.data import epoch_order
from ladder_tf.io_utils import read_jsonl
from synthetic import write_synthetic_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}

MIRRORED_SCRIPT = textwrap.dedent('''
    import json, os, sys, tempfile
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras as keras
    from ladder_tf import distributed
    from ladder_tf.workflows import training
    from ladder_tf.config import from_dict
    from ladder_tf.data import ImageData

    out = {}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    tmp = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    # Binary images keep every |x - x_hat| far from its kink; sigma starts above the batch's
    # mean error, so its floor (a per-replica batch statistic) is inactive; a posterior std
    # pinned at 1e-10 makes z = mean, so the replicas' independent noise cannot matter.
    x = (rng.random((16, 28, 28, 1)) < 0.3).astype(np.uint8) * 255
    data = ImageData(x, np.arange(16) % 10, x[:10], np.arange(10), "synthetic")
    cfg = from_dict({"prior": "normal", "code_size": 4, "num_hidden_units": 64, "batch_size": 16,
                     "latent_variance_precision": 1e-10, "sigma": 1.0})

    def make(strat, name, opt):
        mode = "fused" if opt.endswith("fused") else "sequential"
        tr = training.Trainer(from_dict({**cfg.to_dict(), "block_update": mode}), data,
                              os.path.join(tmp, name), show_progress=False, strategy=strat)
        if opt == "sgd":  # plain SGD shows the gradient itself (Adam's first step is ~ lr * sign)
            with tr.strategy.scope():
                tr.opt_vae, tr.opt_sigma = keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05)
        head = tr.vae.encoder.get_layer("q_z").std_layer
        head.kernel.assign(tf.zeros_like(head.kernel))
        head.bias.assign(-tf.ones_like(head.bias))
        tr.restore()
        tr.begin_epoch(1)
        return tr

    for opt in ("sgd", "adam", "adam_fused"):
        single, mirrored = make(None, "single" + opt, opt), make(strategy, "mirrored" + opt, opt)
        before = [v.numpy() for v in single.vae.trainable_variables]
        out["same_init"] = all(np.array_equal(a.numpy(), b.numpy()) for a, b in
                               zip(single.vae.variables, mirrored.vae.variables))
        global_batch = next(iter(training.epoch_batches(data.x_train, single.cfg, None, 1, 0, 1)))
        shares = next(iter(training.epoch_batches(data.x_train, mirrored.cfg, strategy, 1, 0, 1)))
        local = [t.numpy() for t in strategy.experimental_local_results(shares)]
        out["split_ok"] = [a.shape[0] for a in local] == [8, 8] and np.array_equal(
            np.concatenate(local), global_batch.numpy())
        seed = tf.constant([3, 0], tf.int64)
        a, b = single.train_step(global_batch, seed), mirrored.train_step(shares, seed)
        out[opt + "_elbo"] = [float(a["elbo"]), float(b["elbo"])]
        rel = []
        for b0, va, vb in zip(before, single.vae.trainable_variables, mirrored.vae.trainable_variables):
            components = [c.numpy() for c in strategy.experimental_local_results(vb)]
            assert all(np.array_equal(components[0], c) for c in components[1:])
            d1, d2 = va.numpy() - b0, components[0] - b0
            rel.append(float(np.linalg.norm(d1 - d2) / max(np.linalg.norm(d1), 1e-30)))
            out.setdefault(opt + "_moved", []).append(float(np.linalg.norm(d1)))
        out[opt + "_max_rel_err"] = max(rel)

    # replica noise streams differ; broadcast makes replica 0's value everyone's
    seeds = strategy.run(tf.function(lambda: tf.random.stateless_normal(
        [3], distributed.replica_seed(tf.constant([5, 6], tf.int64)))))
    n0, n1 = [t.numpy() for t in strategy.experimental_local_results(seeds)]
    out["replica_noise_differs"] = not np.allclose(n0, n1)
    with strategy.scope():
        flag, table = tf.Variable(False), tf.Variable(tf.zeros([2, 3], tf.float64))
    flag.values[0].assign(True); table.values[0].assign(tf.ones([2, 3], tf.float64) * 7)
    table.values[1].assign(tf.ones([2, 3], tf.float64) * -1)
    distributed.broadcast_from_chief(strategy, [flag, table])
    out["broadcast"] = [bool(v.numpy()) for v in flag.values] + [float(v.numpy().mean()) for v in table.values]

    # a whole mirrored epoch of the LaDDer prior: its own step, the refit, checkpoints
    cfg = from_dict({"prior": "ladder", "code_size": 4, "num_hidden_units": 64, "batch_size": 16,
                     "num_epochs": 1, "sg_pretraining": 1, "representation_size": 2, "n_mixtures": 3,
                     "n_MC_samples": 4, "num_hidden_units_inner_VAE": 16, "n_layers_inner_VAE": 2,
                     "fast_fit_samples": 48, "accurate_fit_samples": 48, "test_batch_size": 10})
    x = rng.integers(0, 256, (48, 28, 28, 1), dtype=np.uint8)
    run = os.path.join(tmp, "ladder")
    trainer = training.Trainer(cfg, ImageData(x, np.arange(48) % 10, x[:10], np.arange(10), "s"), run,
                               show_progress=False, strategy=strategy)
    row = trainer.fit()[-1]
    out["ladder_row"] = {k: row[k] for k in ("train_elbo", "test_elbo", "fast_fit_samples",
                                             "train_prior_objective", "step")}
    out["ladder_checkpoint"] = bool(tf.train.latest_checkpoint(os.path.join(run, "checkpoints")))
    out["ladder_replicas_agree"] = all(
        all(np.array_equal(c.numpy(), v.values[0].numpy()) for c in v.values)
        for v in trainer.prior.variables + trainer.vae.variables)
    print("RESULT " + json.dumps(out))
''')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def result_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_epoch_order_shares_rebuild_the_global_batches():
    full = epoch_order(50, 8, seed=1, epoch=3, skip_batches=1)
    assert full.shape == (5, 8) and len(set(full.ravel())) == 40
    # 2 pipelines x 2 local replicas (a 2-worker cluster with 2 GPUs each): per-replica rows
    parts = [epoch_order(50, 8, 1, 3, 1, replicas=4, pipeline=p, pipelines=2) for p in (0, 1)]
    assert all(p.shape == (10, 2) for p in parts)
    rebuilt = np.concatenate([p.reshape(5, 4) for p in parts], axis=1)  # replicas 0,1 | 2,3
    np.testing.assert_array_equal(rebuilt, full)
    assert distributed.is_chief(None) and distributed.is_default(None)


@pytest.mark.slow
def test_mirrored_step_matches_single_device_on_two_logical_cpus(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    out = result_of(subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                                   timeout=240, env=ENV, cwd=ROOT))
    assert out["same_init"] and out["split_ok"]
    for opt in ("sgd", "adam", "adam_fused"):
        np.testing.assert_allclose(*out[opt + "_elbo"], rtol=1e-6)
        assert sum(m == 0 for m in out[opt + "_moved"]) == 2  # all but the pinned std head moved
        assert out[opt + "_max_rel_err"] < 1e-5, out
    assert out["replica_noise_differs"]
    assert out["broadcast"] == [True, True, 7.0, 7.0]
    row = out["ladder_row"]
    assert row["step"] == 3 and row["fast_fit_samples"] == 48
    assert all(np.isfinite(v) for v in row.values())
    assert out["ladder_checkpoint"] and out["ladder_replicas_agree"]


@pytest.mark.slow
@pytest.mark.e2e
def test_two_loopback_workers_train_to_the_end(tmp_path):
    folder, run = tmp_path / "img_align_celeba", tmp_path / "run"
    write_synthetic_folder(str(folder), 24, sizes=((218, 178), (96, 80)))
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = [sys.executable, "train_celeba.py", "--data-dir", str(folder), "--out-dir", str(run),
            "--prior", "normal", "--epochs", "1", "--strategy", "multiworker", "--no-progress",
            "--set", "batch_size=8", "--set", "num_hidden_units=16", "--set", "code_size=4",
            "--set", "test_size=8", "--set", "test_batch_size=10", "--set", "steps_per_epoch=2"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**ENV, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                   "task": {"type": "worker", "index": i}})})
             for i in range(2)]
    try:
        outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    chief_out, worker_out = outputs[0][0], outputs[1][0]
    assert "with 2 replicas" in chief_out and "done: epoch 1" in chief_out
    assert "done" not in worker_out  # only the chief reports and writes
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1] and rows[-1]["step"] == 2
    assert all(np.isfinite(r["train_elbo"]) and np.isfinite(r["test_elbo"]) for r in rows)
    assert (run / "checkpoints" / "checkpoint").exists() and (run / "figures" / "samples_e001.png").exists()

"""Fixed-seed training runs against stored results: the guard of structural refactors.

Two tiny runs (the LaDDer prior: standard-normal pre-training, the prior VAE's own steps,
fast and accurate mixture refits; the GMM prior with d_z = 2: EM refits and its density
figure) must reproduce, to a tolerance just above the run-to-run variation, the per-epoch
metrics rows, the names of the files the run writes and the mixture parameters saved at
its last epoch, all stored in tests/fixtures/fixed_seed_metrics.json.

A change that is meant to change results regenerates the fixture (and says so in its
commit message):

    python tests/test_fixed_seed_metrics.py      # from the repository root
"""
import json
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "fixed_seed_metrics.json")
RTOL, ATOL = 1e-5, 1e-7  # two runs of the same code agree bit for bit on this machine
TIMING_WORD = "second"  # in the keys of wall-clock measurements (refit_seconds, images_per_second...)
# the run's own records whose content holds times, hosts or versions (names are still compared)
UNCOMPARED_DIRS = ("tensorboard",)

RUNS = {
    "ladder": {"prior": "ladder", "code_size": 4, "representation_size": 2, "n_layers_inner_VAE": 2,
               "num_hidden_units_inner_VAE": 32, "n_MC_samples": 8, "n_mixtures": 5,
               "num_hidden_units": 64, "batch_size": 16, "num_epochs": 3, "sg_pretraining": 2,
               "accurate_fit": 2, "use_mask_start": 3, "fast_fit_samples": 100,
               "accurate_fit_samples": 150, "fast_fit_max_iter": 100, "accurate_fit_max_iter": 150,
               "test_batch_size": 20, "checkpoint_every_steps": 4, "seed": 3},
    "gmm": {"prior": "gmm", "code_size": 2, "n_mixtures": 3, "n_MC_samples": 8, "num_hidden_units": 64,
            "batch_size": 16, "num_epochs": 2, "fast_fit_samples": 100, "accurate_fit_samples": 150,
            "fast_fit_max_iter": 50, "accurate_fit_max_iter": 80, "test_batch_size": 20,
            "checkpoint_every_steps": 4, "seed": 5},
}


def run_and_summarise(name: str, run_dir: str) -> dict:
    """Train RUNS[name] on the synthetic squares into ``run_dir``; what the fixture holds:
    {"rows": metrics rows without timings, "files": the run directory's files (tensorboard's
    event files as one entry), "mixture": the last epoch's mixture .npz arrays as lists}."""
    from ladder_tf.config import from_dict
    from ladder_tf.workflows.training import Trainer
    from synthetic import synthetic_data

    cfg = from_dict(RUNS[name])
    rows = Trainer(cfg, synthetic_data(n_train=96, n_test=40, seed=1), run_dir, show_progress=False).fit()
    rows = [{k: v for k, v in row.items() if TIMING_WORD not in k} for row in rows]
    files = set()
    for directory, _, names in os.walk(run_dir):
        rel = os.path.relpath(directory, run_dir)
        if rel.split(os.sep)[0] in UNCOMPARED_DIRS:
            files.add(rel.split(os.sep)[0] + "/")
            continue
        files.update(os.path.normpath(os.path.join(rel, n)).replace(os.sep, "/") for n in names)
    with np.load(os.path.join(run_dir, "mixture", f"mixture_e{cfg.num_epochs:03d}.npz")) as npz:
        mixture = {k: npz[k].tolist() for k in sorted(npz.files)}
    return {"rows": rows, "files": sorted(files), "mixture": mixture}


def assert_close(got, want, where: str) -> None:
    """Numbers within RTOL/ATOL, everything else (keys, names, flags) equal."""
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), f"{where}: keys differ"
        for k in want:
            assert_close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: lengths differ"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) or isinstance(got, float):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=where)
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RUNS))
def test_fixed_seed_run_reproduces_the_stored_results(name, tmp_path):
    with open(FIXTURE, encoding="utf-8") as fh:
        stored = json.load(fh)
    assert stored["configs"][name] == RUNS[name], "RUNS changed: regenerate the fixture"
    assert_close(run_and_summarise(name, str(tmp_path)), stored["runs"][name], name)


def regenerate() -> None:
    """Write FIXTURE from runs of the current code."""
    import tempfile

    runs = {}
    for name in sorted(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            runs[name] = run_and_summarise(name, tmp)
    with open(FIXTURE, "w", encoding="utf-8") as fh:
        json.dump({"configs": RUNS, "runs": runs}, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's ladder_tf and tests/synthetic.py
    regenerate()

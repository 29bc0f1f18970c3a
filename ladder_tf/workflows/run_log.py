"""What a training run tells its reader, besides its figures and checkpoints.

- the console: one line per epoch (also without a progress bar, the form batch jobs log):
  epoch, train and test -ELBO, sigma, active mixture components where there are any, seconds;
- TensorBoard (``RUN_DIR/tensorboard``): every ``train_<x>`` and ``test_<x>`` metric under the
  same tag ``<x>`` in the run folders ``train/`` and ``test/``, so the two curves overlay;
  the other scalars and the image grids in the top folder, which also holds the config as
  the HParams view's hyper-parameters (its ``train``/``test`` folders are the metric groups);
- ``RUN_DIR/run_record.json``: one entry per invocation (a resumed run adds one) with the
  command line, working directory, package versions, git commit, start and end times and
  how it ended.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from typing import Any

import numpy as np
import tensorflow as tf

from ladder_tf import figures
from ladder_tf.config import Config
from ladder_tf.io_utils import atomic_write_text

RECORD_FILE = "run_record.json"
TENSORBOARD_DIR = "tensorboard"
SPLITS = ("train", "test")
PACKAGES = ("tensorflow", "tensorflow-probability", "tf-keras", "tensorboard",
            "numpy", "scipy")
COMPONENT_KEYS = (("fast", "fast_fit_active_components"),
                  ("accurate", "accurate_fit_active_components"))


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Python's, this package's and the installed dependencies' versions (None: not installed)."""
    from ladder_tf import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "ladder_tf": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(directory: str) -> dict[str, Any] | None:
    """{commit, dirty} of the git checkout holding ``directory``; None outside one (an
    installed package) or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def console_line(row: dict[str, Any], num_epochs: int) -> str:
    """The epoch's one console line, e.g.
    ``epoch 3/50  train -ELBO -712.31  test -ELBO -715.30  sigma 0.0712  components fast 8,
    accurate 31  46.0 s``."""
    parts = [f"epoch {row['epoch']}/{num_epochs}"]
    for split in SPLITS:
        if f"{split}_elbo" in row:
            parts.append(f"{split} -ELBO {-row[f'{split}_elbo']:.2f}")
    if "sigma" in row:
        parts.append(f"sigma {row['sigma']:.4f}")
    components = [f"{name} {int(row[key])}" for name, key in COMPONENT_KEYS if key in row]
    if components:
        parts.append("components " + ", ".join(components))
    if "epoch_seconds" in row:
        parts.append(f"{row['epoch_seconds']:.1f} s")
    return "  ".join(parts)


def _hparam_value(value: Any) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


class RunLog:
    """The console lines, TensorBoard summaries and run record of one Trainer.

    ``chief``: whether this process reports (prints, records); summaries go to ``out_dir``
    on every worker, as the Trainer's other outputs do (a non-chief's is a scratch folder).
    """

    def __init__(self, out_dir: str, cfg: Config, chief: bool = True):
        self.out_dir, self.cfg, self.chief = out_dir, cfg, chief
        self._writers: dict[str, tf.summary.SummaryWriter] | None = None
        self.record_path = os.path.join(out_dir, RECORD_FILE)

    @property
    def writers(self) -> dict[str, tf.summary.SummaryWriter]:
        """TensorBoard writers ('' for the run's own folder, one per split), created on first
        use, so a run refused before training writes no event file."""
        if self._writers is None:
            root = os.path.join(self.out_dir, TENSORBOARD_DIR)
            self._writers = {"": tf.summary.create_file_writer(root)}
            self._writers.update({s: tf.summary.create_file_writer(os.path.join(root, s)) for s in SPLITS})
        return self._writers

    # -- run record ---------------------------------------------------------------------
    def _sessions(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.record_path):
            return []
        try:
            with open(self.record_path, encoding="utf-8") as fh:
                return list(json.load(fh).get("sessions", []))
        except (json.JSONDecodeError, AttributeError):
            return []

    def _write_sessions(self, sessions: list[dict[str, Any]]) -> None:
        atomic_write_text(self.record_path, json.dumps({"sessions": sessions}, indent=2) + "\n")

    def start(self, first_epoch: int) -> None:
        """Record this invocation; a fresh run (``first_epoch`` 1) also logs its HParams."""
        if not self.chief:
            return
        package_dir = os.path.dirname(os.path.abspath(__file__))
        command = f"{os.path.basename(sys.argv[0])} {shlex.join(sys.argv[1:])}".strip()
        session = {"command": command, "cwd": os.getcwd(),
                   "started": now(), "ended": None, "status": "running",
                   "first_epoch": first_epoch, "versions": package_versions(),
                   "git": git_state(package_dir)}
        self._write_sessions(self._sessions() + [session])
        if first_epoch == 1:
            from tensorboard.plugins.hparams import api as hp

            with self.writers[""].as_default():
                hp.hparams({k: _hparam_value(v) for k, v in self.cfg.to_dict().items()},
                           trial_id=os.path.basename(os.path.abspath(self.out_dir)))
            self.writers[""].flush()

    def finish(self, status: str, last_epoch: int) -> None:
        """Close this invocation's record: ``status`` finished, interrupted or failed."""
        for writer in (self._writers or {}).values():
            writer.flush()
        if not self.chief:
            return
        sessions = self._sessions()
        if sessions:
            sessions[-1].update(ended=now(), status=status, last_epoch=last_epoch)
            self._write_sessions(sessions)

    # -- per epoch ------------------------------------------------------------------------
    def epoch(self, row: dict[str, Any], recon: np.ndarray, samples: np.ndarray) -> None:
        """Summaries and the console line of one finished epoch (``row``: its metrics)."""
        step = row["epoch"]
        for key, value in row.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or key == "epoch":
                continue
            split, _, tag = key.partition("_")
            writer, tag = (self.writers[split], tag) if split in SPLITS else (self.writers[""], key)
            with writer.as_default(step=step):
                tf.summary.scalar(tag, value)
        with self.writers[""].as_default(step=step):
            tf.summary.image("reconstructions", figures.image_grid(recon)[None])
            tf.summary.image("samples", figures.image_grid(samples, 10)[None])
        for writer in self.writers.values():
            writer.flush()
        if self.chief:
            print(console_line(row, self.cfg.num_epochs), flush=True)

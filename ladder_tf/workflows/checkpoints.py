"""Find the checkpoints that are really on disk and restore the newest readable one.

``tf.train.latest_checkpoint`` trusts the ``checkpoints/checkpoint`` state file: when that
file is missing, or names a checkpoint whose ``.index`` or ``.data`` file is missing or
truncated, it returns None or a checkpoint that fails to load. Here the directory listing
is the truth: every ``ckpt-N`` with any file is a candidate, each is read completely
(which checks every tensor's checksum) before it is trusted, unreadable ones are skipped
with one warning line, and nothing is ever deleted. The state file is rewritten to list
the readable checkpoints, so the CheckpointManager's rotation never removes an intact
checkpoint because the file was missing.
"""
from __future__ import annotations

import errno
import os
import re
import warnings

import tensorflow as tf

from ladder_tf.io_utils import atomic_write_text, error_line

STATE_FILE = "checkpoint"
_NAME = re.compile(r"^(?P<prefix>.+-(?P<number>\d+))\.(?:index|data-\d+-of-\d+)$")


class CheckpointError(FileNotFoundError):
    """No usable checkpoint where one was needed (CLIs print it and exit 2)."""


def write_error(err: tf.errors.OpError, ckpt_dir: str, step: int) -> OSError:
    """The OSError (naming ``ckpt_dir``) for TensorFlow's error ``err`` while writing the
    checkpoint of ``step``: a folder that is read-only or full, or not a folder."""
    codes = ((tf.errors.PermissionDeniedError, errno.EACCES), (tf.errors.ResourceExhaustedError, errno.ENOSPC))
    code = next((c for kind, c in codes if isinstance(err, kind)), None)
    reason = os.strerror(code) if code else error_line(err)
    return OSError(code or errno.EIO, f"{reason}; the checkpoint of step {step} was not written", ckpt_dir)


def on_disk(ckpt_dir: str) -> list[str]:
    """Checkpoint prefixes with at least one file in ``ckpt_dir``, newest (highest N) first."""
    if not os.path.isdir(ckpt_dir):
        return []
    found: dict[str, int] = {}
    for name in os.listdir(ckpt_dir):
        match = _NAME.match(name)
        if match and not name.startswith("."):
            found[os.path.join(ckpt_dir, match["prefix"])] = int(match["number"])
    return sorted(found, key=lambda p: found[p], reverse=True)


def unreadable_reason(prefix: str) -> str | None:
    """None when every tensor of checkpoint ``prefix`` reads back; else why not."""
    if not os.path.exists(prefix + ".index"):
        return "its .index file is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, OSError, IndexError, RuntimeError) as err:
        # a truncated data file: IndexError 'Read less bytes than requested'; bad bytes: DataLoss
        return error_line(err)
    return None


def newest_readable(ckpt_dir: str) -> tuple[str | None, list[str]]:
    """(the newest readable checkpoint or None, it and the older ones, oldest first).

    Checkpoints are read completely from the newest down to the first readable one; the
    older ones only need their index file. Warns once, naming the newer checkpoints that
    were skipped and why. Raises CheckpointError when checkpoint files exist but none is
    readable.
    """
    candidates = on_disk(ckpt_dir)
    skipped = []
    for i, prefix in enumerate(candidates):
        reason = unreadable_reason(prefix)
        if reason is None:
            if skipped:
                warnings.warn(f"skipped unreadable checkpoint{'s' if len(skipped) > 1 else ''} "
                              f"{'; '.join(skipped)}; using {os.path.basename(prefix)}", stacklevel=2)
            older = [p for p in candidates[i + 1:] if os.path.exists(p + ".index")]
            return prefix, [prefix, *older][::-1]
        skipped.append(f"{os.path.basename(prefix)} ({reason})")
    if candidates:
        raise CheckpointError(f"no readable checkpoint in {ckpt_dir}: {'; '.join(skipped)}. "
                              "Nothing was changed; restore the files or train into a new directory")
    return None, []


def explicit(prefix: str) -> str:
    """A checkpoint named by the user (e.g. ``--checkpoint``), checked readable."""
    reason = unreadable_reason(prefix)
    if reason:
        known = [os.path.basename(p) for p in on_disk(os.path.dirname(prefix) or ".")]
        raise CheckpointError(f"checkpoint {prefix} cannot be used: {reason}; checkpoints in "
                              f"its folder: {', '.join(known) or 'none'}")
    return prefix


def write_state(ckpt_dir: str, readable: list[str]) -> None:
    """Rewrite the state file to list ``readable`` (oldest first), newest as the latest.

    Each entry gets its index file's time, so the CheckpointManager keeps rotating them
    (entries without a time would be forgotten, neither listed nor ever removed).
    """
    if not readable:
        return
    names = [os.path.basename(p) for p in readable]
    times = [os.path.getmtime(p + ".index") for p in readable]
    text = (f'model_checkpoint_path: "{names[-1]}"\n'
            + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names)
            + "".join(f"all_model_checkpoint_timestamps: {t!r}\n" for t in times)
            + f"last_preserved_timestamp: {min(times) - 1.0!r}\n")
    path = os.path.join(ckpt_dir, STATE_FILE)
    old = tf.train.get_checkpoint_state(ckpt_dir) if os.path.exists(path) else None
    if old is None or [os.path.basename(p) for p in old.all_model_checkpoint_paths] != names:
        atomic_write_text(path, text)


def restore_newest(ckpt: tf.train.Checkpoint, ckpt_dir: str, repair: bool = True,
                   partial: bool = False) -> str | None:
    """Restore the newest readable checkpoint of ``ckpt_dir`` into ``ckpt``; its prefix or None.

    ``repair``: also rewrite the state file (the run directory's owner only). ``partial``:
    ``ckpt`` holds only part of what was saved (no optimisers: export, evaluation); without
    it every object of ``ckpt`` must be in the checkpoint. Raises
    CheckpointError when none is readable or the checkpoint does not fit ``ckpt``'s
    objects (a config with other shapes); nothing on disk is changed then.
    """
    newest, readable = newest_readable(ckpt_dir)
    if newest is None:
        return None
    try:
        status = ckpt.restore(newest)
        if not partial:
            status.assert_existing_objects_matched()
        # values that ``ckpt`` lacks (optimisers, or variables older versions wrote, such as
        # the mixtures' final lower bound) are left unread without a warning
        status.expect_partial()
    except (ValueError, AssertionError, tf.errors.OpError) as err:
        raise CheckpointError(f"{newest} does not fit the model of this config "
                              f"({error_line(err)})") from None
    if repair:
        write_state(ckpt_dir, readable)
    return newest

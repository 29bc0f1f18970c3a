"""Run-directory locks: one process at a time writes a run directory or an output.

A lock is a small JSON file (pid, host, start time, purpose, command) created with
O_EXCL, so two processes never both hold it. It is released when its ``with`` block ends,
also on exceptions. A lock left by a process that was killed (same host, pid no longer
running, or running but started at another time: a reused pid) is stale: the next process
takes it over with one warning line. A lock held by a
live process, or by a process on another host (whose liveness cannot be checked), stops
the new process with ``RunLockedError`` naming the holder.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import uuid
import warnings
from typing import Any, Iterator

LOCK_NAME = "run.lock"
TAKEOVER_TRIES = 3


class RunLockedError(RuntimeError):
    """Another live process holds the lock; the message names it (CLIs exit 2)."""


def process_alive(pid: int) -> bool:
    """True when a process with ``pid`` runs on this host (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    return True


def process_start(pid: int) -> str | None:
    """'boot id:start tick' of a running process (Linux), None where /proc cannot tell.

    Tells a reused pid (a restarted container often gets the same small pid) from the
    process that wrote a lock.
    """
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks
    except (OSError, IndexError):
        return None


def owned_by_dead_process(pid: Any, host: Any, start: Any = None) -> bool:
    """True when (pid, host) names a process of this host that no longer runs.

    ``start`` (``process_start`` when the lock was written): a live process with that pid
    but another start is a reused pid, so the owner is gone too.
    """
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    if not process_alive(pid):
        return True
    now = process_start(pid)
    return start is not None and now is not None and now != start


def _read(path: str) -> dict[str, Any] | None:
    """The lock's record; None when it vanished; {} when it is not a readable record."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def describe(record: dict[str, Any]) -> str:
    """'training (pid 12, host h, since 2026-...)' for messages."""
    return (f"{record.get('purpose', 'a process')} (pid {record.get('pid', '?')} on "
            f"{record.get('host', '?')}, since {record.get('started', '?')})")


def _create(path: str, record: dict[str, Any]) -> bool:
    """Create ``path`` holding ``record`` unless it exists; True when created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _take_over(path: str, stale: dict[str, Any], token: str) -> None:
    """Move a stale lock aside (only if it is still the one judged stale), then drop it."""
    aside = f"{path}.stale-{token}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # someone else took it over first
    if _read(aside) != stale:  # another process replaced it in between: give it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
    else:
        warnings.warn(f"{path}: taking over the lock of {describe(stale) if stale else 'an unknown process'}"
                      "; that process is no longer running", stacklevel=3)
    os.remove(aside)


def acquire(path: str, purpose: str) -> dict[str, Any]:
    """Create the lock file ``path`` for this process; returns its record.

    Raises RunLockedError when a live process (or one on another host) holds it.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
              "process_start": process_start(os.getpid()),
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join(sys.argv), "token": uuid.uuid4().hex}
    for _ in range(TAKEOVER_TRIES):
        if _create(path, record):
            return record
        held = _read(path)
        if held is None:
            continue
        if held and not owned_by_dead_process(held.get("pid"), held.get("host"),
                                              held.get("process_start")):
            raise RunLockedError(f"{os.path.dirname(path) or '.'} is in use by {describe(held)}: it "
                                 f"holds {path}; wait for it to finish (delete that file only if "
                                 "the process is gone)")
        _take_over(path, held, record["token"])
    raise RunLockedError(f"could not take the lock {path}: other processes keep taking it")


def release(path: str, record: dict[str, Any]) -> None:
    """Remove the lock file if this holder still owns it."""
    held = _read(path)
    if held and held.get("token") == record["token"]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def locked(path: str, purpose: str, enabled: bool = True) -> Iterator[None]:
    """Hold the lock file ``path`` for the ``with`` block (a no-op when not ``enabled``)."""
    if not enabled:
        yield
        return
    record = acquire(path, purpose)
    try:
        yield
    finally:
        release(path, record)


def run_lock(run_dir: str, purpose: str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """The lock of a run directory (``RUN_DIR/run.lock``)."""
    return locked(os.path.join(run_dir, LOCK_NAME), purpose, enabled)

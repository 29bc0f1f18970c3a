"""SIGTERM handled like Ctrl-C while training, and neither loses a finished step.

A scheduler or ``kill`` stops a process with SIGTERM, whose default action ends Python
at once: no ``finally`` runs, so the run record stayed at ``running`` and ``run.lock``
stayed behind. Inside :func:`stop_requests` (the main thread of a training process)
SIGTERM and SIGINT both raise :class:`Interrupted`, a KeyboardInterrupt, so the code that
handles Ctrl-C (mark the record interrupted, release the lock) handles both. While the
trainer is between the steps of an epoch (``StopRequests.deferred``) a signal is only
noted: the current step finishes, a checkpoint of it is written, then Interrupted is
raised (``StopRequests.pending``). A second signal while one is pending stops at once.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """Training stopped by signal ``signum``; the message says what was kept."""

    def __init__(self, signum: int, detail: str = ""):
        super().__init__(f"stopped by {signal.Signals(signum).name}" + (f"; {detail}" if detail else ""))
        self.signum = signum


class StopRequests:
    """The signals received while installed (see the module docstring)."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._deferring = False

    def handle(self, signum: int, _frame) -> None:
        """The signal handler: note the signal while deferring, else stop now."""
        if self._deferring and self.pending is None:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals inside the block only set ``pending`` (the caller checks it at safe points)."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequests]:
    """Install the SIGTERM/SIGINT handler for the block (only in the main thread, where Python
    runs signal handlers; elsewhere the block runs with the handlers as they are)."""
    stops = StopRequests()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    previous = {s: signal.signal(s, stops.handle) for s in SIGNALS}
    try:
        yield stops
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)

"""Keep TensorFlow's C++ start-up lines off a command's output.

TF_CPP_MIN_LOG_LEVEL does not reach the lines TensorFlow's libraries log while they load
(``port.cc ... oneDNN custom operations are on``, ``cudart_stub.cc ... Could not find cuda
drivers``, ``All log messages before absl::InitializeLog() ...``): they are written before
logging is set up. ``filter_import_chatter`` arranges for the first ``import tensorflow``
to run with the process's stderr (file descriptor 2) captured; afterwards every captured
line that is not such an INFO/WARNING line is written back, so errors are never lost.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from typing import Iterator

# absl's prefix: severity, MMDD, time (before set-up: 00:00:<epoch seconds>), thread,
# file:line]; plus absl's pre-set-up notice
CHATTER = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)|"
                     r"[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\])")


@contextlib.contextmanager
def stderr_filtered() -> Iterator[None]:
    """Capture file descriptor 2 for the block; then write back all but the chatter lines."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(True)
                    if not CHATTER.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, wrapping its module execution in ``stderr_filtered``."""

    def find_spec(self, name, path=None, target=None):  # noqa: D102 - importlib protocol
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            with stderr_filtered():
                execute(module)

        spec.loader.exec_module = exec_module
        return spec


def filter_import_chatter() -> None:
    """Filter the start-up lines of the coming ``import tensorflow`` (no-op once imported)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())

"""Crash-safe file writing (every output is written to a temporary file, then renamed), JSON
lines that survive a damaged line, and one-line error messages."""
from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
import warnings
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    ``suffix`` keeps a file extension on the temporary name for writers that infer the
    format from it (matplotlib, numpy). A failure leaves ``path`` untouched. An OSError
    about the temporary file (an unwritable folder or file, a full disk) is raised naming
    ``path``, the file the user knows. The file gets ordinary permissions (0666 less the
    umask), as any new file, not mkstemp's private 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = None
    try:
        tmp = os.path.join(directory, f".tmp-{os.getpid()}-{uuid.uuid4().hex}{suffix}")
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # mode less the umask
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if tmp is None or tmp in (err.filename, err.filename2) or err.filename is None:
            raise OSError(err.errno, err.strerror or error_line(err), path) from err
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def error_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_jsonl(path: str | os.PathLike, require: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every readable JSON-object line of ``path`` ([] when it does not exist).

    A damaged line (not JSON, not an object, or lacking a ``require``d key) costs only
    itself: it is skipped with one warning naming the file and the line number, and the
    lines after it are kept.
    """
    if not os.path.exists(path):
        return []
    rows, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if isinstance(row, dict) and all(k in row for k in require):
                rows.append(row)
            else:
                bad.append(number)
    if bad:
        warnings.warn(f"{os.fspath(path)}: skipped damaged line{'s' if len(bad) > 1 else ''} "
                      f"{', '.join(map(str, bad))}; kept the other {len(rows)}", stacklevel=2)
    return rows


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, in nested dicts and
    lists too, so that it serialises as standard JSON (``null``), not as ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_jsonl(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``path`` with ``rows``, one JSON object per line, atomically; a non-finite
    number is written as ``null`` (standard JSON)."""
    atomic_write_text(path, "".join(json.dumps(json_safe(r), sort_keys=True, allow_nan=False) + "\n"
                                    for r in rows))

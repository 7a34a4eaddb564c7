"""Output paths, checked before any work: a run, a campaign or a GIF never fails at its end
because its destination cannot be written, and never overwrites files it did not write.

Every check raises ``ValueError`` naming the path and the problem, and creates
nothing (a probe directory is made and removed to learn whether a location can
be written, which permission bits alone do not tell, e.g. for root or in /proc).
"""

from __future__ import annotations

import os
import tempfile

RUN_MARKER = "config.json"


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _probe(directory: str, what: str, path: str) -> None:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".neuroevo-probe-", dir=directory))
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot write in {directory} ({e.strerror or e})") from None


def check_output_dir(path: str, what: str = "--out") -> None:
    """``path`` is a directory that exists and can be written, or one that can be created."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{what} must be a directory path, got {path!r}")
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{what} {path} is a file, not a directory")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise ValueError(f"{what} {path}: {existing} is a file, not a directory")
    _probe(existing, what, path)


def check_new_run_dir(path: str, what: str = "--out") -> None:
    """:func:`check_output_dir`, and ``path`` holds no files yet: neither a run (resume that
    instead) nor anything else (its files would be overwritten)."""
    check_output_dir(path, what)
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, RUN_MARKER)):
        raise ValueError(
            f"{path} already holds a run: resume it with --resume {path}, or pick another {what}"
        )
    if os.path.isdir(path) and os.listdir(path):
        raise ValueError(
            f"{what} {path} is a non-empty directory that is not a neuroevo run: its files would be "
            f"overwritten; pick a new or empty directory"
        )


def check_output_file(path: str, what: str) -> None:
    """``path`` names a file that can be written: its directory exists and is writable."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{what} must be a file path, got {path!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory, not a file")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{what} {path}: the directory {directory} does not exist")
    _probe(directory, what, path)

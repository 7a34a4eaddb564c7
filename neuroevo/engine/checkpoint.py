"""Atomic, verified checkpoints of a run (orbax).

A checkpoint holds the carry (strategy and task state), the generation
reached, the history so far and the run's fingerprint
(:mod:`neuroevo.engine.fingerprint`: key, strategy, hyperparameters, shapes,
task, traced program). Restoring compares the fingerprint with the run's
before orbax reads any array and refuses another run with a ``ValueError``
naming every field that differs.

Orbax writes each step atomically (to a temporary directory, renamed when
complete). Once a step is written, the SHA-256 of each of its files is
recorded next to them (``neuroevo_checksums.json``); a step whose files no
longer match (truncated, changed) or cannot be read is skipped with a warning
naming it and removed, and the run resumes from the previous good one. When no
step is usable, one ``ValueError`` line names each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from neuroevo.engine import fingerprint as fingerprint_lib

CHECKSUMS = "neuroevo_checksums.json"


def latest_step(directory: str | None) -> int | None:
    """The newest step written under ``directory`` (None if none, or no directory); reads nothing."""
    if directory is None or not os.path.isdir(directory):
        return None
    steps = [
        int(n) for n in os.listdir(directory) if n.isdigit() and os.path.isdir(os.path.join(directory, n))
    ]
    return max(steps, default=None)


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt) or could not be fully verified."""


def _files(step_dir: str) -> list[str]:
    found = []
    for root, _, names in os.walk(step_dir):
        for name in names:
            if not name.startswith(CHECKSUMS):
                found.append(os.path.relpath(os.path.join(root, name), step_dir))
    return sorted(found)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(step_dir: str) -> None:
    """Record the SHA-256 of every file of a written step (atomically)."""
    table = {name: _sha256(os.path.join(step_dir, name)) for name in _files(step_dir)}
    path = os.path.join(step_dir, CHECKSUMS)
    with open(path + ".tmp", "w") as f:
        json.dump(table, f, indent=0)
    os.replace(path + ".tmp", path)


def verify(step_dir: str) -> str | None:
    """None if every file of the step matches its recorded checksum (or none were recorded), else
    what is wrong, naming the file."""
    path = os.path.join(step_dir, CHECKSUMS)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return f"{CHECKSUMS} is unreadable"
    for name, expected in table.items():
        full = os.path.join(step_dir, name)
        if not os.path.isfile(full):
            return f"{name} is missing"
        if _sha256(full) != expected:
            return f"{name} does not match its checksum (truncated or changed)"
    return None


@contextlib.contextmanager
def _quiet_orbax():
    """Orbax logs (absl) the damage of a corrupt step it reads; the caller reports it in one line."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return f"{type(error).__name__}: {text[:160]}"


class Manager:
    """Save and restore ``(carry, generation, history)`` under ``directory``.

    Args:
      directory: where the steps are written (created if missing).
      max_to_keep: steps kept (at least 2, so a corrupt newest one has a predecessor).
      fingerprint: the run's fingerprint (:func:`neuroevo.engine.fingerprint.fingerprint`),
        written into every step and compared on restore; None compares only the key.
    """

    def __init__(self, directory: str, max_to_keep: int = 2, fingerprint: dict | None = None):
        self.directory = os.path.abspath(directory)
        self.fingerprint = fingerprint
        self._pending: int | None = None
        with _quiet_orbax():
            self._m = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(max_to_keep=max(2, max_to_keep), create=True),
            )

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def save(self, generation: int, carry: Any, history: dict, key_data: jax.Array) -> None:
        """Start writing step ``generation`` (asynchronously); a step already written is kept."""
        self._seal()
        if generation in self._m.all_steps():
            return
        meta = {
            "generation": int(generation),
            "key": np.asarray(key_data).tolist(),
            "history": {k: list(v) for k, v in history.items()},
            "fingerprint": self.fingerprint,
        }
        self._m.save(
            generation,
            args=ocp.args.Composite(carry=ocp.args.StandardSave(carry), meta=ocp.args.JsonSave(meta)),
        )
        self._pending = generation

    def _seal(self) -> None:
        """Finish the pending write and record its checksums."""
        if self._pending is None:
            return
        self._m.wait_until_finished()
        step, self._pending = self._pending, None
        if os.path.isdir(self.step_dir(step)):
            write_checksums(self.step_dir(step))

    def wait(self) -> None:
        """Block until every write has finished and been sealed with its checksums."""
        self._m.wait_until_finished()
        self._seal()

    def close(self) -> None:
        self.wait()
        self._m.close()

    def latest(self) -> int | None:
        """The newest step written (not verified)."""
        return self._m.latest_step()

    def _check_same_run(self, meta: dict, key_data: Any, step: int) -> None:
        key = np.asarray(key_data).tolist()
        stored = meta.get("fingerprint")
        if stored is None or self.fingerprint is None:
            if meta.get("key") != key:
                raise ValueError(
                    f"the checkpoint in {self.directory} was written by a run with key {meta.get('key')}, "
                    f"not {key}: use a fresh checkpoint_dir or the same key"
                )
            return
        found = fingerprint_lib.differences(stored, self.fingerprint)
        if fingerprint_lib.upgrade_only(found, stored, self.fingerprint):
            warnings.warn(
                f"the checkpoint in {self.directory} was written with {stored.get('versions')}, this is "
                f"{self.fingerprint.get('versions')}: its traced program differs, which an upgrade can "
                f"cause; continuing, as its strategy, hyperparameters and shapes agree",
                CheckpointWarning,
                stacklevel=4,
            )
        elif found:
            raise ValueError(
                f"the checkpoint in {self.directory} (step {step}) was written by a different run "
                f"(checkpoint vs now): {'; '.join(found)}. Use a fresh checkpoint_dir, or the same settings"
            )

    def restore_latest(self, like: Any, key_data: jax.Array):
        """``(carry, generation, history)`` of the newest good checkpoint, or None if there is none.

        Raises ``ValueError`` if the checkpoint was written by a different run
        (see :class:`Manager`), or if no step can be read (naming each).
        """
        with _quiet_orbax():
            return self._restore_latest(like, key_data)

    def _restore_latest(self, like: Any, key_data: jax.Array):
        bad: list[tuple[int, str]] = []
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        for step in sorted(self._m.all_steps(), reverse=True):
            problem = verify(self.step_dir(step))
            if problem is None:
                try:
                    meta = self._m.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
                except Exception as e:  # orbax/tensorstore raise many kinds on a damaged file
                    problem = f"its metadata cannot be read ({_one_line(e)})"
            if problem is None:
                self._check_same_run(meta, key_data, step)
                try:
                    args = ocp.args.Composite(carry=ocp.args.StandardRestore(abstract))
                    carry = self._m.restore(step, args=args)["carry"]
                except Exception as e:
                    problem = f"its arrays cannot be read ({_one_line(e)})"
            if problem is not None:
                bad.append((step, problem))
                continue
            for old, why in bad:
                warnings.warn(
                    f"checkpoint {self.step_dir(old)} is corrupt: {why}; removed it and resumed from "
                    f"generation {step}",
                    CheckpointWarning,
                    stacklevel=3,
                )
                self._m.delete(old)
            history = {k: list(v) for k, v in meta["history"].items()}
            return carry, int(meta["generation"]), history
        if bad:
            shown = "; ".join(f"{self.step_dir(s)}: {why}" for s, why in bad)
            raise ValueError(f"no usable checkpoint in {self.directory}: {shown}. Delete it to start over")
        return None

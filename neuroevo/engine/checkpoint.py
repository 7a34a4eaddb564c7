"""Atomic checkpoints of a run (orbax): the strategy and task state, the
generation reached, the history so far and the run's key (to refuse resuming a
different run)."""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


class Manager:
    """Save and restore ``(carry, generation, history)`` under ``directory``."""

    def __init__(self, directory: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(directory)
        self._m = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, generation: int, carry: Any, history: dict, key_data: jax.Array) -> None:
        if generation in self._m.all_steps():
            return
        meta = {
            "generation": int(generation),
            "key": np.asarray(key_data).tolist(),
            "history": {k: list(v) for k, v in history.items()},
        }
        self._m.save(
            generation,
            args=ocp.args.Composite(carry=ocp.args.StandardSave(carry), meta=ocp.args.JsonSave(meta)),
        )

    def wait(self) -> None:
        self._m.wait_until_finished()

    def latest(self) -> int | None:
        return self._m.latest_step()

    def restore_latest(self, like: Any, key_data: jax.Array):
        """``(carry, generation, history)`` of the newest checkpoint, or None if there is none."""
        step = self._m.latest_step()
        if step is None:
            return None
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._m.restore(
            step,
            args=ocp.args.Composite(carry=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()),
        )
        meta = restored["meta"]
        if meta["key"] != np.asarray(key_data).tolist():
            raise ValueError(
                f"the checkpoint in {self.directory} was written by a run with key {meta['key']}, "
                f"not {np.asarray(key_data).tolist()}: use a fresh checkpoint_dir or the same key"
            )
        history = {k: list(v) for k, v in meta["history"].items()}
        return restored["carry"], int(meta["generation"]), history

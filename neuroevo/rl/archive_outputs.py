"""A QD run's archive in its run directory: heat maps while it runs, the repertoire at the end.

With a quality-diversity strategy (one whose state holds a MAP-Elites
``archive``), ``neuroevo train --out DIR`` writes ``DIR/archive/generation_NNNNNN.png``
every ``checkpoint_every`` generations (at the end of the first block past
each multiple), and at the end ``DIR/archive.png``, ``DIR/archive.npz``
(``ne.qd.load``) and ``DIR/archive.csv`` (one row per elite, ``ne.qd.from_csv``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


class ArchiveOutputs:
    """A run-loop callback ``(generation, state, metrics)`` drawing the archive; :meth:`finish` saves it."""

    def __init__(self, out: str, archive: Any, every: int, title: str = ""):
        self.out, self.archive, self.every, self.title = out, archive, max(1, int(every)), title
        self.drawn = 0
        os.makedirs(os.path.join(out, "archive"), exist_ok=True)

    def __call__(self, generation: int, state: Any, metrics: dict) -> None:
        if generation // self.every > self.drawn // self.every:
            self.draw(
                state, os.path.join(self.out, "archive", f"generation_{generation:06d}.png"), generation
            )
            self.drawn = generation

    def draw(self, state: Any, path: str, generation: int) -> None:
        from neuroevo import qd

        qd.heatmap(state.archive, self.archive, path, title=f"{self.title} generation {generation}".strip())

    def finish(self, state: Any) -> None:
        """The final heat map, and the repertoire as .npz and .csv."""
        from neuroevo import qd

        self.draw(state, os.path.join(self.out, "archive.png"), int(state.generation))
        qd.save(os.path.join(self.out, "archive.npz"), state.archive, self.archive)
        qd.to_csv(os.path.join(self.out, "archive.csv"), state.archive)


def archive_outputs(
    config: Mapping[str, Any], out: str | None, descriptor_dim: int | None
) -> ArchiveOutputs | None:
    """The callback for a QD strategy's run directory (None for other strategies or without ``out``)."""
    from neuroevo import strategies
    from neuroevo.strategies.map_elites import archive_for

    if out is None or "archive" not in strategies.hyperparameters(config["strategy"]):
        return None
    hp = dict(config["hp"])
    if descriptor_dim is not None and "archive" not in hp:
        hp.setdefault("descriptor_dim", descriptor_dim)
    title = f"{config['strategy']} on {config['env']}"
    return ArchiveOutputs(out, archive_for(config["strategy"], hp), config["checkpoint_every"], title)

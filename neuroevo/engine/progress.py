"""The engine's progress display: one row per run (``ne.evolve``) or per part of a campaign
(``ne.bench``'s dimensions), each a bar with a count and a line of text, drawn with rich."""

from __future__ import annotations

import time


class Progress:
    """Rows of progress bars; ``add`` a row, ``update`` it, ``close`` the display.

    Args:
      label: the text before each bar (``"{task.description}"`` shows the row's name).
    """

    def __init__(self, label: str = "[bold]{task.description}"):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._p = RichProgress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )  # fmt: skip
        self._p.start()
        self._rows: dict[str, int] = {}
        self.last_update = time.perf_counter()

    def add(self, name: str, total: int, completed: int = 0) -> None:
        """A new row ``name`` counting up to ``total``."""
        self._rows[name] = self._p.add_task(name, total=total, completed=completed, info="")

    def __contains__(self, name: str) -> bool:
        return name in self._rows

    def update(self, name: str, completed: int, info: str = "") -> None:
        """Row ``name`` now at ``completed``, with ``info`` after its bar."""
        self._p.update(self._rows[name], completed=completed, info=info)
        self.last_update = time.perf_counter()

    def close(self) -> None:
        self._p.stop()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

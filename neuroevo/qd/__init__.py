"""Quality-diversity: archives of elites on device (grid and CVT), their metrics, export and plots.

Use an archive with a QD strategy::

    archive = ne.qd.GridArchive(cells=(50, 50), bounds=((-1, 1), (-1, 1)))
    strategy = ne.strategies.make("map_elites", popsize=256, archive=archive)
    state, history = ne.evolve(key, strategy, task, x0, 500)   # history["qd_score"], ...
    state.archive.fitness, state.archive.occupied, state.archive.solutions
    ne.qd.save("archive.npz", state.archive, archive)

See :mod:`neuroevo.qd.archive` for insertion and the metrics, ``docs/qd.md`` for the whole story.
"""

from neuroevo.qd.archive import (
    Archive,
    GridArchive,
    Insertion,
    Repertoire,
    flat_solutions,
    gather,
    memory_limit,
    sample_cells,
)
from neuroevo.qd.configs import archive_from_config
from neuroevo.qd.cvt import CVTArchive, kmeans, nearest
from neuroevo.qd.io import from_csv, load, save, to_csv
from neuroevo.qd.plot import heatmap

__all__ = [
    "Archive",
    "CVTArchive",
    "GridArchive",
    "Insertion",
    "Repertoire",
    "archive_from_config",
    "flat_solutions",
    "from_csv",
    "gather",
    "heatmap",
    "kmeans",
    "load",
    "memory_limit",
    "nearest",
    "sample_cells",
    "save",
    "to_csv",
]

"""MAP-Elites archives on device: a grid of cells or a centroidal Voronoi tessellation.

An archive divides the space of behaviour descriptors into ``n_cells`` cells and
keeps, in each, the best solution seen whose descriptor falls there (its
*elite*): Mouret & Clune, "Illuminating search spaces by mapping elites",
arXiv:1504.04909 (2015). Two kinds, both static configurations passed to a
strategy (``ne.strategies.make("map_elites", archive=...)``):

- :class:`GridArchive` (``cells=(50, 50), bounds=((lo1, hi1), (lo2, hi2))``): each
  descriptor dimension cut into equal intervals, cells numbered in C order (the
  last dimension fastest), as ``numpy.ravel_multi_index`` and pyribs number them.
- :class:`CVTArchive` (Vassiliades, Chatzilygeroudis & Mouret, "Using Centroidal
  Voronoi Tessellations to Scale Up the Multidimensional Archive of Phenotypic
  Elites Algorithm", IEEE TEVC 2018): the cell of a descriptor is its nearest
  centroid; centroids are given, or computed by k-means on device
  (:mod:`neuroevo.qd.cvt`).

The repertoire itself is a :class:`Repertoire` (``state.archive``): ``fitness``
(n_cells,), ``occupied`` (n_cells,) bool, ``descriptors`` (n_cells, k) and
``solutions`` (a pytree like ``x0`` with a leading n_cells axis).

**Insertion** (:meth:`Archive.insert`) takes a whole batch at once. A member
enters its cell if its fitness is strictly above the elite's (any finite
fitness enters an empty cell); of several members bound for one cell the best
enters, and of equal best the first in the batch, so the result does not depend
on anything but the batch order (pyribs' rule). NaN and -inf fitness, and
non-finite descriptors, never enter. Descriptors **outside the bounds are
clipped**: a grid puts them in the border cell (as pyribs does), a CVT in the
cell of the nearest centroid. Each member gets the status pyribs reports (0 not
added, 1 improved an occupied cell, 2 filled an empty one) and its value (the
improvement ``f - elite``; ``f`` itself for a new cell), both relative to the
archive before the batch: what CMA-ME ranks on.

**QD metrics** (:meth:`Archive.metrics`): ``qd_score = sum over elites of
(fitness - qd_offset)`` (``qd_offset`` is the archive's, default 0: set it to a
lower bound of the fitness so that every elite counts positively, as pyribs'
``qd_score_offset``), ``coverage`` (occupied / n_cells), ``max_fitness`` and
``mean_fitness`` of the elites (-inf while the archive is empty), ``elites``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from neuroevo import rng
from neuroevo.strategy import check_descriptors, check_x0

PyTree = Any
Array = jax.Array

#: Cell indices are int32: at most this many cells.
MAX_CELLS = 2**31 - 1


class Repertoire(NamedTuple):
    """The elites of an archive (``state.archive``), one row per cell."""

    fitness: Array  # f32[n_cells]: the elite's fitness, -inf where empty
    occupied: Array  # bool[n_cells]
    descriptors: Array  # f32[n_cells, k]: the elite's descriptor, 0 where empty
    solutions: PyTree  # like x0, with a leading n_cells axis (x0's zeros where empty)
    filled: Array  # int32[n_cells]: the occupied cells in the order they were filled (then 0s)


class Insertion(NamedTuple):
    """What became of each member of a batch (relative to the archive before it)."""

    cell: Array  # int32[n]: the member's cell
    status: Array  # int32[n]: 0 not added, 1 improved an occupied cell, 2 filled an empty one
    value: Array  # f32[n]: f - elite (f for an empty cell); -inf for NaN/-inf fitness
    added: Array  # bool[n]: the member is now its cell's elite (one per cell at most)


def memory_limit() -> int:
    """Bytes an archive may take: the default device's memory limit, else the machine's RAM."""
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # backends without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 36


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def _check_bounds(bounds: Any, dim: int | None = None) -> tuple[tuple[float, float], ...]:
    """``bounds`` as a tuple of finite ``(low, high)`` pairs with ``low < high``."""
    try:
        pairs = tuple((float(lo), float(hi)) for lo, hi in bounds)
    except (TypeError, ValueError):
        raise ValueError(
            f"bounds must be one (low, high) pair per descriptor dimension, got {bounds!r}"
        ) from None
    if not pairs:
        raise ValueError("bounds is empty: give one (low, high) pair per descriptor dimension")
    if dim is not None and len(pairs) != dim:
        raise ValueError(f"bounds has {len(pairs)} (low, high) pairs but cells has {dim} dimensions")
    for i, (lo, hi) in enumerate(pairs):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"bounds[{i}] = ({lo}, {hi}) must be finite")
        if lo >= hi:
            raise ValueError(f"bounds[{i}] = ({lo}, {hi}): low must be below high")
    return pairs


class Archive:
    """What grid and CVT archives share: the repertoire, batch insertion, metrics, sampling.

    Subclasses define ``n_cells``, ``descriptor_dim`` and :meth:`index`.
    """

    bounds: tuple[tuple[float, float], ...]
    qd_offset: float
    n_cells: int

    @property
    def descriptor_dim(self) -> int:
        return len(self.bounds)

    @property
    def low(self) -> np.ndarray:
        return np.array([lo for lo, _ in self.bounds], np.float32)

    @property
    def high(self) -> np.ndarray:
        return np.array([hi for _, hi in self.bounds], np.float32)

    def index(self, descriptors: Array) -> Array:
        """int32[n]: the cell of each descriptor row (f32[n, k])."""
        raise NotImplementedError

    def cell_centers(self) -> np.ndarray:
        """f32[n_cells, k]: a representative point of each cell (plots)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The archive as plain data (JSON/npz): ``archive_from_config`` rebuilds it."""
        raise NotImplementedError

    def _check_size(self, floats_per_cell: int, what: str) -> None:
        need = self.n_cells * floats_per_cell * 4
        limit = memory_limit()
        if need > limit:
            raise ValueError(
                f"the archive needs {_format_bytes(need)} ({self.n_cells} cells x {floats_per_cell} "
                f"float32 {what}) but the device has {_format_bytes(limit)}: use fewer cells"
            )
        if self.n_cells > MAX_CELLS:
            raise ValueError(
                f"the archive has {self.n_cells} cells; at most {MAX_CELLS} (int32 cell indices)"
            )

    # ------------------------------------------------------------------ #
    # The repertoire.
    # ------------------------------------------------------------------ #

    def empty(self, x0: PyTree) -> Repertoire:
        """A repertoire with no elite, whose solutions are shaped like ``x0``."""
        flat, _ = check_x0(x0)
        self._check_size(flat.shape[0] + self.descriptor_dim + 3, "solution + descriptor + fitness values")
        n = self.n_cells
        return Repertoire(
            fitness=jnp.full((n,), -jnp.inf, jnp.float32),
            occupied=jnp.zeros((n,), bool),
            descriptors=jnp.zeros((n, self.descriptor_dim), jnp.float32),
            solutions=jax.tree_util.tree_map(
                lambda x: jnp.zeros((n,) + jnp.shape(x), jnp.result_type(x)), x0
            ),
            filled=jnp.zeros((n,), jnp.int32),
        )

    def check_descriptors(self, descriptors: Any, popsize: int, who: str = "MAP-Elites") -> Array:
        """Descriptors as f32[popsize, descriptor_dim], or ``ValueError`` naming the expected shape."""
        return check_descriptors(descriptors, popsize, self.descriptor_dim, who=who)

    def insert(
        self, repertoire: Repertoire, solutions: PyTree, fitness: Array, descriptors: Array
    ) -> tuple[Repertoire, Insertion]:
        """Insert a batch (``solutions`` with a leading axis of n) at once; see the module docstring."""
        fitness = jnp.asarray(fitness, jnp.float32)
        descriptors = jnp.asarray(descriptors, jnp.float32)
        n, n_cells = fitness.shape[0], self.n_cells
        valid = jnp.isfinite(fitness) & jnp.all(jnp.isfinite(descriptors), axis=-1)
        f = jnp.where(valid, fitness, -jnp.inf)
        cell = self.index(jnp.where(valid[:, None], descriptors, 0.0))
        elite = repertoire.fitness[cell]
        was_occupied = repertoire.occupied[cell]
        can = valid & (f > elite)
        status = jnp.where(can, jnp.where(was_occupied, 1, 2), 0).astype(jnp.int32)
        value = jnp.where(was_occupied, f - jnp.where(was_occupied, elite, 0.0), f)
        # One winner per cell: the best, the first of equal best.
        best = jnp.full((n_cells,), -jnp.inf, jnp.float32).at[cell].max(jnp.where(can, f, -jnp.inf))
        order = jnp.arange(n, dtype=jnp.int32)
        first = jnp.full((n_cells,), n, jnp.int32).at[cell].min(jnp.where(can & (f == best[cell]), order, n))
        added = can & (first[cell] == order)
        target = jnp.where(added, cell, n_cells)  # out of range: dropped

        def put(table, rows):
            return table.at[target].set(jnp.asarray(rows, table.dtype), mode="drop")

        # New cells join the list of filled cells, in batch order.
        new_cell = added & (status == 2)
        slot = jnp.sum(repertoire.occupied, dtype=jnp.int32) + blocked_cumsum(new_cell.astype(jnp.int32)) - 1
        new = Repertoire(
            fitness=put(repertoire.fitness, f),
            occupied=put(repertoire.occupied, jnp.ones((n,), bool)),
            descriptors=put(repertoire.descriptors, descriptors),
            solutions=jax.tree_util.tree_map(put, repertoire.solutions, solutions),
            filled=repertoire.filled.at[jnp.where(new_cell, slot, n_cells)].set(cell, mode="drop"),
        )
        return new, Insertion(cell=cell, status=status, value=value, added=added)

    def metrics(self, repertoire: Repertoire) -> dict[str, Array]:
        """QD-score (with ``qd_offset``), coverage, max and mean elite fitness, number of elites."""
        occupied = repertoire.occupied
        count = jnp.sum(occupied)
        fitness = jnp.where(occupied, repertoire.fitness, 0.0)
        total = jnp.sum(fitness)
        return {
            "qd_score": total - count * jnp.float32(self.qd_offset),
            "coverage": count / jnp.float32(self.n_cells),
            "max_fitness": jnp.max(repertoire.fitness),
            "mean_fitness": jnp.where(count > 0, total / jnp.maximum(count, 1), -jnp.inf),
            "elites": count.astype(jnp.float32),
        }


def blocked_cumsum(x: Array) -> Array:
    """``jnp.cumsum`` of a 1-D int array in O(n sqrt(n)) adds: XLA's CPU cumsum is a
    reduce-window of the whole length (O(n^2)), 0.15 ms for a batch of 1000."""
    n = x.shape[0]
    b = max(1, math.isqrt(n - 1) + 1) if n > 1 else 1
    blocks = jnp.pad(x, (0, b * b - n)).reshape(b, b)
    within = jnp.cumsum(blocks, axis=1)
    offsets = jnp.cumsum(within[:, -1]) - within[:, -1]
    return (within + offsets[:, None]).reshape(-1)[:n]


def sample_cells(key: Array, repertoire: Repertoire, n: int) -> Array:
    """int32[n]: cells drawn uniformly (with replacement) among the occupied ones.

    With no elite at all every draw is cell 0 (check ``occupied`` before using it).
    """
    count = jnp.sum(repertoire.occupied, dtype=jnp.int32)
    # floor(u * count) with u from the cheap hash stream (24 bits): XLA's CPU threefry is a rolled
    # loop, and randint's integer remainders are costly where XLA fuses the draw into later work.
    u = (rng.hash_bits(key, n) >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)
    rank = jnp.minimum((u * count.astype(jnp.float32)).astype(jnp.int32), jnp.maximum(count - 1, 0))
    return repertoire.filled[rank]


def filled_order(occupied: Array) -> Array:
    """int32[n_cells]: the occupied cells in index order, then 0s (a reloaded repertoire's ``filled``)."""
    return jnp.nonzero(occupied, size=occupied.shape[0], fill_value=0)[0].astype(jnp.int32)


def gather(repertoire: Repertoire, cells: Array) -> PyTree:
    """The elites' solutions in ``cells`` (a pytree with a leading axis of ``len(cells)``)."""
    return jax.tree_util.tree_map(lambda x: x[cells], repertoire.solutions)


def flat_solutions(repertoire: Repertoire, cells: Array) -> Array:
    """f[len(cells), d]: the elites' solutions in ``cells``, ravelled."""
    return jax.vmap(lambda s: ravel_pytree(s)[0])(gather(repertoire, cells))


class GridArchive(Archive):
    """A grid: ``cells[i]`` equal intervals over ``bounds[i]`` in each descriptor dimension.

    Args:
      cells: cells per descriptor dimension (each a positive int; one int for a 1-D archive).
      bounds: ``(low, high)`` per dimension, finite, ``low < high``. Descriptors outside are
        clipped into the border cells.
      qd_offset: subtracted from each elite's fitness in the QD-score (pyribs' ``qd_score_offset``).
      epsilon: added before flooring, as pyribs does, so that a descriptor on a cell boundary
        that float rounding puts just below it lands in the upper cell.
    """

    def __init__(
        self,
        cells: int | Sequence[int],
        bounds: Sequence[tuple[float, float]],
        qd_offset: float = 0.0,
        epsilon: float = 1e-6,
    ):
        cells = (cells,) if isinstance(cells, int | np.integer) and not isinstance(cells, bool) else cells
        try:
            cells = tuple(cells)
        except TypeError:
            raise ValueError(
                f"cells must be a positive int per descriptor dimension, got {cells!r}"
            ) from None
        for c in cells:
            if isinstance(c, bool) or not isinstance(c, int | np.integer) or c < 1:
                raise ValueError(f"cells must be positive ints (at least 1 per dimension), got {cells!r}")
        if not cells:
            raise ValueError("cells is empty: give the number of cells of each descriptor dimension")
        self.cells = tuple(int(c) for c in cells)
        self.bounds = _check_bounds(bounds, len(self.cells))
        self.qd_offset = float(qd_offset)
        self.epsilon = float(epsilon)
        self.n_cells = math.prod(self.cells)
        self._check_size(self.descriptor_dim + 3, "descriptor + fitness values")

    def __repr__(self) -> str:
        return f"GridArchive(cells={self.cells}, bounds={self.bounds}, qd_offset={self.qd_offset})"

    def index(self, descriptors: Array) -> Array:
        d = jnp.asarray(descriptors, jnp.float32)
        cells = jnp.asarray(self.cells, jnp.float32)
        low, width = jnp.asarray(self.low), jnp.asarray(self.high - self.low)
        grid = jnp.floor((cells * (d - low) + jnp.float32(self.epsilon)) / width)
        grid = jnp.clip(grid, 0, cells - 1).astype(jnp.int32)
        strides = np.cumprod((1,) + self.cells[:0:-1])[::-1].astype(np.int32)  # C order
        return jnp.sum(grid * jnp.asarray(strides), axis=-1).astype(jnp.int32)

    def cell_centers(self) -> np.ndarray:
        axes = [
            lo + (np.arange(c) + 0.5) * (hi - lo) / c
            for c, (lo, hi) in zip(self.cells, self.bounds, strict=True)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1).astype(np.float32)

    def config(self) -> dict[str, Any]:
        return {"kind": "grid", "cells": list(self.cells), "bounds": [list(b) for b in self.bounds],
                "qd_offset": self.qd_offset, "epsilon": self.epsilon}  # fmt: skip

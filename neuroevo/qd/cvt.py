"""The CVT archive: cells are the Voronoi regions of centroids found by k-means on device.

Vassiliades, Chatzilygeroudis & Mouret, "Using Centroidal Voronoi Tessellations
to Scale Up the Multidimensional Archive of Phenotypic Elites Algorithm", IEEE
TEVC 22(4), 2018: sample ``samples`` points uniformly in the bounds, run
Lloyd's k-means on them (``iterations`` rounds, starting from ``n_cells`` of the
samples), and use the centroids as cells: a descriptor belongs to the cell of
its nearest centroid (Euclidean; the lowest index on a tie). Distances are
computed as ``|p|^2 - 2 p.c + |c|^2`` in chunks of points, so memory stays
O(chunk * n_cells) whatever the number of samples.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.qd.archive import Archive, _check_bounds

Array = jax.Array


def nearest(points: Array, centroids: Array, chunk: int | None = None) -> Array:
    """int32[P]: the index of each point's nearest centroid (the lowest on a tie)."""
    points = jnp.asarray(points, jnp.float32)
    centroids = jnp.asarray(centroids, jnp.float32)
    p, dim = points.shape
    c = centroids.shape[0]
    chunk = min(p, chunk or max(1, (1 << 24) // max(c, 1)))
    extra = -p % chunk
    padded = jnp.concatenate([points, jnp.zeros((extra, dim), points.dtype)]) if extra else points
    c_sq = jnp.sum(centroids * centroids, axis=1)

    def one(block):
        d = c_sq[None, :] - 2.0 * block @ centroids.T  # |p|^2 is the same for every centroid
        return jnp.argmin(d, axis=1).astype(jnp.int32)

    return jax.lax.map(one, padded.reshape(-1, chunk, dim)).reshape(-1)[:p]


@partial(jax.jit, static_argnames=("n_cells", "samples", "iterations"))
def kmeans(key: Array, low: Array, high: Array, n_cells: int, samples: int, iterations: int) -> Array:
    """f32[n_cells, k]: Lloyd's k-means centroids of ``samples`` uniform points in ``[low, high]``.

    Starts from the first ``n_cells`` samples (a random pick); a centroid left
    without points keeps its place.
    """
    points = jax.random.uniform(key, (samples, low.shape[0]), jnp.float32, low, high)

    def step(centroids, _):
        assign = nearest(points, centroids)
        sums = jax.ops.segment_sum(points, assign, n_cells)
        counts = jax.ops.segment_sum(jnp.ones((samples,), jnp.float32), assign, n_cells)
        moved = sums / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where(counts[:, None] > 0, moved, centroids), None

    return jax.lax.scan(step, points[:n_cells], None, length=iterations)[0]


class CVTArchive(Archive):
    """A centroidal Voronoi tessellation of the descriptor space into ``cells`` cells.

    Args:
      cells: number of cells (a positive int), or None with ``centroids``.
      bounds: ``(low, high)`` per descriptor dimension (finite, ``low < high``): where the
        k-means samples are drawn, and the plotting range.
      centroids: f[cells, k] given centroids (e.g. saved from an earlier run); else k-means.
      samples: uniform samples for k-means (default ``25 * cells``; pyribs' default is 100,000,
        a k-means that takes minutes on a CPU for 10,000 cells).
      iterations: Lloyd iterations.
      seed: the k-means samples' seed.
      qd_offset: subtracted from each elite's fitness in the QD-score.
    """

    def __init__(
        self,
        cells: int | None = None,
        bounds: Any = None,
        centroids: Any = None,
        samples: int | None = None,
        iterations: int = 20,
        seed: int = 0,
        qd_offset: float = 0.0,
    ):
        if bounds is None:
            raise ValueError("a CVTArchive needs bounds: one (low, high) pair per descriptor dimension")
        self.bounds = _check_bounds(bounds)
        self.qd_offset = float(qd_offset)
        k = self.descriptor_dim
        if centroids is not None:
            centroids = np.asarray(centroids, np.float32)
            if centroids.ndim != 2 or centroids.shape[1] != k or centroids.shape[0] < 1:
                raise ValueError(
                    f"centroids must have shape (cells, {k}) (one row per cell), got {centroids.shape}"
                )
            if not np.all(np.isfinite(centroids)):
                raise ValueError("centroids must be finite")
            if cells is not None and cells != centroids.shape[0]:
                raise ValueError(f"cells={cells} but {centroids.shape[0]} centroids were given")
            self.n_cells = int(centroids.shape[0])
            self._check_size(k + 3, "descriptor + fitness values")
            self.centroids = centroids
            return
        if isinstance(cells, bool) or not isinstance(cells, int | np.integer) or cells < 1:
            raise ValueError(f"cells must be a positive int (the number of centroids), got {cells!r}")
        samples = 25 * int(cells) if samples is None else samples
        for name, value in (("samples", samples), ("iterations", iterations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if samples < cells:
            raise ValueError(f"samples ({samples}) must be at least cells ({cells}) for k-means")
        self.n_cells = int(cells)
        self._check_size(k + 3, "descriptor + fitness values")
        with jax.ensure_compile_time_eval():  # concrete even when built inside a jit trace
            key = jax.random.key(seed)
            low, high = jnp.asarray(self.low), jnp.asarray(self.high)
            self.centroids = np.asarray(kmeans(key, low, high, self.n_cells, samples, iterations))

    def __repr__(self) -> str:
        return f"CVTArchive(cells={self.n_cells}, bounds={self.bounds}, qd_offset={self.qd_offset})"

    def index(self, descriptors: Array) -> Array:
        return nearest(descriptors, jnp.asarray(self.centroids))

    def cell_centers(self) -> np.ndarray:
        return self.centroids

    def config(self) -> dict[str, Any]:
        return {
            "kind": "cvt",
            "bounds": [list(b) for b in self.bounds],
            "centroids": self.centroids.tolist(),
            "qd_offset": self.qd_offset,
        }

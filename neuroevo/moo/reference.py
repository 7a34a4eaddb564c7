"""Reference directions on the unit simplex, and distances of points to them.

Das & Dennis (1998), "Normal-boundary intersection: a new method for generating
the Pareto surface in nonlinear multicriteria optimization problems": every
vector ``(k_1, ..., k_M) / p`` of non-negative integers summing to ``p``, i.e.
``C(p + M - 1, M - 1)`` directions. NSGA-III (Deb & Jain 2014) spreads its
population along them; the true fronts of DTLZ1-4 are sampled from them.

The directions are numpy arrays (static data, built on the host).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def _check(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def das_dennis(n_objectives: int, n_partitions: int) -> np.ndarray:
    """The ``C(p + M - 1, M - 1)`` Das-Dennis directions, ``float64[count, M]``, rows summing to 1.

    Args:
      n_objectives: ``M >= 1``.
      n_partitions: ``p >= 1``, the divisions of each axis.
    """
    m = _check("n_objectives", n_objectives, 1)
    p = _check("n_partitions", n_partitions, 1)
    count = math.comb(p + m - 1, m - 1)
    if count > 10_000_000:
        raise ValueError(
            f"{count} reference directions for n_objectives={m}, n_partitions={p}: choose fewer partitions"
        )
    # Stars and bars: the M - 1 bar positions among p + M - 1 slots.
    bars = np.array(list(itertools.combinations(range(p + m - 1), m - 1)), np.int64).reshape(count, m - 1)
    edges = np.concatenate([np.full((count, 1), -1), bars, np.full((count, 1), p + m - 1)], axis=1)
    return (np.diff(edges, axis=1) - 1).astype(np.float64) / p


def partitions_for(n_objectives: int, max_directions: int) -> int:
    """The largest ``p`` whose Das-Dennis set has at most ``max_directions`` directions (at least 1)."""
    m = _check("n_objectives", n_objectives, 1)
    limit = _check("max_directions", max_directions, 1)
    p = 1
    while math.comb(p + m, m - 1) <= limit and p < 10_000:
        p += 1
    return p


def perpendicular_distances(points: Array, directions: Array) -> Array:
    """``D[i, j]``: the distance from ``points[i]`` to the line through the origin along ``directions[j]``."""
    u = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    along = points @ u.T  # (n, R) projections
    foot = along[:, :, None] * u[None, :, :]  # (n, R, M): the nearest point of each line
    return jnp.linalg.norm(points[:, None, :] - foot, axis=-1)

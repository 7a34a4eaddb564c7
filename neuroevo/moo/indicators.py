"""Quality indicators of a set of points: hypervolume (exact, 2 and 3 objectives) and IGD.

Objectives are maximised, as everywhere in neuroevo. The hypervolume of a set
is the measure of the region its points dominate and that dominates the
reference point (Zitzler & Thiele 1998): the reference point must be worse than
every point in every objective. For a problem stated as minimisation (ZDT,
DTLZ, pymoo), negate both the points and the reference point.

Both run on device in fixed shapes, with an optional ``mask`` of the members of
the set (a population's non-dominated members, say), so they can be per-generation
metrics inside a compiled run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.moo import ordering
from neuroevo.moo.dominance import check_objectives
from neuroevo.shaping import sanitize

Array = jax.Array


def _concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def check_reference(points: Array, reference: Array, mask: Array | None = None) -> None:
    """Raise ``ValueError`` unless ``reference`` is worse than every (masked) point in every objective.

    Only concrete values are checked (under ``jit`` nothing is known yet); names
    the first offending point, its values and the reference point.
    """
    if not _concrete(points, reference, mask):
        return
    p = np.asarray(points, np.float64)
    r = np.asarray(reference, np.float64)
    keep = np.ones(p.shape[0], bool) if mask is None else np.asarray(mask, bool)
    bad = keep & ~np.all(p > r, axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"the hypervolume reference point {r.tolist()} is not worse than point {i} "
            f"{p[i].tolist()} in every objective ({int(bad.sum())} point(s) of {int(keep.sum())}): "
            "objectives are maximised, so give a reference point below every point of the front "
            "(or mask those points out)"
        )


def hypervolume(
    points: Array, reference: Array, mask: Array | None = None, *, chunk_size: int = 512
) -> Array:
    """The exact hypervolume dominated by ``points`` (2 or 3 objectives, maximised).

    Args:
      points: ``(n, M)`` objective values, ``M`` in {2, 3}. Dominated points and
        duplicates are allowed (they add nothing).
      reference: ``(M,)``, worse than every point in every objective. With
        concrete arguments a point that is not strictly better raises
        ``ValueError``; inside ``jit`` such points add only the part of their box
        beyond the reference point, i.e. nothing.
      mask: ``bool[n]``, the points of the set (default all).
      chunk_size: slices computed at once in 3-D (memory ``chunk_size * n``).

    Returns:
      A float32 scalar. Two objectives: one sort and one cumulative maximum,
      O(n log n). Three: slices along the third objective, each an exact 2-D
      hypervolume, O(n^2) time.
    """
    points = check_objectives(points, "points")
    n, m = points.shape
    reference = jnp.asarray(reference)
    if reference.shape != (m,):
        raise ValueError(
            f"the reference point has shape {reference.shape}, but the points have {m} objectives: "
            f"give shape ({m},)"
        )
    if m not in (2, 3):
        raise ValueError(
            f"hypervolume is exact for 2 or 3 objectives, got {m} (points of shape {points.shape})"
        )
    if mask is not None and jnp.shape(mask) != (n,):
        raise ValueError(f"mask has shape {jnp.shape(mask)}, but there are {n} points: give shape ({n},)")
    check_reference(points, reference, mask)
    r = reference.astype(jnp.float32)
    p = jnp.maximum(sanitize(points.astype(jnp.float32)), r)  # boxes beyond the reference only
    if mask is not None:
        p = jnp.where(jnp.asarray(mask, bool)[:, None], p, r)
    if m == 2:
        return _area(p[:, 0] - r[0], p[:, 1] - r[1])
    return _volume(p - r, chunk_size)


def _strips(x: Array, y: Array) -> Array:
    """The area dominated by points ``(x, y) >= 0`` given in decreasing ``x`` (origin reference):
    each adds the strip ``x * (y - best y before it)``."""
    best = jnp.concatenate([jnp.zeros((1,), y.dtype), jax.lax.cummax(y)[:-1]])
    return jnp.sum(x * jnp.maximum(y - best, 0.0))


def _area(x: Array, y: Array) -> Array:
    """The area dominated by points ``(x, y) >= 0`` (origin reference)."""
    order = ordering.argsort(-x)
    return _strips(x[order], y[order])


def _volume(p: Array, chunk_size: int) -> Array:
    """The volume dominated by ``p >= 0`` (origin reference): slabs between consecutive third values."""
    n = p.shape[0]
    order = ordering.argsort(-p[:, 2])
    p = p[order]
    height = p[:, 2] - jnp.concatenate([p[1:, 2], jnp.zeros((1,), p.dtype)])
    # Slab i lies between the i-th and (i+1)-th highest points: its area is that of points 0..i.
    x_order = ordering.argsort(-p[:, 0])
    x, y, position = p[x_order, 0], p[x_order, 1], jnp.arange(n)[x_order]

    def slab(i: Array) -> Array:
        return _strips(x, jnp.where(position <= i, y, 0.0))

    areas = jax.lax.map(slab, jnp.arange(n), batch_size=min(chunk_size, n))
    return jnp.sum(areas * height)


def igd(points: Array, front: Array, mask: Array | None = None, *, chunk_size: int = 1024) -> Array:
    """Inverted generational distance: mean over ``front`` of the distance to the nearest point.

    Args:
      points: ``(n, M)`` the approximation set (objective values).
      front: ``(k, M)`` points of the true Pareto front, in the same convention.
      mask: ``bool[n]``, the points of the set (default all); with none, ``inf``.
      chunk_size: front points handled at once (memory ``chunk_size * n``).

    Returns:
      A float32 scalar (Coello & Reyes Sierra 2004; lower is better).
    """
    points = sanitize(check_objectives(points, "points")).astype(jnp.float32)
    front = check_objectives(front, "front").astype(jnp.float32)
    if front.shape[1] != points.shape[1]:
        raise ValueError(
            f"front has {front.shape[1]} objectives (shape {front.shape}), the points "
            f"{points.shape[1]} (shape {points.shape})"
        )
    keep = jnp.ones((points.shape[0],), bool) if mask is None else jnp.asarray(mask, bool)

    def nearest(z: Array) -> Array:
        d = jnp.sqrt(jnp.sum(jnp.square(points - z), axis=1))
        return jnp.min(jnp.where(keep & jnp.isfinite(d), d, jnp.inf))

    distances = jax.lax.map(nearest, front, batch_size=min(chunk_size, front.shape[0]))
    return jnp.mean(distances)

"""A novelty archive on device, and novelty as the mean distance to the k nearest neighbours.

Novelty search (Lehman & Stanley, "Abandoning Objectives: Evolution Through the
Search for Novelty Alone", Evolutionary Computation 19(2), 2011) scores a
behaviour descriptor ``b`` by its sparseness::

    novelty(b) = 1/k * sum_{j=1..k} dist(b, mu_j)

where ``mu_1..mu_k`` are its k nearest neighbours (Euclidean) among the archive
of past behaviours and, optionally, the current population (itself excluded).

The archive has a fixed capacity (a static shape) and a fill count. It is a ring
buffer: ``count`` counts every insertion ever made, entry ``i`` holds the
insertion ``i + capacity * m`` for the largest such ``m`` below ``count``, so
when it overflows the *newest* entries are kept and the oldest overwritten.
Which members enter each generation is the insertion policy of :func:`insert`:
the ``n`` most novel (``"novelty"``) or a uniform sample of ``n`` (``"random"``).
Non-finite descriptors are never inserted.

Distances are computed in chunks (``lax.map`` over query chunks, ``lax.scan``
over point chunks keeping a running top-k), so memory is
O(query_chunk * point_chunk * dim + queries * k): a 100k-entry archive against a
10k population never holds the 10^9 distance matrix.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

POLICIES = ("novelty", "random")


class Archive(NamedTuple):
    """``data`` f32[capacity, dim]; ``count`` int32[]: insertions so far (fill: ``min(count, capacity)``)."""

    data: jax.Array
    count: jax.Array

    @property
    def capacity(self) -> int:
        return self.data.shape[-2]

    @property
    def size(self) -> jax.Array:
        """Entries filled: ``min(count, capacity)``."""
        return jnp.minimum(self.count, self.capacity)

    @property
    def valid(self) -> jax.Array:
        """bool[capacity]: which rows hold a behaviour."""
        return jnp.arange(self.capacity) < self.count


def empty(capacity: int, dim: int) -> Archive:
    """An archive of ``capacity`` behaviours of ``dim`` numbers (both static), none filled."""
    for name, value in (("capacity", capacity), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"archive {name} must be a positive Python int (a static shape), got {value!r}")
    return Archive(jnp.zeros((capacity, dim), jnp.float32), jnp.zeros((), jnp.int32))


def add(archive: Archive, descriptors: jax.Array, mask: jax.Array | None = None) -> Archive:
    """Append the rows of ``descriptors`` (where ``mask``, and finite) in order, overwriting the oldest."""
    descriptors = jnp.asarray(descriptors, jnp.float32)
    keep = jnp.all(jnp.isfinite(descriptors), axis=-1)
    if mask is not None:
        keep = keep & mask
    slot = archive.count + jnp.cumsum(keep) - 1
    capacity = archive.capacity
    # Only the last `capacity` kept rows can survive; earlier ones would be overwritten anyway.
    survives = keep & (slot >= archive.count + jnp.sum(keep) - capacity)
    index = jnp.where(survives, slot % capacity, capacity)  # out of range: dropped
    data = archive.data.at[index].set(descriptors, mode="drop")
    return Archive(data, archive.count + jnp.sum(keep).astype(jnp.int32))


def insert(
    key: jax.Array,
    archive: Archive,
    descriptors: jax.Array,
    novelty: jax.Array,
    n: int,
    policy: str = "novelty",
) -> Archive:
    """Add ``n`` (static) of the population's descriptors: the most novel, or a random sample."""
    if policy not in POLICIES:
        raise ValueError(f"unknown archive policy {policy!r}; valid: {list(POLICIES)}")
    if n <= 0:
        return archive
    pop = descriptors.shape[0]
    n = min(n, pop)
    if policy == "novelty":
        score = jnp.where(jnp.isnan(novelty), -jnp.inf, novelty)
        chosen = jax.lax.top_k(score, n)[1]
    else:
        chosen = jax.random.choice(key, pop, (n,), replace=False)
    return add(archive, descriptors[chosen])


def _pad(x: jax.Array, multiple: int, value) -> jax.Array:
    extra = -x.shape[0] % multiple
    if not extra:
        return x
    return jnp.concatenate([x, jnp.full((extra,) + x.shape[1:], value, x.dtype)])


@partial(jax.jit, static_argnames=("k", "query_chunk", "point_chunk", "budget_bytes"))
def knn_distances(
    queries: jax.Array,
    points: jax.Array,
    k: int,
    *,
    valid: jax.Array | None = None,
    exclude: jax.Array | None = None,
    query_chunk: int | None = None,
    point_chunk: int | None = None,
    budget_bytes: int = 64 << 20,
) -> jax.Array:
    """f32[Q, k]: each query's k smallest Euclidean distances to ``points``, ascending.

    ``valid`` (bool[P]) masks points out; ``exclude`` (int[Q]) is a point index each
    query must skip (itself), -1 for none. Missing neighbours are ``inf``. Chunk sizes
    default so that one chunk's differences fit in ``budget_bytes``.
    """
    queries = jnp.asarray(queries, jnp.float32)
    points = jnp.asarray(points, jnp.float32)
    q, dim = queries.shape
    p = points.shape[0]
    valid = jnp.ones((p,), bool) if valid is None else valid
    valid = valid & jnp.all(jnp.isfinite(points), axis=-1)
    exclude = jnp.full((q,), -1, jnp.int32) if exclude is None else jnp.asarray(exclude, jnp.int32)
    qc = min(q, query_chunk or 1024)
    pc = min(p, point_chunk or max(1, budget_bytes // (4 * qc * max(dim, 1))))
    qs, ex = _pad(queries, qc, 0.0), _pad(exclude, qc, -1)
    ps, vs = _pad(points, pc, 0.0), _pad(valid, pc, False)
    ids = jnp.arange(ps.shape[0], dtype=jnp.int32)
    ps, vs, ids = (x.reshape((-1, pc) + x.shape[1:]) for x in (ps, vs, ids))

    def one_query_chunk(args):
        qx, qex = args

        def body(best, chunk):
            px, pv, pid = chunk
            d = jnp.sqrt(jnp.sum(jnp.square(qx[:, None, :] - px[None, :, :]), axis=-1))
            d = jnp.where(pv[None, :] & (pid[None, :] != qex[:, None]), d, jnp.inf)
            both = jnp.concatenate([best, d], axis=1)
            return -jax.lax.top_k(-both, k)[0], None

        init = jnp.full((qx.shape[0], k), jnp.inf, jnp.float32)
        return jax.lax.scan(body, init, (ps, vs, ids))[0]

    chunks = (qs.reshape(-1, qc, dim), ex.reshape(-1, qc))
    return jax.lax.map(one_query_chunk, chunks).reshape(-1, k)[:q]


def novelty(
    queries: jax.Array,
    archive: Archive,
    population: jax.Array | None = None,
    k: int = 10,
    *,
    query_chunk: int | None = None,
    point_chunk: int | None = None,
) -> jax.Array:
    """f32[Q]: mean distance of each query to its k nearest neighbours.

    Neighbours are the archive's filled entries and, if given, ``population``
    (then the queries *are* the population, ``Q == len(population)``, and each
    skips itself). With fewer than k neighbours the mean is over those there
    are; with none, novelty is 0.
    """
    points, valid, exclude = archive.data, archive.valid, None
    if population is not None:
        population = jnp.asarray(population, jnp.float32)
        points = jnp.concatenate([points, population])
        valid = jnp.concatenate([valid, jnp.ones((population.shape[0],), bool)])
        exclude = archive.capacity + jnp.arange(population.shape[0], dtype=jnp.int32)
    k = min(k, points.shape[0])
    d = knn_distances(
        queries, points, k, valid=valid, exclude=exclude, query_chunk=query_chunk, point_chunk=point_chunk
    )
    found = jnp.isfinite(d)
    total = jnp.sum(jnp.where(found, d, 0.0), axis=-1)
    return total / jnp.maximum(jnp.sum(found, axis=-1), 1)

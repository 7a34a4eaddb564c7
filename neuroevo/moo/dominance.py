"""Pareto dominance, non-dominated sorting and crowding distance, exact, on device.

Every objective is maximised and NaN is worst (:func:`neuroevo.shaping.sanitize`
maps it to -inf). Member ``a`` dominates ``b`` when it is at least as good in
every objective and better in one. The non-domination rank of a member is its
front: rank 0 is the non-dominated set, rank 1 is non-dominated once rank 0 is
removed, and so on (Deb, Pratap, Agarwal & Meyarivan 2002, "A fast and elitist
multiobjective genetic algorithm: NSGA-II", section III-A).

Two exact algorithms, both in fixed shapes (jit/vmap-able):

- **two objectives** (and one): members sorted once by the first objective;
  each front is then peeled off in O(n) with one cumulative maximum of the
  second objective (a member is dominated by a remaining member iff an earlier
  one in that order has a larger second objective, or an equal one and a
  strictly larger first). Memory O(n); time O(n log n + n * fronts).
- **three or more**: Deb's counting formulation. Each member's count of
  dominators is computed ``chunk_size`` rows at a time; each front, compacted,
  then subtracts its members' dominance rows, again a chunk at a time. Memory
  O(chunk_size * n * M), never the n x n matrix (a population of 20,000 would
  need 400 MB of it); time O(n^2 M) plus one chunk per front.

``n_stop`` stops once that many members are ranked (NSGA-II's survival needs
no more): the others get rank ``n``, worse than every ranked member.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from neuroevo.moo import ordering
from neuroevo.shaping import sanitize
from neuroevo.sorting import ordered_ints
from neuroevo.strategy import static_int

Array = jax.Array


def check_objectives(fitness: Array, name: str = "fitness") -> Array:
    """``fitness`` as an array of shape ``(n, M)``, else ``ValueError`` naming its shape."""
    fitness = jnp.asarray(fitness)
    if fitness.ndim != 2 or fitness.shape[0] < 1 or fitness.shape[1] < 1:
        raise ValueError(
            f"{name} must have shape (members, objectives), got shape {fitness.shape}: "
            "one row of objective values per member"
        )
    return fitness


def dominates(a: Array, b: Array) -> Array:
    """Whether ``a`` Pareto-dominates ``b`` (maximisation), over the last axis; broadcasts."""
    return jnp.all(a >= b, axis=-1) & jnp.any(a > b, axis=-1)


def non_dominated_ranks(fitness: Array, n_stop: int | None = None, chunk_size: int = 256) -> Array:
    """The non-domination rank (front index, 0 = non-dominated) of each row of ``fitness``.

    Args:
      fitness: ``(n, M)`` objective values, maximised; NaN is worst.
      n_stop: stop once at least this many members are ranked (static); the rest
        get rank ``n``. Default: rank every member.
      chunk_size: rows of the dominance relation computed at once for three or
        more objectives (static; memory ``chunk_size * n * M``).

    Returns:
      ``int32[n]`` ranks.
    """
    fitness = sanitize(check_objectives(fitness))
    n, m = fitness.shape
    stop = n if n_stop is None else static_int("n_stop", n_stop, 1, n, f"the {n} members")
    chunk = static_int("chunk_size", chunk_size, 1)
    if m <= 2:
        return _ranks_two(fitness if m == 2 else jnp.concatenate([fitness, fitness], axis=1), stop)
    return _ranks_counting(fitness, stop, min(chunk, n))


def _prefix_max(x: Array) -> Array:
    """Cumulative maximum: XLA's reduce-window (quick to compile) for small vectors, an
    associative scan (about 3x faster to run on the CPU) for large ones."""
    if x.shape[0] >= 4096:
        return jax.lax.associative_scan(jnp.maximum, x)
    return jax.lax.cummax(x)


def _ranks_two(fitness: Array, stop: int) -> Array:
    """Fronts of two objectives by peeling: one cumulative maximum per front."""
    n = fitness.shape[0]
    f = jnp.where(fitness == 0, jnp.zeros_like(fitness), fitness)  # -0.0 as 0.0
    index = jnp.arange(n, dtype=jnp.int32)
    order = ordering.lexsort(-f[:, 0], -f[:, 1])  # first desc, second desc
    first = f[order, 0]
    second = ordered_ints(f[order, 1])
    floor = jnp.array(jnp.iinfo(second.dtype).min, second.dtype)  # below every value (NaN excluded)
    starts = jnp.concatenate([jnp.ones((1,), bool), first[1:] != first[:-1]])
    group_start = jax.lax.cummax(jnp.where(starts, index, 0))

    def peel(carry):
        rank, k, count = carry
        remaining = rank == n
        best = _prefix_max(jnp.where(remaining, second, floor))  # best second objective so far
        before = jnp.concatenate([floor[None], best[:-1]])
        before_group = jnp.where(group_start > 0, best[group_start - 1], floor)
        # Dominated: an earlier remaining member with a larger second objective, or one with an
        # equal second objective and a strictly larger first (an equal pair does not dominate).
        front = remaining & (before <= second) & (before_group < second)
        return jnp.where(front, k, rank), k + 1, count + jnp.sum(front, dtype=jnp.int32)

    start = (jnp.full((n,), n, jnp.int32), jnp.int32(0), jnp.int32(0))
    rank, _, _ = jax.lax.while_loop(lambda c: c[2] < stop, peel, start)
    return jnp.zeros((n,), jnp.int32).at[order].set(rank)


def _ranks_counting(fitness: Array, stop: int, chunk: int) -> Array:
    """Deb's domination counts, computed and updated ``chunk`` rows at a time."""
    n = fitness.shape[0]
    index = jnp.arange(n, dtype=jnp.int32)

    def dominated_counts(rows: Array, valid: Array) -> Array:
        """How many of ``rows`` (the valid ones) dominate each member."""
        d = dominates(fitness[rows][:, None, :], fitness[None, :, :]) & valid[:, None]
        return jnp.sum(d, axis=0, dtype=jnp.int32)

    def subtract(counts: Array, members: Array, size: Array) -> Array:
        """``counts`` minus the dominance rows of ``members[:size]``, a chunk at a time."""
        padded = jnp.concatenate([members, jnp.zeros((chunk,), jnp.int32)])

        def body(carry):
            counts, j = carry
            rows = jax.lax.dynamic_slice(padded, (j,), (chunk,))
            valid = j + jnp.arange(chunk) < size
            return counts - dominated_counts(rows, valid), j + chunk

        return jax.lax.while_loop(lambda c: c[1] < size, body, (counts, jnp.int32(0)))[0]

    # Every member's number of dominators, then fronts peeled by subtracting their rows.
    counts = -subtract(jnp.zeros((n,), jnp.int32), index, jnp.int32(n))

    def peel(carry):
        rank, counts, k, count = carry
        front = (rank == n) & (counts == 0)
        size = jnp.sum(front, dtype=jnp.int32)
        members = jnp.nonzero(front, size=n, fill_value=0)[0].astype(jnp.int32)
        counts = subtract(counts, members, size)
        return jnp.where(front, k, rank), counts, k + 1, count + size

    start = (jnp.full((n,), n, jnp.int32), counts, jnp.int32(0), jnp.int32(0))
    return jax.lax.while_loop(lambda c: c[3] < stop, peel, start)[0]


def crowding_distance(fitness: Array, ranks: Array) -> Array:
    """Crowding distance of each member within its front (Deb et al. 2002, section III-B).

    For each objective the front is sorted; a member's distance adds the gap
    between its two neighbours divided by the front's range in that objective;
    the two ends get ``inf``. The sum is divided by the number of objectives
    (as pymoo does; the order is the same). An objective in which the whole
    front is equal adds nothing, and a front of one or two members is all
    ``inf``. NaN and -inf values add nothing where a gap is undefined.

    Args:
      fitness: ``(n, M)`` objective values, maximised.
      ranks: ``int32[n]`` fronts, e.g. from :func:`non_dominated_ranks`.

    Returns:
      ``float32[n]`` distances (larger is less crowded).
    """
    fitness = sanitize(check_objectives(fitness)).astype(jnp.float32)
    n, m = fitness.shape
    ranks = jnp.asarray(ranks, jnp.int32)
    index = jnp.arange(n, dtype=jnp.int32)
    front_size = jnp.zeros((n + 1,), jnp.int32).at[ranks].add(1)[ranks]
    total = jnp.zeros((n,), jnp.float32)
    inf = jnp.float32(jnp.inf)
    for j in range(m):
        order = ordering.lexsort(ranks, fitness[:, j])
        r, f = ranks[order], fitness[order, j]
        first = jnp.concatenate([jnp.ones((1,), bool), r[1:] != r[:-1]])
        last = jnp.concatenate([r[1:] != r[:-1], jnp.ones((1,), bool)])
        low = f[jax.lax.cummax(jnp.where(first, index, 0))]
        high = f[jax.lax.cummin(jnp.where(last, index, n - 1), reverse=True)]
        below = jnp.where(first, -inf, jnp.concatenate([f[:1], f[:-1]]))
        above = jnp.where(last, inf, jnp.concatenate([f[1:], f[-1:]]))
        gap = (above - below) / (high - low)
        gap = jnp.where(jnp.isnan(gap) | (high == low), 0.0, gap)
        total = total.at[order].add(gap)
    return jnp.where(front_size <= 2, inf, total / m)

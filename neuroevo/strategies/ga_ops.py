"""Genetic operators of the ``ga`` strategy, as small pure functions.

Selection (truncation, tournament), crossover (uniform, one-point, arithmetic),
self-adaptive mutation strength, mate choice by ideal-mate preferences, the
diversity metric, and the seed-chain lineage (Such et al. 2017's compact
encoding). Every function works on flat parameter vectors and is jit/vmap-able;
shapes (population, tournament size, lineage capacity) are static, floats may be
traced.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize

SELECTIONS = ("truncation", "tournament")
CROSSOVERS = (None, "uniform", "one_point", "arithmetic")


# --------------------------------------------------------------------------- #
# Selection.
# --------------------------------------------------------------------------- #


def uniform_parents(key: jax.Array, n: int, pool: int) -> jax.Array:
    """Truncation selection's draw: ``n`` parents uniformly from the ``pool`` survivors."""
    return jax.random.randint(key, (n,), 0, pool, jnp.int32)


def tournament(key: jax.Array, fitness: jax.Array, n: int, size: int) -> jax.Array:
    """``n`` tournaments of ``size`` entrants drawn with replacement; each returns its fittest.

    Ties go to the entrant drawn first; -inf (and NaN, via ``sanitize``) never beats a real value.
    """
    entrants = jax.random.randint(key, (n, size), 0, fitness.shape[0], jnp.int32)
    winner = jnp.argmax(sanitize(fitness)[entrants], axis=1)
    return jnp.take_along_axis(entrants, winner[:, None], axis=1)[:, 0]


# --------------------------------------------------------------------------- #
# Crossover: (key, a, b) -> child, on flat vectors. The key regenerates the child.
# --------------------------------------------------------------------------- #


def uniform_crossover(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Each gene from ``a`` or ``b`` with probability 1/2 (Syswerda 1989)."""
    return jnp.where(jax.random.bernoulli(key, 0.5, a.shape), a, b)


def one_point_crossover(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Genes ``[0, cut)`` from ``a`` and ``[cut, d)`` from ``b``, with ``cut ~ U{1..d-1}``."""
    d = a.shape[0]
    cut = jax.random.randint(key, (), 1, max(d, 2))
    return jnp.where(jnp.arange(d) < cut, a, b)


def arithmetic_crossover(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Whole arithmetic crossover ``alpha * a + (1 - alpha) * b``, ``alpha ~ U(0, 1)`` (Michalewicz 1996)."""
    alpha = jax.random.uniform(key, (), a.dtype)
    return alpha * a + (1 - alpha) * b


CROSSOVER_FNS = {
    "uniform": uniform_crossover,
    "one_point": one_point_crossover,
    "arithmetic": arithmetic_crossover,
}


# --------------------------------------------------------------------------- #
# Self-adaptive mutation strength and mate choice.
# --------------------------------------------------------------------------- #


def default_tau(dim: int) -> float:
    """Learning rate of the log-normal step-size mutation, ``1 / sqrt(2 sqrt(d))``.

    Schwefel's rule for self-adaptation (Schwefel 1977; Baeck & Schwefel 1993,
    "An overview of evolutionary algorithms for parameter optimization").
    """
    return 1.0 / (2.0 * dim**0.5) ** 0.5


def self_adapt(key: jax.Array, sigma: jax.Array, tau, floor=0.0) -> jax.Array:
    """Log-normal mutation of per-individual step sizes: ``sigma * exp(tau * N(0, 1))``."""
    z = jax.random.normal(key, sigma.shape, jnp.float32)
    return jnp.maximum(sigma * jnp.exp(jnp.asarray(tau, jnp.float32) * z), jnp.asarray(floor, jnp.float32))


def squared_distances(x: jax.Array, y: jax.Array) -> jax.Array:
    """``D[i, j] = |x_i - y_j|^2`` from a Gram matrix: memory O(n*m), not O(n*m*d)."""
    xx = jnp.sum(x * x, axis=1)
    yy = jnp.sum(y * y, axis=1)
    return jnp.maximum(xx[:, None] - 2.0 * (x @ y.T) + yy[None, :], 0.0)


def choose_mates(key: jax.Array, first: jax.Array, distances: jax.Array, candidates: int) -> jax.Array:
    """Mate choice: each chooser ``first[i]`` meets ``candidates`` members of the pool drawn
    uniformly and picks the one closest to its ideal mate.

    ``distances[p, c]`` is the (squared) distance from pool member ``p``'s ideal
    mate to pool member ``c``. Ties go to the candidate drawn first.
    """
    pool = distances.shape[1]
    drawn = jax.random.randint(key, (first.shape[0], candidates), 0, pool, jnp.int32)
    d = distances[first[:, None], drawn]
    closest = jnp.argmin(d, axis=1)
    return jnp.take_along_axis(drawn, closest[:, None], axis=1)[:, 0]


def diversity(x: jax.Array) -> jax.Array:
    """Mean Euclidean distance of the rows of ``x`` (members) to their centroid."""
    x = x.astype(jnp.float32)
    return jnp.mean(jnp.linalg.norm(x - jnp.mean(x, axis=0), axis=1))


# --------------------------------------------------------------------------- #
# Seed-chain lineage (Such et al. 2017): x = x0 + sum_k sigma_k * eps(seed_k).
# --------------------------------------------------------------------------- #


class Lineage(NamedTuple):
    """The mutations from x0 to one member, oldest first (fixed capacity, a static shape).

    ``length`` counts every mutation, also those past the capacity: a lineage with
    ``length > capacity`` has overflowed and can no longer rebuild its member.
    """

    seeds: jax.Array  # uint32[..., L, 2]: raw threefry key data of each mutation's noise
    sigmas: jax.Array  # f32[..., L]: each mutation's step
    length: jax.Array  # int32[...]


def empty_lineage(capacity: int, batch: tuple[int, ...] = ()) -> Lineage:
    return Lineage(
        seeds=jnp.zeros(batch + (capacity, 2), jnp.uint32),
        sigmas=jnp.zeros(batch + (capacity,), jnp.float32),
        length=jnp.zeros(batch, jnp.int32),
    )


def extend_lineage(lineage: Lineage, seed: jax.Array, scale: jax.Array) -> Lineage:
    """Append one mutation (``scale != 0``; an unmutated copy such as the elite appends nothing)."""
    capacity = lineage.sigmas.shape[0]
    mutated = scale != 0
    write = mutated & (lineage.length < capacity)
    i = jnp.minimum(lineage.length, capacity - 1)
    return Lineage(
        seeds=lineage.seeds.at[i].set(jnp.where(write, seed.astype(jnp.uint32), lineage.seeds[i])),
        sigmas=lineage.sigmas.at[i].set(jnp.where(write, scale.astype(jnp.float32), lineage.sigmas[i])),
        length=lineage.length + mutated.astype(jnp.int32),
    )


def mutate(base: jax.Array, scale: jax.Array, noise: jax.Array, exact: bool = False) -> jax.Array:
    """One Deep-GA mutation, ``base + scale * noise``.

    ``exact`` fences the noise off (``optimization_barrier``) so that XLA cannot
    fuse its generator into the update: the update then compiles to the same code
    (with the same multiply-add contraction) in ``decode`` and in a lineage's
    replay, and a rebuilt member is bit-for-bit the evolved one.
    """
    if exact:
        noise = jax.lax.optimization_barrier(noise)
    return base + scale.astype(base.dtype) * noise

"""Operators shared by the multi-objective genetic algorithms (``nsga2``, ``nsga3``).

- The genome: real vectors in a box (``bounds``) or discrete genes (``space``,
  :mod:`neuroevo.space`), the initial population drawn uniformly from either,
  and ``decode`` (a member inside its bounds, shaped like ``x0``).
- Variation of real vectors: simulated binary crossover (SBX; Deb & Agrawal
  1995, "Simulated binary crossover for continuous search space") and
  polynomial mutation (Deb & Goyal 1996), both in their bounded forms as pymoo
  0.6 implements them (Deb & Deb 2014), with the same parameters: SBX's ``eta``,
  probability per pair and per variable (the two children exchange each
  variable with probability 1/2); PM's ``eta`` and probability per variable
  (default ``1 / n``). Children are clipped into the box.
- Variation of discrete genes: uniform crossover and per-gene mutation
  (:func:`neuroevo.space.uniform_crossover`, :func:`neuroevo.space.mutate`).
- Selection: binary tournaments whose entrants come from random permutations
  (every member enters equally often), won by lower rank, then larger crowding
  distance, then a coin.
- The multi-objective state's summary: the best worst-objective member so far,
  the hypervolume of the non-dominated parents, and :func:`pareto_front`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import moo, rng
from neuroevo import space as discrete
from neuroevo.rng import Stream
from neuroevo.shaping import sanitize
from neuroevo.strategy import (
    check_fitness,
    check_x0,
    population,
    scalar_fitness,
    static_int,
    unravel_like,
    update_best_member,
)

PyTree = Any
Array = jax.Array


# --------------------------------------------------------------------------- #
# The genome: a box of real vectors, or a discrete space.
# --------------------------------------------------------------------------- #


class Genome(NamedTuple):
    """What is evolved (static): real vectors in ``bounds = (low, high)`` or ``space``'s genes."""

    bounds: tuple[Any, Any] | None
    space: discrete.Space | None


def genome(name: str, bounds: Any, space: Any) -> Genome:
    """Check a strategy's ``bounds``/``space`` arguments (exactly one is needed)."""
    if space is not None:
        if bounds is not None:
            raise ValueError(f"{name}: give bounds= (real genes) or space= (discrete genes), not both")
        return Genome(None, discrete.check_space(space))
    if bounds is None:
        raise ValueError(
            f"{name} needs bounds=(low, high) for real genes (SBX and polynomial mutation work in a box; "
            "scalars or arrays shaped like x0), or space= for discrete genes (ne.space.categorical(...))"
        )
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"bounds must be a pair (low, high), got {bounds!r}")
    low, high = bounds
    lows, highs = jax.tree_util.tree_leaves(low), jax.tree_util.tree_leaves(high)
    if any(isinstance(b, jax.core.Tracer) for b in lows + highs):
        raise ValueError("bounds must be concrete numbers or arrays (static), not traced values")
    lows = lows * len(highs) if len(lows) == 1 else lows  # a scalar side pairs with every array
    highs = highs * len(lows) if len(highs) == 1 else highs
    if len(lows) != len(highs):
        raise ValueError(
            f"bounds: low and high have different structures ({len(lows)} vs {len(highs)} arrays)"
        )
    for lo, hi in zip(lows, highs, strict=True):
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        try:
            lo, hi = np.broadcast_arrays(lo, hi)
        except ValueError:
            raise ValueError(f"bounds: low and high have shapes {lo.shape} and {hi.shape}") from None
        bad = np.flatnonzero(~(lo < hi))
        if bad.size:
            i = int(bad[0])
            where = f" at index {tuple(int(k) for k in np.unravel_index(i, lo.shape))}" if lo.ndim else ""
            raise ValueError(f"bounds need low < high, got low={lo.flat[i]} >= high={hi.flat[i]}{where}")
    return Genome((low, high), None)


def flat_bounds(bounds: tuple[Any, Any], x0: PyTree) -> tuple[np.ndarray, np.ndarray]:
    """``bounds`` as two flat vectors like ``ravel(x0)``: each side a scalar, or a pytree (array)
    shaped like ``x0``; else ``ValueError`` naming both shapes."""
    flat, _ = check_x0(x0)
    leaves, treedef = jax.tree_util.tree_flatten(x0)
    out = []
    for side, value in zip(("low", "high"), bounds, strict=True):
        if np.ndim(value) == 0 and not isinstance(value, (dict, list, tuple)):
            out.append(np.full(flat.shape, float(value)))
            continue
        parts, structure = jax.tree_util.tree_flatten(value)
        shapes = [np.shape(p) for p in parts]
        wanted = [np.shape(leaf) for leaf in leaves]
        if structure != treedef or shapes != wanted:
            raise ValueError(
                f"bounds' {side} has shape {shapes[0] if len(shapes) == 1 else shapes}, but x0 has shape "
                f"{wanted[0] if len(wanted) == 1 else wanted}: give scalars or arrays shaped like x0"
            )
        out.append(np.concatenate([np.ravel(np.asarray(p, np.float64)) for p in parts]))
    return out[0], out[1]


def start(key: Array, genome: Genome, x0: PyTree, n: int) -> tuple[Array, Array | None, Array | None, PyTree]:
    """``(population, low, high, a member like x0)``: ``n`` members drawn uniformly from the box
    (flat, in x0's dtype) or from the space (``int32`` genes; ``low``/``high`` are then None)."""
    if genome.space is not None:
        discrete.check_genotype(genome.space, x0)
        members = discrete.sample(key, genome.space, n)
        return members, None, None, members[0]
    flat, unravel = check_x0(x0)
    low, high = (jnp.asarray(b, flat.dtype) for b in flat_bounds(genome.bounds, x0))
    members = low + rng.uniform(key, (n, flat.shape[0])).astype(flat.dtype) * (high - low)
    return members, low, high, unravel(jnp.clip(flat, low, high))


def decode(genome: Genome, state: Any, genotype: Array) -> PyTree:
    """One member: discrete genes clipped into the space, or a real vector clipped into the box and
    shaped like x0 (``state.best_solution``)."""
    if genome.space is not None:
        return discrete.clip(genome.space, genotype)
    return unravel_like(state.best_solution)(jnp.clip(genotype, state.low, state.high))


# --------------------------------------------------------------------------- #
# Variation.
# --------------------------------------------------------------------------- #


class Variation(NamedTuple):
    """Crossover and mutation parameters (floats may be traced)."""

    crossover_rate: Any  # probability that a pair is crossed
    crossover_eta: Any  # SBX distribution index
    crossover_gene_rate: Any  # per variable: SBX applied / genes exchanged (uniform crossover)
    mutation_eta: Any  # polynomial mutation's distribution index
    mutation_rate: Any  # per variable; None = 1 / n


def _power(x: Array, p) -> Array:
    """``x ** p`` for ``x >= 0`` and ``p > 0``, as ``exp(p log x)`` (several times faster than
    XLA's general ``pow`` on the CPU)."""
    return jnp.exp(p * jnp.log(x))


def sbx(draw: Stream, a: Array, b: Array, low: Array, high: Array, eta, gene_rate) -> tuple[Array, Array]:
    """Simulated binary crossover of parent rows ``a`` and ``b`` (bounded form), two children."""
    cross = (draw.uniform(a.shape) < gene_rate) & (jnp.abs(a - b) > 1e-14) & (high > low)
    y1, y2 = jnp.minimum(a, b), jnp.maximum(a, b)
    delta = jnp.where(cross, y2 - y1, 1.0)
    u = draw.uniform(a.shape, a.dtype)
    power = 1.0 / (eta + 1.0)

    def spread(beta):  # beta >= 1, so every base below is positive
        alpha = 2.0 - _power(beta, -(eta + 1.0))
        return jnp.where(u <= 1.0 / alpha, _power(u * alpha, power), _power(1.0 / (2.0 - u * alpha), power))

    c1 = 0.5 * ((y1 + y2) - spread(1.0 + 2.0 * (y1 - low) / delta) * delta)
    c2 = 0.5 * ((y1 + y2) + spread(1.0 + 2.0 * (high - y2) / delta) * delta)
    swap = draw.uniform(a.shape) < 0.5
    first = jnp.where(cross, jnp.where(swap, c2, c1), a)
    second = jnp.where(cross, jnp.where(swap, c1, c2), b)
    return jnp.clip(first, low, high), jnp.clip(second, low, high)


def polynomial_mutation(draw: Stream, x: Array, low: Array, high: Array, eta, rate) -> Array:
    """Polynomial mutation (bounded form): each variable with probability ``rate``."""
    hit = (draw.uniform(x.shape) < rate) & (high > low)
    span = jnp.where(high > low, high - low, 1.0)
    u = draw.uniform(x.shape, x.dtype)
    power = 1.0 / (eta + 1.0)
    # Every base is >= 0 (the clipped distances to the bounds) or >= 1 (the bracketed sums).
    near_low = _power(jnp.clip((high - x) / span, 0.0, 1.0), eta + 1.0)  # (1 - (x - low) / span)^(eta + 1)
    near_high = _power(jnp.clip((x - low) / span, 0.0, 1.0), eta + 1.0)
    below = _power(2.0 * u + (1.0 - 2.0 * u) * near_low, power) - 1.0
    above = 1.0 - _power(2.0 * (1.0 - u) + 2.0 * (u - 0.5) * near_high, power)
    y = jnp.clip(x + jnp.where(u <= 0.5, below, above) * span, low, high)
    return jnp.where(hit, y, x)


def offspring(
    draw: Stream, genome: Genome, variation: Variation, state: Any, a: Array, b: Array, n: int
) -> Array:
    """``n`` children of the parent pairs ``(a[i], b[i])`` (two per pair, then cut to ``n``)."""
    genes = a.shape[1]
    rate = 1.0 / genes if variation.mutation_rate is None else variation.mutation_rate
    crossed = draw.uniform((a.shape[0], 1)) < variation.crossover_rate
    if genome.space is not None:
        c1, c2 = discrete.uniform_crossover(draw, a, b, variation.crossover_gene_rate)
    else:
        c1, c2 = sbx(
            draw, a, b, state.low, state.high, variation.crossover_eta, variation.crossover_gene_rate
        )
    children = jnp.concatenate([jnp.where(crossed, c1, a), jnp.where(crossed, c2, b)])[:n]
    if genome.space is not None:
        return discrete.mutate(draw, genome.space, children, rate)
    return polynomial_mutation(draw, children, state.low, state.high, variation.mutation_eta, rate)


def check_variation(name: str, variation: Variation) -> Variation:
    """Concrete rates in [0, 1] and distribution indices >= 0, else ``ValueError`` naming the value."""
    for field in ("crossover_rate", "crossover_gene_rate", "mutation_rate"):
        value = getattr(variation, field)
        if value is not None and not isinstance(value, jax.core.Tracer) and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name}: {field} must be in [0, 1], got {value}")
    for field in ("crossover_eta", "mutation_eta"):
        value = getattr(variation, field)
        if not isinstance(value, jax.core.Tracer) and not float(value) >= 0.0:
            raise ValueError(f"{name}: {field} must be >= 0, got {value}")
    return variation


# --------------------------------------------------------------------------- #
# Selection.
# --------------------------------------------------------------------------- #


def tournament(draw: Stream, rank: Array, crowding: Array, n: int) -> Array:
    """``n`` binary tournaments: lower rank wins, then larger crowding distance, then a coin.

    Entrants come from random permutations of the members (pymoo's scheme), so
    each member enters about ``2n / size`` tournaments. With equal ranks and
    crowding (``nsga3``'s random mating) the coin alone decides.
    """
    size = rank.shape[0]
    copies = math.ceil(2 * n / size)
    order = moo.ordering.permutation(draw.words((copies, size)))  # one random permutation per row
    a, b = order.reshape(-1)[: 2 * n].reshape(n, 2).T
    better = (rank[a] < rank[b]) | ((rank[a] == rank[b]) & (crowding[a] > crowding[b]))
    tie = (rank[a] == rank[b]) & (crowding[a] == crowding[b])
    return jnp.where(better | (tie & (draw.uniform((n,)) < 0.5)), a, b).astype(jnp.int32)


# --------------------------------------------------------------------------- #
# The steps every multi-objective GA shares.
# --------------------------------------------------------------------------- #


def start_fields(key: Array, genome: Genome, x0: PyTree, popsize: int, m: int, ref_point) -> dict[str, Any]:
    """The shared state fields at ``init``: a uniform initial population (not yet evaluated: its
    fitness is -inf), rank 0, no best yet, generation 0, the box and (given ``ref_point``) a
    hypervolume of 0."""
    members, low, high, like = start(key, genome, x0, popsize)
    return dict(
        population=members,
        fitness=jnp.full((popsize, m), -jnp.inf, jnp.float32),
        rank=jnp.zeros((popsize,), jnp.int32),
        best_solution=like,
        best_fitness=jnp.array(-jnp.inf, jnp.float32),
        generation=jnp.zeros((), jnp.int32),
        low=low,
        high=high,
        hypervolume=None if ref_point is None else jnp.zeros((), jnp.float32),
    )


def children(
    key: Array, genome: Genome, variation: Variation, state: Any, crowding: Array, popsize: int
) -> Array:
    """``ask``'s genotypes: children of tournament winners (by rank, then ``crowding``), or in the
    first generation the initial population itself (evaluated first, as pymoo does)."""
    draw = Stream(key)
    chosen = tournament(draw, state.rank, crowding, 2 * ((popsize + 1) // 2))
    parents = state.population[chosen]
    kids = offspring(draw, genome, variation, state, parents[0::2], parents[1::2], popsize)
    return jnp.where(state.generation == 0, state.population, kids)


def merge(decode_fn, state: Any, genotypes: Array, fitness: Array, m: int) -> tuple[Array, Array, dict]:
    """``tell``'s start: parents and children together, ``(members, objectives, best fields)``.

    ``fitness`` is checked against ``(popsize, m)`` and NaN becomes -inf.
    """
    popsize = state.population.shape[0]
    fitness = sanitize(check_fitness(fitness, popsize, n_objectives=m)).astype(jnp.float32)
    best_solution, best_fitness = best_so_far(decode_fn, state, genotypes, fitness)
    members = jnp.concatenate([state.population, genotypes.astype(state.population.dtype)])
    objectives = jnp.concatenate([state.fitness, fitness])
    return members, objectives, dict(best_solution=best_solution, best_fitness=best_fitness)


def survivors_fields(members: Array, objectives: Array, rank: Array, index: Array, ref_point) -> dict:
    """The shared state fields after ``tell`` for the survivors ``index`` of the merged population."""
    fitness, rank = objectives[index], rank[index]
    return dict(
        population=members[index],
        fitness=fitness,
        rank=rank,
        hypervolume=front_hypervolume(fitness, rank, ref_point),
    )


# --------------------------------------------------------------------------- #
# The state's summary.
# --------------------------------------------------------------------------- #


def check_reference_point(ref_point: Any, n_objectives: int) -> np.ndarray | None:
    """``ref_point`` as a float vector of ``n_objectives`` (or None), else ``ValueError``."""
    if ref_point is None:
        return None
    ref = np.asarray(ref_point, np.float64)
    if ref.shape != (n_objectives,) or not np.all(np.isfinite(ref)):
        raise ValueError(
            f"ref_point must be {n_objectives} finite numbers (one per objective, maximised: below every "
            f"point of interest), got {ref_point!r}"
        )
    if n_objectives not in (2, 3):
        raise ValueError(
            f"ref_point: the hypervolume is exact for 2 or 3 objectives, got n_objectives={n_objectives}"
        )
    return ref


def front_hypervolume(fitness: Array, rank: Array, ref_point: np.ndarray | None) -> Array | None:
    """The hypervolume of the non-dominated rows (rank 0), or None without a reference point."""
    if ref_point is None:
        return None
    return moo.hypervolume(fitness, jnp.asarray(ref_point, jnp.float32), rank == 0)


def best_so_far(decode_fn, state: Any, genotypes: Any, fitness: Array) -> tuple[PyTree, Array]:
    """``(best_solution, best_fitness)`` updated with this generation: the best worst-objective member."""
    return update_best_member(decode_fn, state, genotypes, scalar_fitness(fitness))


def front_metrics(state: Any) -> dict[str, Array]:
    """``front_size`` (non-dominated parents) and ``hypervolume`` (given a reference point)."""
    metrics = {"front_size": jnp.sum(state.rank == 0)}
    if state.hypervolume is not None:
        metrics["hypervolume"] = state.hypervolume
    return metrics


def pareto_front(strategy, state: Any) -> tuple[PyTree, Array, Array]:
    """The current non-dominated set of a multi-objective state, in fixed shapes.

    Returns ``(solutions, fitness, mask)``: every parent decoded (leading axis
    ``popsize``), their objectives ``(popsize, n_objectives)`` and ``mask``, true
    for the non-dominated ones with finite objectives. On the host,
    ``fitness[mask]`` is the front.
    """
    solutions = population(strategy, state, state.population)
    mask = (state.rank == 0) & jnp.all(jnp.isfinite(state.fitness), axis=1)
    return solutions, state.fitness, mask


def check_objective_count(name: str, n_objectives: Any) -> int:
    return static_int(f"{name}: n_objectives", n_objectives, 1)

"""NSGA-III: "An evolutionary many-objective optimization algorithm using
reference-point-based nondominated sorting approach, part I", Deb & Jain, IEEE
Transactions on Evolutionary Computation 18(4), 2014.

NSGA-II's loop with another survival for the last front that fits (the paper's
Algorithm 1), every objective maximised (minimised internally as ``f = -fitness``):

    Z = Das-Dennis reference directions (H of them; population N >= H)
    for t = 0, 1, 2, ...
        Q_t = N children of random parents (SBX, polynomial mutation)
        R_t = P_t + Q_t;  S_t = the fronts F_1 .. F_l of R_t until |S_t| >= N
        normalise S_t (Algorithm 2): ideal point z* (the minimum so far), extreme
            points (minimal achievement scalarising function along each axis),
            the hyperplane through them and its intercepts a (falling back to
            the front's worst point when it is degenerate): f_n = (f - z*) / (a - z*)
        associate each member with its nearest reference line (Algorithm 3)
        P_{t+1} = F_1 .. F_{l-1}, then members of F_l by niching (Algorithm 4):
            repeatedly take a reference direction with the fewest members so far
            (ties at random) that still has candidates in F_l; add its candidate
            nearest to the line if it has none yet, else a random one

The normalisation follows pymoo 0.6's (the ideal, worst and extreme points are
kept across generations in the state). Candidates are picked one at a time in a
``while_loop`` on device. ``ask``, the state, the non-dominated set and
``best_fitness`` are as in :mod:`neuroevo.strategies.nsga2`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import moo, rng
from neuroevo.strategies import moo_ops as ops
from neuroevo.strategy import Strategy, check_popsize, static_int

PyTree = Any
_FAR = 1e30  # stands for an objective that is not finite, in the normalisation


class NSGA3State(NamedTuple):
    population: jax.Array  # (N, n) parents: floats in the box, or int32 genes
    fitness: jax.Array  # f32[N, M] (NaN as -inf); -inf before the first tell
    rank: jax.Array  # int32[N]: non-domination rank (0 = non-dominated)
    best_solution: PyTree
    best_fitness: jax.Array  # f32[]: best worst-objective value so far
    generation: jax.Array
    ideal: jax.Array  # f32[M]: the smallest minimised objectives seen (z*)
    worst: jax.Array  # f32[M]: the largest seen
    extremes: jax.Array  # f32[M, M]: the extreme points, one per axis
    low: jax.Array | None = None
    high: jax.Array | None = None
    hypervolume: jax.Array | None = None

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """``front_size`` and (given ``ref_point``) ``hypervolume``, logged per generation."""
        return ops.front_metrics(self)


def nsga3(
    popsize: int = 92,
    bounds: tuple[Any, Any] | None = None,
    space=None,
    n_objectives: int = 3,
    n_partitions: int | None = None,
    reference_directions=None,
    crossover_rate: float = 1.0,
    crossover_eta: float = 30.0,
    crossover_gene_rate: float = 0.5,
    mutation_eta: float = 20.0,
    mutation_rate: float | None = None,
    ref_point=None,
    chunk_size: int = 256,
) -> Strategy:
    """Build NSGA-III.

    Args:
      popsize: N (static), at least the number of reference directions.
      bounds, space: real genes in a box or discrete genes, as for ``nsga2``.
      n_objectives: M (static).
      n_partitions: Das-Dennis divisions ``p`` (``C(p + M - 1, M - 1)`` directions);
        default the largest with at most ``popsize`` directions (12 for M = 3, N = 92).
      reference_directions: ``(H, M)`` directions instead (non-negative rows).
      crossover_rate, crossover_eta, crossover_gene_rate, mutation_eta, mutation_rate:
        SBX and polynomial mutation, as for ``nsga2`` (the paper's eta_c = 30,
        eta_m = 20, crossover always, mutation 1 / n per variable).
      ref_point: ``(M,)`` hypervolume reference point (maximised; M = 2 or 3).
      chunk_size: rows of the dominance relation at once (static).
    """
    check_popsize(popsize)
    genome = ops.genome("nsga3", bounds, space)
    m = ops.check_objective_count("nsga3", n_objectives)
    variation = ops.check_variation(
        "nsga3",
        ops.Variation(crossover_rate, crossover_eta, crossover_gene_rate, mutation_eta, mutation_rate),
    )
    ref = ops.check_reference_point(ref_point, m)
    directions = _directions(m, popsize, n_partitions, reference_directions)

    def init(key: jax.Array, x0: PyTree) -> NSGA3State:
        return NSGA3State(
            ideal=jnp.full((m,), _FAR, jnp.float32),
            worst=jnp.full((m,), -_FAR, jnp.float32),
            extremes=jnp.full((m, m), _FAR, jnp.float32),
            **ops.start_fields(key, genome, x0, popsize, m, ref),
        )

    def ask(key: jax.Array, state: NSGA3State) -> tuple[jax.Array, NSGA3State]:
        flat = jnp.zeros((popsize,), jnp.float32)  # equal ranks and crowding: random mating
        return ops.children(
            key, genome, variation, state._replace(rank=flat.astype(jnp.int32)), flat, popsize
        ), state

    def decode(state: NSGA3State, genotype: jax.Array) -> PyTree:
        return ops.decode(genome, state, genotype)

    def tell(key, state: NSGA3State, genotypes, fitness, descriptors=None) -> NSGA3State:
        del descriptors
        members, objectives, best = ops.merge(decode, state, genotypes, fitness, m)
        rank = moo.non_dominated_ranks(objectives, n_stop=popsize, chunk_size=chunk_size)
        f = jnp.where(jnp.isfinite(objectives), -objectives, _FAR)  # minimised
        ideal, worst, extremes, nadir = normalization(state, f, rank)
        scaled = jnp.clip((f - ideal) / jnp.where(nadir - ideal == 0, 1e-12, nadir - ideal), -_FAR, _FAR)
        distances = moo.perpendicular_distances(scaled, jnp.asarray(directions, jnp.float32))
        distances = jnp.where(jnp.isnan(distances), jnp.inf, distances)
        niche = jnp.argmin(distances, axis=1).astype(jnp.int32)
        survivors = select(key, rank, niche, jnp.min(distances, axis=1), directions.shape[0], popsize)
        return state._replace(
            generation=state.generation + 1,
            ideal=ideal,
            worst=worst,
            extremes=extremes,
            **best,
            **ops.survivors_fields(members, objectives, rank, survivors, ref),
        )

    return Strategy(init, ask, tell, decode)


def _directions(m: int, popsize: int, n_partitions, reference_directions) -> np.ndarray:
    if reference_directions is not None:
        if n_partitions is not None:
            raise ValueError("nsga3: give n_partitions or reference_directions, not both")
        z = np.asarray(reference_directions, np.float64)
        if z.ndim != 2 or z.shape[1] != m or z.shape[0] < 1 or np.any(z < 0) or np.any(z.sum(1) <= 0):
            raise ValueError(
                f"nsga3: reference_directions must be non-negative, non-zero rows of {m} values "
                f"(n_objectives), got shape {z.shape}"
            )
    else:
        p = (
            moo.partitions_for(m, popsize)
            if n_partitions is None
            else static_int("n_partitions", n_partitions, 1)
        )
        z = moo.das_dennis(m, p)
    if z.shape[0] > popsize:
        raise ValueError(
            f"nsga3: {z.shape[0]} reference directions need popsize >= {z.shape[0]}, got popsize={popsize}"
        )
    return z


def normalization(state: NSGA3State, f: jax.Array, rank: jax.Array):
    """``(ideal, worst, extremes, nadir)`` of the minimised objectives ``f`` (pymoo's hyperplane
    normalisation): extremes from the non-dominated members and the previous extremes."""
    m = f.shape[1]
    finite = jnp.all(f < _FAR, axis=1)
    ideal = jnp.minimum(state.ideal, jnp.min(jnp.where(finite[:, None], f, _FAR), axis=0))
    worst = jnp.maximum(state.worst, jnp.max(jnp.where(finite[:, None], f, -_FAR), axis=0))
    front = (rank == 0) & finite
    candidates = jnp.concatenate([state.extremes, jnp.where(front[:, None], f, _FAR)])
    shifted = candidates - ideal
    shifted = jnp.where(shifted < 1e-3, 0.0, shifted)
    weights = np.where(np.eye(m) == 1, 1.0, 1e6).astype(np.float32)
    asf = jnp.max(shifted[None, :, :] * weights[:, None, :], axis=2)  # (axis, candidate)
    extremes = candidates[jnp.argmin(asf, axis=1)]
    worst_of_front = jnp.max(jnp.where(front[:, None], f, -_FAR), axis=0)
    worst_of_all = jnp.max(jnp.where(finite[:, None], f, -_FAR), axis=0)
    # The hyperplane through the extreme points: its intercepts give the nadir point.
    matrix = extremes - ideal
    plane = jnp.linalg.solve(matrix, jnp.ones((m,), f.dtype))
    intercepts = 1.0 / plane
    valid = (
        jnp.all(jnp.isfinite(plane))
        & jnp.allclose(matrix @ plane, 1.0, rtol=1e-4, atol=1e-4)
        & jnp.all(intercepts > 1e-6)
        & jnp.all(jnp.isfinite(intercepts))
    )
    nadir = jnp.where(valid, jnp.minimum(ideal + intercepts, worst), worst_of_front)
    nadir = jnp.where(nadir - ideal <= 1e-6, worst_of_all, nadir)
    return ideal, worst, extremes, nadir


def select(
    key: jax.Array, rank: jax.Array, niche: jax.Array, distance: jax.Array, n_directions: int, popsize: int
) -> jax.Array:
    """The ``popsize`` survivors' indices: whole fronts, then the last front by niching."""
    size = rank.shape[0]
    counts = jnp.zeros((size + 1,), jnp.int32).at[rank].add(1)
    last = jnp.argmax(jnp.cumsum(counts) >= popsize).astype(jnp.int32)  # the front that does not fit
    kept = rank < last
    niche_count = jnp.zeros((n_directions,), jnp.int32).at[niche].add(kept.astype(jnp.int32))
    candidate = rank == last

    def coins(i: jax.Array) -> jax.Array:  # pick i's uniforms: one per direction, one per member
        return rng.uniform(key, (n_directions + size,), i * (n_directions + size))

    def pick(carry):
        kept, niche_count, i = carry
        available = candidate & ~kept
        has = jnp.zeros((n_directions,), bool).at[niche].max(available)
        u = coins(i)
        j = jnp.argmin(jnp.where(has, niche_count + u[:n_directions], jnp.inf))  # fewest, ties at random
        score = jnp.where(niche_count[j] == 0, jnp.minimum(distance, _FAR), u[n_directions:])  # nearest
        chosen = jnp.argmin(jnp.where(available & (niche == j), score, jnp.inf))  # (else at random)
        return kept.at[chosen].set(True), niche_count.at[j].add(1), i + 1

    needed = popsize - jnp.sum(kept, dtype=jnp.int32)
    kept, _, _ = jax.lax.while_loop(lambda c: c[2] < needed, pick, (kept, niche_count, jnp.int32(0)))
    return moo.ordering.argsort((~kept).astype(jnp.int32))[:popsize]


nsga3.multi_objective = True
nsga3.NSGA3State = NSGA3State

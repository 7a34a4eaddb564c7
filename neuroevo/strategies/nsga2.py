"""NSGA-II: "A fast and elitist multiobjective genetic algorithm: NSGA-II",
Deb, Pratap, Agarwal & Meyarivan, IEEE Transactions on Evolutionary
Computation 6(2), 2002.

The main loop of the paper (section III-C), every objective maximised:

    P_0 = N members drawn uniformly from the box (or the discrete space); evaluate
    for t = 0, 1, 2, ...
        Q_t = N children: binary tournaments on P_t by the crowded comparison
              (lower rank wins, then larger crowding distance), SBX crossover
              and polynomial mutation (or uniform crossover and per-gene mutation)
        R_t = P_t + Q_t;  F_1, F_2, ... = the non-dominated fronts of R_t
        P_{t+1} = the first fronts that fit in N, then the least crowded members
                  of the next front (crowding distance, ties at random)

``ask`` returns the children as dense genotypes (``(N, n)`` floats inside the
box, or ``int32`` genes); the first ``ask`` returns the initial population
itself, so a run of G generations evaluates ``G * N`` members, as pymoo's
NSGA-II does with ``n_gen=G``. The sort (:func:`neuroevo.moo.non_dominated_ranks`)
is exact and on device, chunked for three or more objectives, and stops once N
members are ranked.

The state keeps the parents with their objectives, ranks and crowding
distances: ``rank == 0`` is the current non-dominated set
(``ne.strategies.pareto_front``). ``best_fitness``/``best_solution`` are the best
worst-objective member seen so far (the contract's summary of several
objectives), and with ``ref_point`` the state records the hypervolume of the
non-dominated parents, which ``ne.evolve`` logs per generation
(``history["hypervolume"]``) next to ``front_size``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import moo
from neuroevo.rng import Stream
from neuroevo.strategies import moo_ops as ops
from neuroevo.strategy import Strategy, check_popsize

PyTree = Any


class NSGA2State(NamedTuple):
    population: jax.Array  # (N, n) parents: floats in the box, or int32 genes
    fitness: jax.Array  # f32[N, M]: their objectives (NaN as -inf); -inf before the first tell
    rank: jax.Array  # int32[N]: non-domination rank (0 = non-dominated)
    crowding: jax.Array  # f32[N]: crowding distance within the front
    best_solution: PyTree
    best_fitness: jax.Array  # f32[]: best worst-objective value so far
    generation: jax.Array
    low: jax.Array | None = None  # f[n]: the box (real genes)
    high: jax.Array | None = None
    hypervolume: jax.Array | None = None  # f32[]: of the non-dominated parents (given ref_point)

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """``front_size`` and (given ``ref_point``) ``hypervolume``, logged per generation."""
        return ops.front_metrics(self)


def nsga2(
    popsize: int = 100,
    bounds: tuple[Any, Any] | None = None,
    space=None,
    n_objectives: int = 2,
    crossover_rate: float = 0.9,
    crossover_eta: float = 15.0,
    crossover_gene_rate: float = 0.5,
    mutation_eta: float = 20.0,
    mutation_rate: float | None = None,
    ref_point=None,
    chunk_size: int = 256,
) -> Strategy:
    """Build NSGA-II.

    Args:
      popsize: N, parents and children per generation (static).
      bounds: ``(low, high)`` of real genes: scalars, or arrays (pytrees) shaped
        like ``x0``; ``low < high`` everywhere. Static.
      space: discrete genes instead (:mod:`neuroevo.space`); give one of the two.
      n_objectives: M, the columns of the fitness (static).
      crossover_rate: probability that a pair of parents is crossed.
      crossover_eta: SBX distribution index (larger: children nearer their parents).
      crossover_gene_rate: per variable, the probability that SBX is applied (real)
        or that the parents exchange the gene (discrete).
      mutation_eta: polynomial mutation's distribution index.
      mutation_rate: per variable mutation probability (default ``1 / n``).
      ref_point: ``(M,)`` reference point, worse than the front in every objective
        (maximised): the state then records the front's hypervolume (M = 2 or 3).
      chunk_size: rows of the dominance relation at once when M >= 3 (static).

    The rates and indices may be traced (a sweep vmaps over them).
    """
    check_popsize(popsize)
    genome = ops.genome("nsga2", bounds, space)
    m = ops.check_objective_count("nsga2", n_objectives)
    variation = ops.check_variation(
        "nsga2",
        ops.Variation(crossover_rate, crossover_eta, crossover_gene_rate, mutation_eta, mutation_rate),
    )
    ref = ops.check_reference_point(ref_point, m)

    def init(key: jax.Array, x0: PyTree) -> NSGA2State:
        fields = ops.start_fields(key, genome, x0, popsize, m, ref)
        return NSGA2State(crowding=jnp.full((popsize,), jnp.inf, jnp.float32), **fields)

    def ask(key: jax.Array, state: NSGA2State) -> tuple[jax.Array, NSGA2State]:
        return ops.children(key, genome, variation, state, state.crowding, popsize), state

    def decode(state: NSGA2State, genotype: jax.Array) -> PyTree:
        return ops.decode(genome, state, genotype)

    def tell(key, state: NSGA2State, genotypes, fitness, descriptors=None) -> NSGA2State:
        del descriptors
        members, objectives, best = ops.merge(decode, state, genotypes, fitness, m)
        rank = moo.non_dominated_ranks(objectives, n_stop=popsize, chunk_size=chunk_size)
        crowding = moo.crowding_distance(objectives, rank)
        # Survivors: by rank, then crowding (descending), then at random.
        survivors = moo.ordering.lexsort(rank, -crowding, Stream(key).words(rank.shape))[:popsize]
        return state._replace(
            crowding=crowding[survivors],
            generation=state.generation + 1,
            **best,
            **ops.survivors_fields(members, objectives, rank, survivors, ref),
        )

    return Strategy(init, ask, tell, decode)


nsga2.multi_objective = True
nsga2.NSGA2State = NSGA2State

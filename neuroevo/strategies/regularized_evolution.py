"""Regularized evolution: "Regularized Evolution for Image Classifier Architecture
Search", Real, Aggarwal, Huang & Le, AAAI 2019 (arXiv:1802.01548). The method
behind AmoebaNet.

Algorithm 1 of the paper, with ``B`` children per step (the paper's parallel workers):

    population = a queue of P random members, evaluated
    repeat
        for each of B workers:
            sample S members of the population at random (with replacement)
            parent = the fittest of the sample;  child = mutate(parent)
        evaluate the children; push them on the right of the queue
        remove the B oldest members from the left ("aging": no member lives forever)
    return the fittest member ever evaluated

The queue lives on device as a ring buffer of fixed capacity P (``queue``,
``queue_fitness``; ``head`` is the oldest slot), so a step is one
``dynamic_update_slice``. The first ``P / B`` asks return the random initial
members themselves (so every member is evaluated once before tournaments
start). Mutation: with a discrete ``space`` (:mod:`neuroevo.space`) one gene
chosen uniformly is set to another value (the paper's single edit;
``mutation="per_gene"`` mutates each gene with probability ``mutation_rate``
instead); for real vectors, ``parent + sigma * N(0, I)``. The initial members
are uniform over the space, or ``x0 + sigma * N(0, I)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import space as discrete
from neuroevo.rng import Stream
from neuroevo.shaping import sanitize
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    static_int,
    unravel_like,
    update_best_member,
)

PyTree = Any
MUTATIONS = ("one_gene", "per_gene")


class REState(NamedTuple):
    queue: jax.Array  # (P, n) members: floats, or int32 genes
    queue_fitness: jax.Array  # f32[P]: -inf until evaluated
    head: jax.Array  # int32[]: the oldest slot (the next B slots are replaced next)
    sigma: jax.Array  # f32[]: mutation step of real members
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def regularized_evolution(
    popsize: int = 16,
    population_size: int | None = None,
    tournament_size: int | None = None,
    sigma: float = 0.1,
    space=None,
    mutation: str = "one_gene",
    mutation_rate: float | None = None,
) -> Strategy:
    """Build regularized (aging) evolution.

    Args:
      popsize: B, children per ``ask`` (static).
      population_size: P, the queue's capacity, a multiple of B (static; default ``4 * popsize``).
      tournament_size: S, members sampled per tournament (static; default ``max(2, P // 4)``,
        the paper's S = 25 for P = 100).
      sigma: mutation step of real members (traceable).
      space: discrete genes (:mod:`neuroevo.space`) instead of real vectors.
      mutation: ``"one_gene"`` or ``"per_gene"`` (discrete genes).
      mutation_rate: per-gene probability for ``"per_gene"`` (default ``1 / n_genes``).
    """
    check_popsize(popsize, minimum=1)
    capacity = 4 * popsize if population_size is None else population_size
    static_int("population_size", capacity, popsize)
    if capacity % popsize:
        raise ValueError(
            f"population_size={capacity} must be a multiple of popsize={popsize} (children replace the "
            "oldest members a batch at a time)"
        )
    size = max(2, capacity // 4) if tournament_size is None else tournament_size
    static_int("tournament_size", size, 1, capacity, f"population_size={capacity}")
    if mutation not in MUTATIONS:
        raise ValueError(f"unknown mutation {mutation!r}; valid: {list(MUTATIONS)}")
    if space is not None:
        discrete.check_space(space)
    batches = capacity // popsize

    def init(key: jax.Array, x0: PyTree) -> REState:
        if space is not None:
            discrete.check_genotype(space, x0)
            queue = discrete.sample(key, space, capacity)
            like = queue[0]
        else:
            flat, unravel = check_x0(x0)
            sigma0 = jnp.asarray(sigma, flat.dtype)
            queue = flat + sigma0 * Stream(key).normal((capacity, flat.shape[0]), flat.dtype)
            like = jax.tree_util.tree_map(jnp.asarray, x0)
        return REState(
            queue=queue,
            queue_fitness=jnp.full((capacity,), -jnp.inf, jnp.float32),
            head=jnp.zeros((), jnp.int32),
            sigma=jnp.asarray(sigma, jnp.float32),
            best_solution=like,
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=jnp.zeros((), jnp.int32),
        )

    def mutate(draw: Stream, parents: jax.Array, state: REState) -> jax.Array:
        if space is None:
            return parents + state.sigma.astype(parents.dtype) * draw.normal(parents.shape, parents.dtype)
        if mutation == "one_gene":
            return discrete.mutate_one(draw, space, parents)
        rate = 1.0 / space.n_genes if mutation_rate is None else mutation_rate
        return discrete.mutate(draw, space, parents, rate)

    def ask(key: jax.Array, state: REState) -> tuple[jax.Array, REState]:
        draw = Stream(key)
        sample = draw.integers((popsize, size), capacity)
        winner = jnp.argmax(sanitize(state.queue_fitness)[sample], axis=1)  # ties: the first drawn
        parents = state.queue[jnp.take_along_axis(sample, winner[:, None], axis=1)[:, 0]]
        children = mutate(draw, parents, state)
        initial = jax.lax.dynamic_slice_in_dim(state.queue, state.head, popsize)
        return jnp.where(state.generation < batches, initial, children), state

    def decode(state: REState, genotype: jax.Array) -> PyTree:
        if space is not None:
            return discrete.clip(space, genotype)
        return unravel_like(state.best_solution)(genotype)

    def tell(key, state: REState, genotypes, fitness, descriptors=None) -> REState:
        del key, descriptors
        fitness = sanitize(check_fitness(fitness, popsize)).astype(jnp.float32)
        best_solution, best_fitness = update_best_member(decode, state, genotypes, fitness)
        # The children replace the oldest members (the next B slots of the ring).
        queue = jax.lax.dynamic_update_slice_in_dim(
            state.queue, genotypes.astype(state.queue.dtype), state.head, 0
        )
        queue_fitness = jax.lax.dynamic_update_slice_in_dim(state.queue_fitness, fitness, state.head, 0)
        return state._replace(
            queue=queue,
            queue_fitness=queue_fitness,
            head=(state.head + popsize) % capacity,
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
        )

    return Strategy(init, ask, tell, decode)


regularized_evolution.REState = REState

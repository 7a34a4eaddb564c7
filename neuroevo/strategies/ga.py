"""The Deep GA: "Deep Neuroevolution: Genetic Algorithms Are a Competitive
Alternative for Training Deep Neural Networks for Reinforcement Learning",
Such, Madhavan, Conti, Lehman, Stanley & Clune, 2017 (arXiv:1712.06567).

Algorithm 1 of the paper, without crossover:

    parents P_0 = T copies of x0
    for g = 1, 2, ...
        member 0 = the elite (best of the previous generation), unchanged
        members 1..N-1: pick k ~ U{1..T};  child = P[k] + sigma * eps,  eps ~ N(0, I)
        evaluate; P <- the top T members (truncation selection)

Genotypes are :class:`~neuroevo.strategy.Perturbation` s (parent index, step,
noise or seed). With compact genotypes only the T parents are ever stored
densely: memory O(T * dim), not O(N * dim). (The paper's elite is chosen by
re-evaluating the top 10 candidates 30 times; here the elite is the best member
of the generation, which is exact on deterministic tasks.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import strategy as S

PyTree = Any


class GAState(NamedTuple):
    parents: jax.Array  # f[T, dim], best first
    parent_fitness: jax.Array  # f32[T]
    sigma: jax.Array
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def ga(
    popsize: int = 256,
    sigma: float | Callable = 0.02,
    truncation: int | None = None,
    elitism: bool = True,
    sigma_decay: float = 1.0,
    sigma_limit: float = 0.0,
    dense: bool | None = None,
) -> S.Strategy:
    """Build the Deep GA.

    Args:
      popsize: population size N (static).
      sigma: mutation power, or a schedule ``generation -> sigma``.
      truncation: number of parents T (static; default ``max(2, popsize // 10)``).
      elitism: carry the best member unchanged as member 0.
      sigma_decay, sigma_limit: ``sigma_t = max(sigma * sigma_decay**t, sigma_limit)``.
      dense: store each member's noise (True), a seed (False), or decide from size (None).
    """
    S.check_popsize(popsize)
    n_parents = truncation if truncation is not None else max(2, popsize // 10)
    if not isinstance(n_parents, int) or not 1 <= n_parents <= popsize:
        raise ValueError(f"truncation must be an int in [1, popsize={popsize}], got {n_parents!r}")

    def init(key: jax.Array, x0: PyTree) -> GAState:
        del key
        flat, _ = S.check_x0(x0)
        generation = jnp.zeros((), jnp.int32)
        return GAState(
            parents=jnp.broadcast_to(flat, (n_parents, flat.shape[0])),
            parent_fitness=jnp.full((n_parents,), -jnp.inf, jnp.float32),
            sigma=S.sigma_at(sigma, generation, sigma_decay, sigma_limit),
            best_solution=jax.tree_util.tree_map(jnp.asarray, x0),
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=generation,
        )

    def ask(key: jax.Array, state: GAState) -> tuple[S.Perturbation, GAState]:
        k_parent, k_noise = jax.random.split(key)
        dim = state.parents.shape[1]
        parent = jax.random.randint(k_parent, (popsize,), 0, n_parents, jnp.int32)
        scale = jnp.full((popsize,), state.sigma)
        if elitism:
            parent, scale = parent.at[0].set(0), scale.at[0].set(0.0)
        if S.use_dense(popsize, dim, dense):
            noise = S.normal(k_noise, (popsize, dim), state.parents.dtype)
            return S.Perturbation(parent, scale, noise=noise), state
        seeds = jax.random.key_data(jax.random.split(k_noise, popsize))
        return S.Perturbation(parent, scale, seed=seeds), state

    def decode_flat(state: GAState, genotype: S.Perturbation) -> jax.Array:
        base = state.parents[genotype.parent]
        return base + genotype.scale * S.eps(genotype, base.shape[0], base.dtype)

    def decode(state: GAState, genotype: S.Perturbation) -> PyTree:
        return S.unravel_like(state.best_solution)(decode_flat(state, genotype))

    def tell(key, state: GAState, genotypes: S.Perturbation, fitness, descriptors=None):
        del key, descriptors
        fitness = S.sanitize(S.check_fitness(fitness, S.population_size(genotypes)))
        top_fitness, top = jax.lax.top_k(fitness, n_parents)
        selected = jax.tree_util.tree_map(lambda x: x[top], genotypes)
        parents = jax.vmap(decode_flat, in_axes=(None, 0))(state, selected)
        best_solution, best_fitness = S.update_best(
            state.best_solution,
            state.best_fitness,
            S.unravel_like(state.best_solution)(parents[0]),
            top_fitness[0],
        )
        generation = state.generation + 1
        return GAState(
            parents=parents,
            parent_fitness=top_fitness.astype(jnp.float32),
            sigma=S.sigma_at(sigma, generation, sigma_decay, sigma_limit),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=generation,
        )

    return S.Strategy(init, ask, tell, decode)

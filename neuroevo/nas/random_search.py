"""Random search over a search space: every generation, ``popsize`` architectures drawn uniformly.

The baseline every NAS method must beat (Li & Talwalkar 2019, "Random Search and
Reproducibility for Neural Architecture Search"). ``space`` is anything with
``sample(key, n)`` and ``n_genes`` (a :mod:`neuroevo.nas` space). Fitness may be one
value per member or several objectives (``(popsize, M)``): the best member is then the
best worst-objective one (:func:`neuroevo.strategy.scalar_fitness`), as in ``nsga2``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize
from neuroevo.strategy import Strategy, check_popsize, update_best

Array = jax.Array


class RandomSearchState(NamedTuple):
    best_solution: Array  # int32[n_genes]
    best_fitness: Array
    generation: Array


def random_search(space: Any, popsize: int = 16) -> Strategy:
    """Uniform sampling of ``space``, ``popsize`` members per generation."""
    check_popsize(popsize, minimum=1)

    def init(key: Array, x0: Any = None) -> RandomSearchState:
        del key, x0
        return RandomSearchState(
            best_solution=jnp.zeros((space.n_genes,), jnp.int32),
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=jnp.zeros((), jnp.int32),
        )

    def ask(key: Array, state: RandomSearchState) -> tuple[Array, RandomSearchState]:
        return space.sample(key, popsize), state

    def tell(key, state: RandomSearchState, genotypes, fitness, descriptors=None) -> RandomSearchState:
        del key, descriptors
        fitness = sanitize(jnp.asarray(fitness, jnp.float32))
        if fitness.shape[0] != popsize or fitness.ndim not in (1, 2):
            raise ValueError(
                f"fitness has shape {fitness.shape}, but the population has shape ({popsize},) "
                f"(or ({popsize}, n_objectives))"
            )
        summary = jnp.min(fitness, axis=1) if fitness.ndim == 2 else fitness
        i = jnp.argmax(summary)
        best_solution, best_fitness = update_best(
            state.best_solution, state.best_fitness, genotypes[i], summary[i]
        )
        return RandomSearchState(best_solution, best_fitness, state.generation + 1)

    def decode(state: RandomSearchState, genotype: Array) -> Array:
        del state
        return genotype

    return Strategy(init, ask, tell, decode)

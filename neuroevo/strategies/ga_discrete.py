"""The ``ga`` strategy on discrete genes (``ne.strategies.ga(space=...)``).

The Deep GA's loop (:mod:`neuroevo.strategies.ga`) with the operators of
:mod:`neuroevo.space` in place of Gaussian noise:

    parents P_0 = T members drawn uniformly from the space
    for g = 1, 2, ...
        member 0 = the elite (best of the previous generation), unchanged
        members 1..N-1: parents by truncation (uniform from the top T) or tournament;
            with probability crossover_rate, uniform or one-point crossover with a
            second parent; then each gene, with probability mutation_rate
            (default 1 / n_genes), set to a uniformly drawn other value
        evaluate; P <- the top T members

Genotypes are the members' genes (``int32[N, n_genes]``); ``decode`` returns
them. The state is a :class:`~neuroevo.strategies.ga.GAState` whose ``parents``
are genes; ``diversity`` is the mean fraction of genes in which a parent
differs from the best parent.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from neuroevo import space as discrete
from neuroevo.rng import Stream
from neuroevo.shaping import sanitize
from neuroevo.strategy import Strategy, check_fitness, update_best

PyTree = Any


def discrete_ga(
    state_type,
    popsize: int,
    space: discrete.Space,
    n_parents: int,
    elitism: bool,
    tournament: int | None,
    crossover: str | None,
    crossover_rate,
    mutation_rate,
) -> Strategy:
    """Build the discrete GA (arguments already checked by ``ga``; ``tournament`` is the
    tournament size, or None for truncation selection)."""
    discrete.check_space(space)
    if mutation_rate is not None and not isinstance(mutation_rate, jax.core.Tracer):
        if not 0.0 <= float(mutation_rate) <= 1.0:
            raise ValueError(f"mutation_rate must be in [0, 1], got {mutation_rate}")
    rate = 1.0 / space.n_genes if mutation_rate is None else mutation_rate

    def select(draw: Stream, fitness: jax.Array) -> jax.Array:
        if tournament is None:
            return draw.integers((popsize,), n_parents)
        entrants = draw.integers((popsize, tournament), n_parents)
        winner = jnp.argmax(sanitize(fitness)[entrants], axis=1)  # ties: the first drawn
        return jnp.take_along_axis(entrants, winner[:, None], axis=1)[:, 0]

    def init(key: jax.Array, x0: PyTree):
        discrete.check_genotype(space, x0)
        parents = discrete.sample(key, space, n_parents)
        return state_type(
            parents=parents,
            parent_fitness=jnp.full((n_parents,), -jnp.inf, jnp.float32),
            sigma=jnp.asarray(rate, jnp.float32),
            best_solution=parents[0],
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=jnp.zeros((), jnp.int32),
            diversity=jnp.zeros((), jnp.float32),
        )

    def ask(key: jax.Array, state) -> tuple[jax.Array, Any]:
        draw = Stream(key)
        a = state.parents[select(draw, state.parent_fitness)]
        children = a
        if crossover is not None:
            b = state.parents[select(draw, state.parent_fitness)]
            if crossover == "uniform":
                mixed = discrete.uniform_crossover(draw, a, b)[0]
            else:  # one point: genes [0, cut) from a, [cut, n) from b
                cut = 1 + draw.integers((popsize, 1), max(space.n_genes - 1, 1))
                mixed = jnp.where(jnp.arange(space.n_genes) < cut, a, b)
            children = jnp.where(draw.uniform((popsize, 1)) < crossover_rate, mixed, a)
        children = discrete.mutate(draw, space, children, rate)
        if elitism:
            children = children.at[0].set(state.parents[0])
        return children, state

    def decode(state, genotype: jax.Array) -> jax.Array:
        return discrete.clip(space, genotype)

    def tell(key, state, genotypes, fitness, descriptors=None):
        del key, descriptors
        fitness = sanitize(check_fitness(fitness, popsize))
        top_fitness, top = jax.lax.top_k(fitness, n_parents)
        parents = genotypes[top].astype(jnp.int32)
        best_solution, best_fitness = update_best(
            state.best_solution, state.best_fitness, parents[0], top_fitness[0]
        )
        return state._replace(
            parents=parents,
            parent_fitness=top_fitness.astype(jnp.float32),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
            diversity=jnp.mean(parents != parents[0]).astype(jnp.float32),
        )

    return Strategy(init, ask, tell, decode)


def check(crossover, self_adaptive: bool, mate_choice: bool, lineage_capacity: int) -> None:
    """The ``ga`` options a discrete space does not support raise ``ValueError``."""
    if crossover not in (None, "uniform", "one_point"):
        raise ValueError(
            f"crossover={crossover!r} needs real genes; with a space: None, 'uniform' or 'one_point'"
        )
    for name, value in (("self_adaptive", self_adaptive), ("mate_choice", mate_choice)):
        if value:
            raise ValueError(f"{name}=True needs real genes (Gaussian mutation), not a discrete space")
    if lineage_capacity:
        raise ValueError("lineage_capacity needs real genes (seed chains of Gaussian noise), not a space")

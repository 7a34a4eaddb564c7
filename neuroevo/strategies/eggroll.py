"""EGGROLL: "Evolution Strategies at the Hyperscale", Sarkar, Fellows, Sanchez, Farquhar, Foerster
et al., 2025 (arXiv:2511.16652).

OpenAI-ES (:mod:`neuroevo.strategies.openai_es`) with low-rank perturbations of
every matrix-shaped parameter (:mod:`neuroevo.lowrank`), so that a population
is evaluated at close to the speed of inference:

    for t = 0, 1, 2, ...
        for each pair i: A_i (m x r), B_i (k x r) ~ N(0, I) per matrix W; e_i ~ N(0, I) per vector
        eps_i = A_i B_i^T / sqrt(r) (matrices), e_i (vectors)
        members theta + sigma*eps_i, theta - sigma*eps_i
        F_i = fitness of each member;  w_i = centred rank of F_i in [-0.5, 0.5]
        g = 1 / (n * sigma) * sum_i (w_i^+ - w_i^-) eps_i            (full rank: a sum of n/2 rank-r terms)
        theta <- optimizer step on  -(g - weight_decay * theta)       (ascent)

Genotypes are :class:`~neuroevo.perturbation.Perturbation` s with a seed:
a member is a 64-bit seed and a signed step, its factors regenerated where they
are needed. ``decode`` builds the dense member (so every task, ``ne.population``,
checkpoints, sweeps and sharding work as for any strategy); ``tell`` regenerates
the factors chunk by chunk and adds ``A_chunk^T diag(w) B_chunk`` per matrix,
never a population of dense matrices. The fast path is the ``members`` field:
``ne.population_apply`` (and the tasks that evaluate through it: gymnax,
playground, text) run a flax model once on the shared mean and add each
member's low-rank term (:mod:`neuroevo.nn.lowrank_apply`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from neuroevo import lowrank, perturbation
from neuroevo.nn.lowrank_apply import LowRankMembers
from neuroevo.shaping import centered_ranks
from neuroevo.strategies.openai_es import OpenESState, ascend, start
from neuroevo.strategy import Strategy, check_fitness, check_popsize, population_size, static_int

PyTree = Any


EggrollState = OpenESState  # mean, opt_state, sigma, best_solution, best_fitness, generation


def eggroll(
    popsize: int = 256,
    rank: int = 1,
    sigma: float | Callable = 0.1,
    learning_rate: float = 0.03,
    optimizer: optax.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    sigma_decay: float = 1.0,
    sigma_limit: float = 0.0,
    mirrored: bool = True,
    chunk_size: int | None = None,
    fitness_shaping: Callable[[jax.Array], jax.Array] = centered_ranks,
) -> Strategy:
    """Build EGGROLL (low-rank OpenAI-ES).

    Args:
      popsize: population size (static; even when ``mirrored``).
      rank: rank r of each matrix's perturbation (static; at most every matrix's smaller side).
      sigma: noise standard deviation, or a schedule ``generation -> sigma``.
      learning_rate: Adam's step size when ``optimizer`` is None.
      optimizer: any optax transformation (it sees the *negated* ascent direction).
      weight_decay: L2 coefficient subtracted from the ascent direction.
      sigma_decay, sigma_limit: ``sigma_t = max(sigma * sigma_decay**t, sigma_limit)``.
      mirrored: antithetic pairs (theta + sigma*eps, theta - sigma*eps).
      chunk_size: members whose factors ``tell`` regenerates at once (default: 64 MiB of them).
      fitness_shaping: fitness -> per-member weights (default: centred ranks).
    """
    check_popsize(popsize, even=mirrored)
    static_int("rank", rank, 1)
    optimizer = optimizer if optimizer is not None else optax.adam(learning_rate)

    schedule = lambda generation: perturbation.sigma_at(sigma, generation, sigma_decay, sigma_limit)  # noqa: E731

    def init(key: jax.Array, x0: PyTree) -> EggrollState:
        del key
        lowrank.layout(x0, rank)  # checks the rank against every matrix
        return start(optimizer, x0, schedule)

    def ask(key: jax.Array, state: EggrollState) -> tuple[perturbation.Perturbation, EggrollState]:
        # Compact genotypes: a seed per pair (stored twice) and the signed step.
        return perturbation.perturbations(key, popsize, 1, state.sigma, mirrored=mirrored, dense=False), state

    def decode(state: EggrollState, genotype: perturbation.Perturbation) -> PyTree:
        return lowrank.perturb(state.mean, genotype.seed, genotype.scale, lowrank.layout(state.mean, rank))

    def members(state: EggrollState, genotypes: perturbation.Perturbation) -> LowRankMembers:
        lay = lowrank.layout(state.mean, rank)
        # The whole mirrored population (not a chunk of it): pairs share seeds, draw each once.
        whole = mirrored and population_size(genotypes) == popsize
        return LowRankMembers.from_seeds(state.mean, genotypes.seed, genotypes.scale, lay, mirrored=whole)

    def tell(key, state: EggrollState, genotypes: perturbation.Perturbation, fitness, descriptors=None):
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        lay = lowrank.layout(state.mean, rank)
        dtype = jax.tree_util.tree_leaves(state.mean)[0].dtype
        coeffs, _, base = perturbation.antithetic(fitness_shaping(fitness), genotypes, mirrored)
        chunk = chunk_size or lowrank.default_chunk(lay)
        total = lowrank.weighted_sum(coeffs, base.seed, lay, chunk, dtype)
        grad = jnp.concatenate([g.reshape(-1) for g in total]) / (popsize * state.sigma)
        return ascend(optimizer, schedule, weight_decay, decode, state, genotypes, fitness, grad)

    return Strategy(init, ask, tell, decode, members=members)

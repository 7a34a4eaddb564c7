"""OpenAI-ES: "Evolution Strategies as a Scalable Alternative to Reinforcement
Learning", Salimans, Ho, Chen, Sidor & Sutskever, 2017 (arXiv:1703.03864).

Algorithm 2 of the paper, with the paper's tricks (mirrored sampling, centred
rank shaping, weight decay) and any optax optimiser on the estimated gradient:

    for t = 0, 1, 2, ...
        sample eps_1 .. eps_{n/2} ~ N(0, I); members theta + sigma*eps_i, theta - sigma*eps_i
        F_i = fitness of each member;  w_i = centred rank of F_i in [-0.5, 0.5]
        g = 1 / (n * sigma) * sum_i (w_i^+ - w_i^-) eps_i
        theta <- optimizer step on  -(g - weight_decay * theta)     (ascent)

Genotypes are :class:`~neuroevo.strategy.Perturbation` s. When the population's
noise fits in memory (a static choice, ``dense=None`` decides from
``popsize * dim``) it is drawn once per generation and kept: ``tell`` reuses it.
Otherwise each member is a 64-bit seed and a sign: its noise is regenerated in
``decode`` and again, chunk by chunk, in ``tell``, so memory stays
O(chunk * dim), never O(popsize * dim).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from neuroevo import perturbation
from neuroevo.shaping import centered_ranks
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    population_size,
    ravel,
    search_start,
    search_step,
)

PyTree = Any


class OpenESState(NamedTuple):
    mean: PyTree
    opt_state: optax.OptState
    sigma: jax.Array
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def openai_es(
    popsize: int = 256,
    sigma: float | Callable = 0.1,
    learning_rate: float = 0.03,
    optimizer: optax.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    sigma_decay: float = 1.0,
    sigma_limit: float = 0.0,
    mirrored: bool = True,
    dense: bool | None = None,
    chunk_size: int | None = None,
    fitness_shaping: Callable[[jax.Array], jax.Array] = centered_ranks,
) -> Strategy:
    """Build OpenAI-ES.

    Args:
      popsize: population size (static; even when ``mirrored``).
      sigma: noise standard deviation, or a schedule ``generation -> sigma``.
      learning_rate: Adam's step size when ``optimizer`` is None.
      optimizer: any optax transformation (it sees the *negated* ascent direction).
      weight_decay: L2 coefficient subtracted from the ascent direction.
      sigma_decay, sigma_limit: ``sigma_t = max(sigma * sigma_decay**t, sigma_limit)``.
      mirrored: antithetic pairs (theta + sigma*eps, theta - sigma*eps).
      dense: keep the noise (True), regenerate it from seeds (False), or decide
        from the population's size (None: dense up to 256 MiB of noise).
      chunk_size: members whose noise is regenerated at once in ``tell`` when compact.
      fitness_shaping: fitness -> per-member weights ``w_i`` (default: centred ranks).
        Novelty search (``ns_es``) passes its own weights through ``lambda w: w``.
    """
    check_popsize(popsize, even=mirrored)
    optimizer = optimizer if optimizer is not None else optax.adam(learning_rate)

    schedule = lambda generation: perturbation.sigma_at(sigma, generation, sigma_decay, sigma_limit)  # noqa: E731

    def init(key: jax.Array, x0: PyTree) -> OpenESState:
        del key
        return start(optimizer, x0, schedule)

    def ask(key: jax.Array, state: OpenESState) -> tuple[perturbation.Perturbation, OpenESState]:
        flat = ravel(state.mean)
        genotypes = perturbation.perturbations(
            key, popsize, flat.shape[0], state.sigma, mirrored=mirrored, dense=dense, dtype=flat.dtype
        )
        return genotypes, state

    def decode(state: OpenESState, genotype: perturbation.Perturbation) -> PyTree:
        return perturbation.perturb(state.mean, genotype)

    def tell(key, state: OpenESState, genotypes: perturbation.Perturbation, fitness, descriptors=None):
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        flat = ravel(state.mean)
        dim = flat.shape[0]
        coeffs, _, base = perturbation.antithetic(fitness_shaping(fitness), genotypes, mirrored)
        chunk = chunk_size or perturbation.default_noise_chunk(dim)
        grad = perturbation.weighted_eps_sum(coeffs, base, dim, chunk, flat.dtype) / (popsize * state.sigma)
        return ascend(optimizer, schedule, weight_decay, decode, state, genotypes, fitness, grad)

    return Strategy(init, ask, tell, decode)


def start(optimizer: optax.GradientTransformation, x0: PyTree, schedule: Callable) -> OpenESState:
    """The first state: mean ``x0``, the optimiser's state, ``sigma`` of generation 0."""
    flat, fields = search_start(x0)
    return OpenESState(opt_state=optimizer.init(flat), sigma=schedule(fields["generation"]), **fields)


def ascend(optimizer, schedule, weight_decay, decode, state: OpenESState, genotypes, fitness, grad):
    """The step after the gradient estimate ``grad`` (flat): optimiser, best member, next sigma."""
    flat = ravel(state.mean)
    updates, opt_state = optimizer.update(-grad + weight_decay * flat, state.opt_state, flat)
    fields = search_step(decode, state, genotypes, fitness, optax.apply_updates(flat, updates))
    return OpenESState(opt_state=opt_state, sigma=schedule(fields["generation"]), **fields)

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
import jax.numpy as jnp
import optax

from neuroevo import strategy as S

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
) -> S.Strategy:
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
    """
    S.check_popsize(popsize, even=mirrored)
    optimizer = optimizer if optimizer is not None else optax.adam(learning_rate)
    half = popsize // 2 if mirrored else popsize

    def init(key: jax.Array, x0: PyTree) -> OpenESState:
        del key
        flat, _ = S.check_x0(x0)
        mean = jax.tree_util.tree_map(jnp.asarray, x0)
        generation = jnp.zeros((), jnp.int32)
        return OpenESState(
            mean=mean,
            opt_state=optimizer.init(flat),
            sigma=S.sigma_at(sigma, generation, sigma_decay, sigma_limit),
            best_solution=mean,
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=generation,
        )

    def ask(key: jax.Array, state: OpenESState) -> tuple[S.Perturbation, OpenESState]:
        flat = S.ravel(state.mean)
        dim = flat.shape[0]
        parent = jnp.zeros((popsize,), jnp.int32)
        if S.use_dense(popsize, dim, dense):
            z = S.normal(key, (half, dim), flat.dtype)
            noise = jnp.concatenate([z, -z]) if mirrored else z
            scale = jnp.full((popsize,), state.sigma)
            return S.Perturbation(parent, scale, noise=noise), state
        seeds = jax.random.key_data(jax.random.split(key, half))
        if mirrored:
            seeds = jnp.concatenate([seeds, seeds])
            scale = jnp.concatenate([jnp.full((half,), state.sigma), jnp.full((half,), -state.sigma)])
        else:
            scale = jnp.full((popsize,), state.sigma)
        return S.Perturbation(parent, scale, seed=seeds), state

    def decode(state: OpenESState, genotype: S.Perturbation) -> PyTree:
        flat, unravel = S.check_x0(state.mean)
        return unravel(flat + genotype.scale * S.eps(genotype, flat.shape[0], flat.dtype))

    def tell(key, state: OpenESState, genotypes: S.Perturbation, fitness, descriptors=None):
        del key, descriptors
        fitness = S.check_fitness(fitness, S.population_size(genotypes))
        flat = S.ravel(state.mean)
        dim = flat.shape[0]
        w = S.centered_ranks(fitness)
        if mirrored:  # the first half holds each pair's +eps (dense and compact alike)
            coeffs = w[:half] - w[half:]
            base = jax.tree_util.tree_map(lambda x: x[:half], genotypes)
        else:
            coeffs, base = w, genotypes
        chunk = chunk_size or S.default_noise_chunk(dim)
        grad = S.weighted_eps_sum(coeffs, base, dim, chunk, flat.dtype) / (popsize * state.sigma)
        updates, opt_state = optimizer.update(-grad + weight_decay * flat, state.opt_state, flat)
        mean = S.unravel_like(state.mean)(optax.apply_updates(flat, updates))

        i = jnp.argmax(S.sanitize(fitness))
        candidate = decode(state, jax.tree_util.tree_map(lambda x: x[i], genotypes))
        best_solution, best_fitness = S.update_best(
            state.best_solution, state.best_fitness, candidate, fitness[i]
        )
        generation = state.generation + 1
        return OpenESState(
            mean=mean,
            opt_state=opt_state,
            sigma=S.sigma_at(sigma, generation, sigma_decay, sigma_limit),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=generation,
        )

    return S.Strategy(init, ask, tell, decode)

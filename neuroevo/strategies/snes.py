"""SNES: Separable Natural Evolution Strategies. Wierstra, Schaul, Glasmachers,
Sun, Peters & Schmidhuber, "Natural Evolution Strategies", JMLR 15, 2014
(Algorithm 6; Schaul, Glasmachers & Schmidhuber, GECCO 2011).

A Gaussian with a diagonal covariance, ``N(mu, diag(sigma)**2)``, followed up its
natural gradient:

    for t = 0, 1, 2, ...
        for k = 1 .. n: draw s_k ~ N(0, I);  z_k = mu + sigma * s_k;  evaluate f(z_k)
        sort by f;  u_k = NES utility of z_k's rank
                    (max(0, log(n/2 + 1) - log rank) normalised to sum 1, minus 1/n)
        grad_mu    = sum_k u_k s_k
        grad_sigma = sum_k u_k (s_k**2 - 1)
        mu    <- mu + eta_mu * sigma * grad_mu
        sigma <- sigma * exp(eta_sigma / 2 * grad_sigma)

with the paper's defaults ``eta_mu = 1`` and ``eta_sigma = (3 + log d) / (5 sqrt d)``
(the paper's population size is ``4 + floor(3 log d)``; here ``popsize`` is a
static argument). ``mirrored=True`` adds antithetic pairs ``mu +- sigma * s_k``
(an option, not in the paper's algorithm).

Genotypes are :class:`~neuroevo.strategy.Perturbation` s from
:func:`~neuroevo.strategy.perturbations` with ``scale`` = the member's sign (+1, or
-1 for the mirrored half of compact pairs); ``decode`` multiplies by the state's
per-dimension ``sigma`` vector. Small populations keep their noise (dense); large
ones store one seed per member and regenerate the noise in ``decode`` and, chunk by
chunk, in ``tell`` (memory O(chunk * d)).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import perturbation
from neuroevo.shaping import nes_utilities
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


class SNESState(NamedTuple):
    mean: PyTree
    sigma: jax.Array  # f32[d]: per-dimension standard deviation (flat, in ravel order of mean)
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def snes(
    popsize: int = 32,
    sigma: float = 0.1,
    learning_rate: float = 1.0,
    sigma_learning_rate: float | None = None,
    mirrored: bool = False,
    dense: bool | None = None,
    chunk_size: int | None = None,
) -> Strategy:
    """Build SNES.

    Args:
      popsize: population size (static; even when ``mirrored``).
      sigma: initial standard deviation, a scalar or a flat ``(d,)`` vector.
      learning_rate: ``eta_mu``, the mean's learning rate (paper: 1).
      sigma_learning_rate: ``eta_sigma``; None for the paper's ``(3 + log d) / (5 sqrt d)``.
      mirrored: antithetic pairs ``mu +- sigma * s``.
      dense: keep the noise (True), regenerate it from seeds (False), or decide
        from the population's size (None).
      chunk_size: members whose noise is regenerated at once in ``tell`` when compact.
    """
    check_popsize(popsize, even=mirrored)

    def init(key: jax.Array, x0: PyTree) -> SNESState:
        del key
        flat, fields = search_start(x0)
        return SNESState(sigma=jnp.broadcast_to(jnp.asarray(sigma, flat.dtype), flat.shape), **fields)

    def ask(key: jax.Array, state: SNESState) -> tuple[perturbation.Perturbation, SNESState]:
        d, dtype = state.sigma.shape[0], state.sigma.dtype
        return perturbation.perturbations(
            key, popsize, d, 1.0, mirrored=mirrored, dense=dense, dtype=dtype
        ), state

    def decode(state: SNESState, genotype: perturbation.Perturbation) -> PyTree:
        return perturbation.perturb(state.mean, genotype, state.sigma)

    def tell(
        key, state: SNESState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> SNESState:
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        flat = ravel(state.mean)
        d = flat.shape[0]
        eta_sigma = sigma_learning_rate
        if eta_sigma is None:
            eta_sigma = (3.0 + math.log(d)) / (5.0 * math.sqrt(d))

        u = nes_utilities(fitness)
        u_signed, u_sq, base = perturbation.antithetic(u, genotypes, mirrored)
        chunk = chunk_size or perturbation.default_noise_chunk(d)
        grad_mu, sum_u_s2 = perturbation.weighted_eps_moments(u_signed, u_sq, base, d, chunk, flat.dtype)
        grad_sigma = sum_u_s2 - u.sum()  # sum_k u_k (s_k**2 - 1)
        mean = flat + learning_rate * state.sigma * grad_mu
        sigma_new = state.sigma * jnp.exp(0.5 * eta_sigma * grad_sigma)

        return SNESState(sigma=sigma_new, **search_step(decode, state, genotypes, fitness, mean))

    return Strategy(init, ask, tell, decode)

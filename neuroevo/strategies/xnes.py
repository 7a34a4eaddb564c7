"""xNES: exponential Natural Evolution Strategies. Glasmachers, Schaul, Sun,
Wierstra & Schmidhuber, "Exponential Natural Evolution Strategies", GECCO 2010;
Wierstra, Schaul, Glasmachers, Sun, Peters & Schmidhuber, "Natural Evolution
Strategies", JMLR 15, 2014 (Algorithm 5).

A full Gaussian ``N(mu, A A^T)`` with ``A = sigma * B`` (``det B = 1``), updated
in exponential coordinates so that ``A`` stays invertible:

    for t = 0, 1, 2, ...
        for k = 1 .. n: draw s_k ~ N(0, I);  z_k = mu + sigma * B s_k;  evaluate f(z_k)
        sort by f;  u_k = NES utility of z_k's rank
        G_delta = sum_k u_k s_k
        G_M     = sum_k u_k (s_k s_k^T - I)
        G_sigma = tr(G_M) / d
        G_B     = G_M - G_sigma * I
        mu    <- mu + eta_mu * sigma * B G_delta
        sigma <- sigma * exp(eta_sigma / 2 * G_sigma)
        B     <- B expm(eta_B / 2 * G_B)

with the paper's defaults ``eta_mu = 1`` and ``eta_sigma = eta_B = 3/5 (3 + log d) / (d sqrt d)``
(the paper's population size is ``4 + floor(3 log d)``; here ``popsize`` is
static). ``mirrored=True`` adds antithetic pairs (an option, not in the paper).

The state is O(d**2) (the matrix ``B``), so dense genotypes cost nothing extra.
Compact ones (``dense=False``: a seed and a sign per member,
:func:`~neuroevo.strategy.perturbations` with ``scale`` = the sign) also work:
``decode`` is ``mu + sigma * B (sign * eps(seed))``, and ``tell`` regenerates all
``s_k`` at once (O(popsize * d), no more than ``B``'s own d**2 for popsize <= d).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg

from neuroevo import perturbation
from neuroevo.shaping import nes_utilities
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    population_size,
    ravel,
    search_start,
    search_step,
)

PyTree = Any


class XNESState(NamedTuple):
    mean: PyTree
    sigma: jax.Array  # f32[]: global step size
    B: jax.Array  # f32[d, d]: shape matrix, det 1; the covariance is sigma**2 B B^T
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def xnes(
    popsize: int = 16,
    sigma: float = 0.1,
    learning_rate: float = 1.0,
    sigma_learning_rate: float | None = None,
    shape_learning_rate: float | None = None,
    mirrored: bool = False,
    dense: bool | None = None,
) -> Strategy:
    """Build xNES.

    Args:
      popsize: population size (static; even when ``mirrored``).
      sigma: initial global step size (``B`` starts as the identity).
      learning_rate: ``eta_mu`` (paper: 1).
      sigma_learning_rate: ``eta_sigma``; None for ``3/5 (3 + log d) / (d sqrt d)``.
      shape_learning_rate: ``eta_B``; None for the same default as ``eta_sigma``.
      mirrored: antithetic pairs ``mu +- sigma * B s``.
      dense: keep the noise (True), regenerate it from seeds (False), or decide
        from the population's size (None).
    """
    check_popsize(popsize, even=mirrored)

    def init(key: jax.Array, x0: PyTree) -> XNESState:
        del key
        flat, fields = search_start(x0)
        eye = jnp.eye(flat.shape[0], dtype=flat.dtype)
        return XNESState(sigma=jnp.asarray(sigma, flat.dtype), B=eye, **fields)

    def ask(key: jax.Array, state: XNESState) -> tuple[perturbation.Perturbation, XNESState]:
        d, dtype = state.B.shape[0], state.B.dtype
        return perturbation.perturbations(
            key, popsize, d, 1.0, mirrored=mirrored, dense=dense, dtype=dtype
        ), state

    def standard(genotype: perturbation.Perturbation, d: int, dtype) -> jax.Array:
        """s: the member's standard-normal sample, sign included."""
        return genotype.scale * perturbation.eps(genotype, d, dtype)

    def decode(state: XNESState, genotype: perturbation.Perturbation) -> PyTree:
        flat, unravel = check_x0(state.mean)
        return unravel(flat + state.sigma * (state.B @ standard(genotype, flat.shape[0], flat.dtype)))

    def tell(
        key, state: XNESState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> XNESState:
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        flat = ravel(state.mean)
        d = flat.shape[0]
        default_eta = 0.6 * (3.0 + math.log(d)) / (d * math.sqrt(d))
        eta_sigma = default_eta if sigma_learning_rate is None else sigma_learning_rate
        eta_b = default_eta if shape_learning_rate is None else shape_learning_rate

        u = nes_utilities(fitness).astype(flat.dtype)
        s = jax.vmap(standard, in_axes=(0, None, None))(genotypes, d, flat.dtype)  # (n, d)
        eye = jnp.eye(d, dtype=flat.dtype)
        g_delta = u @ s
        g_m = (s.T * u) @ s - u.sum() * eye
        g_sigma = jnp.trace(g_m) / d
        g_b = g_m - g_sigma * eye
        mean = flat + learning_rate * state.sigma * (state.B @ g_delta)
        sigma_new = state.sigma * jnp.exp(0.5 * eta_sigma * g_sigma)
        b_new = state.B @ jax.scipy.linalg.expm(0.5 * eta_b * g_b)

        return XNESState(sigma=sigma_new, B=b_new, **search_step(decode, state, genotypes, fitness, mean))

    return Strategy(init, ask, tell, decode)

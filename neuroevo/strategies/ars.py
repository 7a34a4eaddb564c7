"""ARS: Augmented Random Search. Mania, Guy & Recht, "Simple random search
provides a competitive approach to reinforcement learning", NeurIPS 2018
(arXiv:1803.07055), Algorithm 1.

    hyperparameters: step size alpha (learning_rate), N = popsize / 2 directions,
                     exploration noise nu (sigma), b top directions (top_k)
    for j = 0, 1, 2, ...
        sample delta_1 .. delta_N ~ N(0, I)
        collect 2N rollouts:  r(M_j + nu delta_k)  and  r(M_j - nu delta_k)
        sort the directions by max(r_k+, r_k-);  keep the b best
        sigma_R = standard deviation of the 2b returns kept
        M_{j+1} = M_j + alpha / (b sigma_R) * sum_{k in top b} (r_k+ - r_k-) delta_k

V1 is this update on raw observations. V2 additionally whitens the policy's
input with running observation statistics, ``(x - mu_j) / sqrt(diag Sigma_j)``;
here that lives in the task, not the strategy: ``version=2`` means "use with
``ne.tasks.gymnax(..., normalize_obs=True)``" and runs the same update (the
version is accepted and validated, so configs can say which one they mean).
The paper starts from ``M_0 = 0``; here from ``x0``.

Returns are used as they are (no rank shaping: ``sigma_R`` does the scaling).
NaN and -inf returns count as the generation's worst finite return, +inf as its
best, so a broken rollout ranks last and never puts a NaN into the mean; a
generation with no finite return, or with ``sigma_R = 0``, leaves the mean unchanged.

Genotypes are mirrored :class:`~neuroevo.strategy.Perturbation` pairs from
:func:`~neuroevo.strategy.perturbations` with ``scale = +-nu``: compact (a seed
per pair) for large populations, dense for small ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo import perturbation
from neuroevo.shaping import sanitize
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    population_size,
    ravel,
    search_start,
    search_step,
    static_int,
)

PyTree = Any


class ARSState(NamedTuple):
    mean: PyTree
    sigma: jax.Array  # f32[]: exploration noise nu
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def finite_returns(fitness: jax.Array) -> jax.Array:
    """NaN/-inf -> the worst finite value, +inf -> the best; all zeros if none is finite."""
    f = sanitize(fitness)
    finite = jnp.isfinite(f)
    lo = jnp.min(jnp.where(finite, f, jnp.inf))
    hi = jnp.max(jnp.where(finite, f, -jnp.inf))
    f = jnp.where(finite, f, jnp.where(f > 0, hi, lo))
    return jnp.where(jnp.any(finite), f, jnp.zeros_like(f))


def ars(
    popsize: int = 32,
    sigma: float = 0.03,
    learning_rate: float = 0.02,
    top_k: int | None = None,
    version: int = 1,
    dense: bool | None = None,
    chunk_size: int | None = None,
) -> Strategy:
    """Build ARS.

    Args:
      popsize: population size ``2N`` (static, even).
      sigma: exploration noise ``nu``.
      learning_rate: step size ``alpha``.
      top_k: ``b``, the directions used per update (static, ``1 <= b <= N``; None: all N).
      version: 1 or 2 (V2: pair with a task that normalises observations, e.g.
        ``ne.tasks.gymnax(..., normalize_obs=True)``; the update is the same).
      dense: keep the noise (True), regenerate it from seeds (False), or decide
        from the population's size (None).
      chunk_size: members whose noise is regenerated at once in ``tell`` when compact.
    """
    check_popsize(popsize, even=True)
    n_dir = popsize // 2
    b = n_dir if top_k is None else static_int("top_k", top_k, 1, n_dir, f"popsize/2 = {n_dir} directions")
    if version not in (1, 2):
        raise ValueError(f"version must be 1 or 2 (ARS V1 or V2), got {version!r}")

    def init(key: jax.Array, x0: PyTree) -> ARSState:
        del key
        flat, fields = search_start(x0)
        return ARSState(sigma=jnp.asarray(sigma, flat.dtype), **fields)

    def ask(key: jax.Array, state: ARSState) -> tuple[perturbation.Perturbation, ARSState]:
        flat = ravel(state.mean)
        return perturbation.perturbations(
            key, popsize, flat.shape[0], state.sigma, dense=dense, dtype=flat.dtype
        ), state

    def decode(state: ARSState, genotype: perturbation.Perturbation) -> PyTree:
        return perturbation.perturb(state.mean, genotype)

    def tell(
        key, state: ARSState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> ARSState:
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        flat = ravel(state.mean)
        d = flat.shape[0]

        r = finite_returns(fitness)
        r_plus, r_minus = r[:n_dir], r[n_dir:]
        _, top = jax.lax.top_k(jnp.maximum(r_plus, r_minus), b)
        sigma_r = jnp.std(jnp.concatenate([r_plus[top], r_minus[top]]))
        r_diff, _, base = perturbation.antithetic(r, genotypes)
        coeffs = jnp.zeros_like(r_diff).at[top].set(r_diff[top])
        chunk = chunk_size or perturbation.default_noise_chunk(d)
        step = perturbation.weighted_eps_sum(coeffs, base, d, chunk, flat.dtype)
        mean = flat + learning_rate / (b * jnp.where(sigma_r > 0, sigma_r, 1.0)) * step

        return ARSState(sigma=state.sigma, **search_step(decode, state, genotypes, fitness, mean))

    return Strategy(init, ask, tell, decode)

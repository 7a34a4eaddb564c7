"""Perturbation genotypes, shared by the ES family and the Deep GA.

A member is ``base[parent] + scale * eps``: ``eps`` is either stored (dense) or
regenerated from a 64-bit seed (compact, O(1) memory per member), so a
population of N members of d parameters never needs N*d floats. The ES
gradient ``sum_i w_i eps_i`` is accumulated chunk by chunk
(:func:`weighted_eps_sum`), regenerating compact noise as it goes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.rng import normal, seed_normal
from neuroevo.strategy import PyTree, check_x0, chunk_length

Array = jax.Array


class Perturbation(NamedTuple):
    """One member as ``base[parent] + scale * eps``.

    ``eps`` is either stored (``noise``, dense) or regenerated from ``seed``
    (raw threefry key data, compact: O(1) memory per member).
    """

    parent: Array  # int32[]: row of the strategy's base table (ES: always 0)
    scale: Array  # f32[]: step size (sign folded in for compact mirrored pairs; 0 for elites)
    noise: Array | None = None  # f32[d] when dense
    seed: Array | None = None  # uint32[2] when compact


def eps(genotype: Perturbation, dim: int, dtype=jnp.float32) -> Array:
    """The standard-normal direction of one member (stored or regenerated)."""
    if genotype.noise is not None:
        return genotype.noise
    return seed_normal(genotype.seed, (dim,), dtype)


def use_dense(popsize: int, dim: int, dense: bool | None, limit_bytes: int = 1 << 28) -> bool:
    """Static choice: keep the dense noise when popsize*dim float32s fit under ``limit_bytes``."""
    if dense is not None:
        return bool(dense)
    return popsize * dim * 4 <= limit_bytes


def sigma_at(sigma: Any, generation: Array, decay: Any = 1.0, limit: Any = 0.0) -> Array:
    """Step size at ``generation``: a schedule ``sigma(gen)`` or ``max(sigma*decay**gen, limit)``."""
    if callable(sigma):
        return jnp.asarray(sigma(generation), jnp.float32)
    return jnp.maximum(
        jnp.asarray(sigma, jnp.float32) * jnp.asarray(decay, jnp.float32) ** generation,
        jnp.asarray(limit, jnp.float32),
    )


def weighted_eps_sum(
    coeffs: Array, genotypes: Perturbation, dim: int, chunk_size: int | None = None, dtype=jnp.float32
) -> Array:
    """``sum_i coeffs[i] * eps_i`` without ever holding more than a chunk of the noise.

    Dense genotypes use one matrix-vector product; compact ones regenerate the
    noise ``chunk_size`` members at a time inside a ``lax.scan``.
    """
    return _weighted_noise_sums((coeffs,), lambda z: (z,), genotypes, dim, chunk_size, dtype)[0]


def weighted_eps_moments(
    coeffs: Array,
    sq_coeffs: Array,
    genotypes: Perturbation,
    dim: int,
    chunk_size: int | None = None,
    dtype=jnp.float32,
) -> tuple[Array, Array]:
    """``(sum_i coeffs[i] * eps_i, sum_i sq_coeffs[i] * eps_i**2)`` in one pass over the noise.

    The two sums a diagonal-Gaussian update needs (mean and per-dimension
    variance, as in SNES and PGPE); compact noise is regenerated once, chunk by chunk.
    """
    return _weighted_noise_sums((coeffs, sq_coeffs), lambda z: (z, z * z), genotypes, dim, chunk_size, dtype)


def _weighted_noise_sums(coeffs, features, genotypes: Perturbation, dim, chunk_size, dtype):
    """``sum_i coeffs[k][i] * features(eps_i)[k]`` for each k, regenerating compact noise by chunks."""
    if genotypes.noise is not None:
        z = genotypes.noise
        return tuple(c.astype(z.dtype) @ f for c, f in zip(coeffs, features(z), strict=True))
    n = coeffs[0].shape[0]
    c = chunk_length(n, chunk_size)
    seeds = genotypes.seed.reshape(n // c, c, *genotypes.seed.shape[1:])
    chunks = tuple(w.reshape(n // c, c) for w in coeffs)

    def body(acc, xs):
        seed_chunk, coeff_chunks = xs
        z = jax.vmap(lambda s: seed_normal(s, (dim,), dtype))(seed_chunk)
        terms = zip(acc, coeff_chunks, features(z), strict=True)
        return tuple(a + w.astype(dtype) @ f for a, w, f in terms), None

    init = tuple(jnp.zeros((dim,), dtype) for _ in coeffs)
    acc, _ = jax.lax.scan(body, init, (seeds, chunks))
    return acc


def perturbations(
    key: Array,
    popsize: int,
    dim: int,
    scale: Any,
    *,
    mirrored: bool = True,
    dense: bool | None = None,
    dtype=jnp.float32,
) -> Perturbation:
    """``popsize`` members ``mean + scale * eps`` around one mean (parent 0): the ES ``ask``.

    Mirrored: the first half holds ``+eps_i``, the second half ``-eps_i``. Dense
    (see :func:`use_dense`): the noise is drawn once and stored, the sign folded
    into it, ``scale`` the same for everyone. Compact: one 64-bit seed per pair,
    stored twice, and the sign folded into ``scale``. Either way member ``i`` is
    ``mean + scale_i * eps(genotype_i)`` and the first half's ``eps`` is ``+eps_i``
    (what :func:`antithetic` relies on). Strategies with a per-dimension sigma
    vector pass ``scale=1`` (a sign) and multiply by their sigma in ``decode``
    (:func:`perturb`).
    """
    half = popsize // 2 if mirrored else popsize
    parent = jnp.zeros((popsize,), jnp.int32)
    if use_dense(popsize, dim, dense):
        z = normal(key, (half, dim), dtype)
        noise = jnp.concatenate([z, -z]) if mirrored else z
        return Perturbation(parent, jnp.full((popsize,), scale), noise=noise)
    seeds = jax.random.key_data(jax.random.split(key, half))
    if not mirrored:
        return Perturbation(parent, jnp.full((popsize,), scale), seed=seeds)
    scale = jnp.concatenate([jnp.full((half,), scale), jnp.full((half,), -scale)])
    return Perturbation(parent, scale, seed=jnp.concatenate([seeds, seeds]))


def antithetic(weights: Array, genotypes: Perturbation, mirrored: bool = True):
    """``(w+ - w-, w+ + w-, first half)`` of per-member ``weights`` for :func:`perturbations` pairs.

    ``sum_i weights_i * sign_i * eps_i`` is then ``weighted_eps_sum(w+ - w-, first half)``
    and ``sum_i weights_i * eps_i**2`` has coefficients ``w+ + w-``. Unmirrored:
    ``(weights, weights, genotypes)``.
    """
    if not mirrored:
        return weights, weights, genotypes
    half = weights.shape[0] // 2
    first = jax.tree_util.tree_map(lambda x: x[:half], genotypes)
    return weights[:half] - weights[half:], weights[:half] + weights[half:], first


def perturb(mean: PyTree, genotype: Perturbation, sigma: Any = None) -> PyTree:
    """Decode one :func:`perturbations` member: ``mean + scale * sigma * eps``.

    ``sigma`` is None (the step is all in ``scale``), a scalar, or a flat ``(d,)``
    vector of per-dimension standard deviations (then ``scale`` is the sign).
    """
    flat, unravel = check_x0(mean)
    step = genotype.scale if sigma is None else genotype.scale * sigma
    return unravel(flat + step * eps(genotype, flat.shape[0], flat.dtype))


def default_noise_chunk(dim: int, budget_bytes: int = 64 << 20) -> int:
    """Members whose noise fits in ``budget_bytes`` (at least one)."""
    return max(1, budget_bytes // (4 * dim))

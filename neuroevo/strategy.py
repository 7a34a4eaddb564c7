"""The one interface every optimiser implements, and the helpers they share.

A :class:`Strategy` is a NamedTuple of four pure functions, in the manner of
``optax.GradientTransformation``::

    init:   (key, x0) -> state
    ask:    (key, state) -> (genotypes, state)
    tell:   (key, state, genotypes, fitness, descriptors=None) -> state
    decode: (state, genotype) -> solution        # one member, a pytree like x0

Fitness is maximised. ``genotypes`` carries a leading population axis and may be
compact (a seed from which a member is regenerated) rather than the dense
population: :func:`population` materialises members with ``vmap(decode)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

PyTree = Any
Array = jax.Array


class Strategy(NamedTuple):
    """A gradient-free optimiser as four pure functions (see module docstring)."""

    init: Callable[..., Any]
    ask: Callable[..., tuple[Any, Any]]
    tell: Callable[..., Any]
    decode: Callable[[Any, Any], PyTree]


def population(strategy: Strategy, state: Any, genotypes: Any) -> PyTree:
    """Materialise every member of ``genotypes``: ``vmap(decode)`` over the leading axis."""
    return jax.vmap(strategy.decode, in_axes=(None, 0))(state, genotypes)


def population_size(genotypes: Any) -> int:
    """The (static) length of the leading population axis of ``genotypes``."""
    leaves = jax.tree_util.tree_leaves(genotypes)
    if not leaves:
        raise ValueError("genotypes is an empty pytree: it has no population axis")
    return int(leaves[0].shape[0])


# --------------------------------------------------------------------------- #
# Checks: raised at trace time, naming both shapes.
# --------------------------------------------------------------------------- #


def check_fitness(fitness: Array, popsize: int, name: str = "fitness") -> Array:
    """Return ``fitness`` as an array, or raise ``ValueError`` if its shape is not (popsize,)."""
    fitness = jnp.asarray(fitness)
    if fitness.shape != (popsize,):
        raise ValueError(
            f"{name} has shape {fitness.shape}, but the population has shape ({popsize},): "
            f"pass one value per member"
        )
    return fitness


def check_x0(x0: PyTree) -> tuple[Array, Callable[[Array], PyTree]]:
    """Ravel ``x0`` into a flat float vector, raising ``ValueError`` on a bad pytree."""
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError("x0 is an empty pytree: give at least one array of parameters")
    for leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"x0 leaves must be floating point, got a leaf of dtype {dtype}")
    flat, unravel = ravel_pytree(x0)
    return flat, unravel


def check_popsize(popsize: int, *, even: bool = False, minimum: int = 2) -> int:
    """Population size is a static Python int; ``even`` for mirrored sampling."""
    if isinstance(popsize, jax.core.Tracer) or not isinstance(popsize, (int,)) or isinstance(popsize, bool):
        raise ValueError(f"popsize must be a Python int (a static shape), got {popsize!r}")
    if popsize < minimum:
        raise ValueError(f"popsize must be at least {minimum}, got {popsize}")
    if even and popsize % 2:
        raise ValueError(f"popsize must be even for mirrored sampling, got {popsize}")
    return popsize


def unravel_like(tree: PyTree) -> Callable[[Array], PyTree]:
    """The unravel function of ``tree``'s structure (its ravel is dead code under jit)."""
    return ravel_pytree(tree)[1]


def ravel(tree: PyTree) -> Array:
    return ravel_pytree(tree)[0]


# --------------------------------------------------------------------------- #
# Fitness handling.
# --------------------------------------------------------------------------- #


def sanitize(fitness: Array) -> Array:
    """NaN means worst: map NaN to -inf so that it ranks below every real value."""
    return jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)


def _flip_negative(k: Array) -> Array:
    """Reverse the order of the negative floats' bit patterns (its own inverse)."""
    return jnp.where(k < 0, k ^ jnp.array(jnp.iinfo(k.dtype).max, k.dtype), k)


def _ordered_ints(x: Array) -> Array:
    """Floats as integers of the same width in the same order (-0.0 as 0.0); NaN not allowed."""
    ints = jnp.int64 if jnp.dtype(x.dtype).itemsize == 8 else jnp.int32
    return _flip_negative(jax.lax.bitcast_convert_type(jnp.where(x == 0, jnp.zeros_like(x), x), ints))


def sort_floats(x: Array) -> Array:
    """``jnp.sort`` along the last axis, exactly, by sorting order-preserving integers (XLA's
    CPU sort of floats is several times slower). NaN not allowed (``sanitize`` first)."""
    return jax.lax.bitcast_convert_type(_flip_negative(jnp.sort(_ordered_ints(x), axis=-1)), x.dtype)


def median(x: Array) -> Array:
    """``jnp.median`` along the last axis (``sort_floats``); NaN not allowed."""
    n = x.shape[-1]
    s = sort_floats(x)
    return (s[..., (n - 1) // 2] + s[..., n // 2]) / 2


def argsort(keys: Array) -> Array:
    """Stable ascending ``jnp.argsort`` of a float vector, by sorting one packed integer key.

    XLA's CPU sort of a (key, index) pair calls a comparator per comparison; one
    integer key sorts several times faster (a vmapped batch of CMA-ES rankings:
    about 5x). Each key's bits, mapped to an order-preserving integer, hold the
    member's index in their lowest ``ceil(log2 n)`` bits (with ``jax_enable_x64``;
    otherwise ``jnp.argsort``). Exact for float32 keys (32 spare bits); a float64
    key gives up that many lowest mantissa bits, so only keys within ``n * 2**-52``
    (relative) of each other are ordered by index instead of by value. NaN keys are
    not allowed (``sanitize`` first).
    """
    n = keys.shape[-1]
    bits = max(1, (n - 1).bit_length())
    if bits > 20 or not jnp.issubdtype(keys.dtype, jnp.floating) or not jax.config.jax_enable_x64:
        return jnp.argsort(keys, axis=-1, stable=True)  # (no 64-bit integers without x64)
    index = jnp.arange(n, dtype=jnp.int64)
    if jnp.dtype(keys.dtype).itemsize <= 4:
        k = _ordered_ints(keys.astype(jnp.float32)).astype(jnp.int64) << 32
    else:
        k = _ordered_ints(keys) >> bits << bits
    return (jnp.sort(k | index, axis=-1) & ((1 << bits) - 1)).astype(jnp.int32)


def centered_ranks(fitness: Array) -> Array:
    """Centred ranks in [-0.5, 0.5] (Salimans et al. 2017); NaN/-inf rank last.

    Tied values share their average rank, so a flat fitness gives no signal.
    """
    n = fitness.shape[0]
    f = sanitize(fitness)
    s = jnp.sort(f)
    lo = jnp.searchsorted(s, f, side="left", method="scan")
    hi = jnp.searchsorted(s, f, side="right", method="scan")
    return (lo + hi - 1).astype(jnp.float32) / (2.0 * jnp.maximum(n - 1, 1)) - 0.5


def nes_utilities(fitness: Array) -> Array:
    """The NES utilities (Wierstra et al. 2014, eq. 9), one per member; NaN/-inf rank last.

    With rank ``k = 1`` for the best of ``n``:
    ``u_k = max(0, log(n/2 + 1) - log k) / sum_j max(0, log(n/2 + 1) - log j) - 1/n``,
    so they sum to zero and only the better half gets positive weight.
    """
    n = fitness.shape[0]
    raw = jnp.maximum(0.0, jnp.log(n / 2.0 + 1.0) - jnp.log(jnp.arange(1, n + 1, dtype=jnp.float32)))
    order = jnp.argsort(-sanitize(fitness), stable=True)  # best first
    return jnp.zeros((n,), jnp.float32).at[order].set(raw / raw.sum() - 1.0 / n)


def update_best(
    best_solution: PyTree, best_fitness: Array, candidate: PyTree, candidate_fitness: Array
) -> tuple[PyTree, Array]:
    """Keep the better of (best, candidate); -inf/NaN candidates never win."""
    candidate_fitness = sanitize(jnp.asarray(candidate_fitness)).astype(best_fitness.dtype)
    better = candidate_fitness > best_fitness
    best_solution = jax.tree_util.tree_map(lambda b, c: jnp.where(better, c, b), best_solution, candidate)
    return best_solution, jnp.where(better, candidate_fitness, best_fitness)


# --------------------------------------------------------------------------- #
# Perturbation genotypes, shared by the ES family and the Deep GA.
# --------------------------------------------------------------------------- #


class Perturbation(NamedTuple):
    """One member as ``base[parent] + scale * eps``.

    ``eps`` is either stored (``noise``, dense) or regenerated from ``seed``
    (raw threefry key data, compact: O(1) memory per member).
    """

    parent: Array  # int32[]: row of the strategy's base table (ES: always 0)
    scale: Array  # f32[]: step size (sign folded in for compact mirrored pairs; 0 for elites)
    noise: Array | None = None  # f32[d] when dense
    seed: Array | None = None  # uint32[2] when compact


def normal(key: Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """Standard-normal noise for perturbations.

    In float32 each value is the inverse normal CDF of a 16-bit uniform (two
    values per 32 random bits): a Gaussian quantised at 2**-16 in probability
    and truncated at |z| < 4.3, statistically indistinguishable for ES and GA
    perturbations and about 30% cheaper than ``jax.random.normal`` on the CPU.
    Other dtypes (float64 runs) use ``jax.random.normal``.
    """
    if jnp.dtype(dtype) != jnp.float32:
        return jax.random.normal(key, shape, dtype)
    size = math.prod(shape)
    return normal_from_bits(jax.random.bits(key, ((size + 1) // 2,), jnp.uint32), shape)


def uniform16(bits: Array, size: int) -> Array:
    """``size`` uniforms in (0, 1) at 16-bit resolution from ``ceil(size / 2)`` random words (two
    per word): for probabilities and choices a 1/65536 grid is fine, and it halves the draws."""
    halves = jnp.concatenate([bits & 0xFFFF, bits >> 16])[:size]
    return (halves.astype(jnp.float32) + 0.5) * (1.0 / 65536.0)


def mix32(x: Array) -> Array:
    """Wellons' "lowbias32" integer hash of uint32 words."""
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_bits(key: Array, n: int, offset: Array | int = 0) -> Array:
    """Random uint32 words ``offset .. offset + n - 1`` of ``key``'s stream: a counter hashed
    twice (:func:`mix32`) with the key's two words.

    XLA's CPU threefry is a rolled twenty-round loop; two rounds of a strong 32-bit
    hash over a threefry-keyed counter cost a fraction of it (use keys from
    ``jax.random.split``/``fold_in``, one per stream), with no visible bias at the
    resolutions drawn from it. Any block of the stream can be drawn on its own.
    """
    k = jax.random.key_data(key)
    counter = jnp.asarray(offset).astype(jnp.uint32) + jnp.arange(n, dtype=jnp.uint32)
    counter = counter * jnp.uint32(0x9E3779B9)
    return mix32(mix32(counter + k[0]) ^ k[1])


def normal_from_words(words: Array) -> Array:
    """One float32 standard normal per uint32 word: the inverse normal CDF of a 23-bit uniform
    (a Gaussian quantised at 2**-23 in probability, |z| < 5.4)."""
    u = ((words >> 9).astype(jnp.float32) + 0.5) * np.float32(2.0**-22) - 1.0
    return _SQRT2 * jax.lax.erf_inv(u)


def normal_from_bits(bits: Array, shape: tuple[int, ...]) -> Array:
    """:func:`normal`'s float32 values of ``shape`` from ``ceil(prod(shape) / 2)`` random words."""
    u = 2.0 * uniform16(bits, math.prod(shape)) - 1.0
    return (_SQRT2 * jax.lax.erf_inv(u)).reshape(shape)


_SQRT2 = np.float32(np.sqrt(2.0))


def eps(genotype: Perturbation, dim: int, dtype=jnp.float32) -> Array:
    """The standard-normal direction of one member (stored or regenerated)."""
    if genotype.noise is not None:
        return genotype.noise
    return normal(jax.random.wrap_key_data(genotype.seed), (dim,), dtype)


def use_dense(popsize: int, dim: int, dense: bool | None, limit_bytes: int = 1 << 28) -> bool:
    """Static choice: keep the dense noise when popsize*dim float32s fit under ``limit_bytes``."""
    if dense is not None:
        return bool(dense)
    return popsize * dim * 4 <= limit_bytes


def chunk_length(total: int, chunk: int | None) -> int:
    """The largest divisor of ``total`` not above ``chunk`` (``total`` when ``chunk`` is None)."""
    if chunk is None or chunk >= total:
        return total
    if chunk < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk}")
    for c in range(chunk, 0, -1):
        if total % c == 0:
            return c
    return 1


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
        z = jax.vmap(lambda s: normal(jax.random.wrap_key_data(s), (dim,), dtype))(seed_chunk)
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


def update_best_member(decode: Callable, state: Any, genotypes: Any, fitness: Array) -> tuple[PyTree, Array]:
    """``update_best`` with this generation's best member (decoded from ``state``)."""
    i = jnp.argmax(sanitize(fitness))
    candidate = decode(state, jax.tree_util.tree_map(lambda x: x[i], genotypes))
    return update_best(state.best_solution, state.best_fitness, candidate, fitness[i])


def search_start(x0: PyTree) -> tuple[Array, dict[str, Any]]:
    """``(flat x0, fields)``: what every distribution state starts with.

    ``fields`` are ``mean`` (``x0``), ``best_solution`` (``x0``), ``best_fitness``
    (-inf, f32) and ``generation`` (0, int32); a strategy's ``init`` adds its own.
    """
    flat, _ = check_x0(x0)
    mean = jax.tree_util.tree_map(jnp.asarray, x0)
    return flat, dict(
        mean=mean,
        best_solution=mean,
        best_fitness=jnp.array(-jnp.inf, jnp.float32),
        generation=jnp.zeros((), jnp.int32),
    )


def search_step(
    decode: Callable, state: Any, genotypes: Any, fitness: Array, flat_mean: Array
) -> dict[str, Any]:
    """The :func:`search_start` fields after a ``tell``.

    The new mean (given flat, unravelled here), the best member so far, the next generation.
    """
    best_solution, best_fitness = update_best_member(decode, state, genotypes, fitness)
    return dict(
        mean=unravel_like(state.mean)(flat_mean),
        best_solution=best_solution,
        best_fitness=best_fitness,
        generation=state.generation + 1,
    )


def default_noise_chunk(dim: int, budget_bytes: int = 64 << 20) -> int:
    """Members whose noise fits in ``budget_bytes`` (at least one)."""
    return max(1, budget_bytes // (4 * dim))

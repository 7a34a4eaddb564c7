"""Random numbers for perturbations: cheap Gaussians and a counter-based hash stream.

Every function takes an explicit key (or words drawn from one). The float32
Gaussians are inverse-CDF transforms of coarse uniforms, statistically
indistinguishable from ``jax.random.normal`` at the resolutions ES and GA
perturbations use, and cheaper on the CPU.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

_SQRT2 = np.float32(np.sqrt(2.0))


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


def seed_normal(seed: Array, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
    """The standard-normal noise of a compact genotype's stored seed (raw key data, ``uint32[2]``).

    In float32 every value is a function of its own index alone (:func:`hash_bits` of a
    counter, then :func:`normal_from_words`), so XLA fuses the draw into whatever uses it:
    ``mean + sigma * seed_normal(seed, ...)`` over a chunk of members writes the members and
    nothing else (no buffer of random bits the size of the chunk). Other dtypes (float64 runs)
    use ``jax.random.normal`` of the seed's key.
    """
    key = jax.random.wrap_key_data(seed)
    if jnp.dtype(dtype) != jnp.float32:
        return jax.random.normal(key, shape, dtype)
    return normal_from_words(hash_bits(key, math.prod(shape))).reshape(shape)


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


def uniform(key: Array, shape: tuple[int, ...], offset: Array | int = 0) -> Array:
    """float32 uniforms in (0, 1) at 24-bit resolution from :func:`hash_bits` words
    ``offset ..`` of ``key``'s stream (cheap to compile and run, unlike threefry on the CPU)."""
    words = hash_bits(key, math.prod(shape), offset).reshape(shape)
    return ((words >> 8).astype(jnp.float32) + 0.5) * np.float32(2.0**-24)


class Stream:
    """Draws from one key's :func:`hash_bits` stream, block after block.

    Each draw takes the next block (a static offset), so one key serves every
    draw of an ``ask`` without splitting it. Used at trace time only.
    """

    def __init__(self, key: Array):
        self.key = key
        self.offset = 0

    def words(self, shape: tuple[int, ...]) -> Array:
        """uint32 words of ``shape``."""
        n = math.prod(shape)
        words = hash_bits(self.key, n, self.offset)
        self.offset += n
        return words.reshape(shape)

    def uniform(self, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
        """Uniforms in (0, 1) at 24-bit resolution."""
        u = ((self.words(shape) >> 8).astype(jnp.float32) + 0.5) * np.float32(2.0**-24)
        return u.astype(dtype)

    def integers(self, shape: tuple[int, ...], high: Array | int) -> Array:
        """Integers in ``[0, high)`` (``high`` broadcasts to ``shape``)."""
        return jnp.minimum((self.uniform(shape) * high).astype(jnp.int32), jnp.asarray(high) - 1)

    def normal(self, shape: tuple[int, ...], dtype=jnp.float32) -> Array:
        """Standard normals (:func:`normal_from_words`, one word each)."""
        return normal_from_words(self.words(shape)).astype(dtype)

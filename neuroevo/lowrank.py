"""Low-rank perturbations: each weight matrix moves by ``A B^T / sqrt(r)``, regenerated from a seed.

EGGROLL ("Evolution Strategies at the Hyperscale", Sarkar et al., 2025,
arXiv:2511.16652) perturbs a matrix-shaped parameter ``W`` (m x k) of member
``i`` by ``sigma * A_i B_i^T / sqrt(r)`` with ``A_i`` (m x r) and ``B_i``
(k x r) standard normal, instead of a full Gaussian matrix. Each entry of
``A B^T / sqrt(r)`` has mean 0 and variance 1, as a dense Gaussian's does.

The conventions here, shared by ``eggroll`` and the GA's ``rank=`` mutations:

- A leaf with two or more axes, shape ``(..., k)``, is the matrix
  ``(prod(...), k)``: a Dense kernel ``(in, out)``; a Conv kernel
  ``(kh, kw, c_in, c_out)`` as ``(kh*kw*c_in, c_out)``; an embedding
  ``(vocab, features)``; a DenseGeneral kernel ``(in..., features...)`` split
  before its last axis. Leaves with fewer axes, and flax's ``bias`` and
  ``scale`` leaves whatever their shape (a DenseGeneral bias ``(heads,
  head_dim)``), get dense Gaussian noise: they are small, and no layer reads
  them as a matrix.
- A member's noise is one vector of standard normals drawn from its 64-bit seed
  (:func:`draw`), cut leaf by leaf, in order, into ``A`` (m*r values, row-major
  (m, r)) then ``B`` (k*r values), or the leaf's own noise. So a member costs
  ``sum (m + k) r`` random numbers, not ``sum m k``.
- The ES gradient ``sum_i c_i eps_i`` is accumulated chunk by chunk
  (:func:`weighted_sum`): per matrix, ``A_chunk^T diag(c) B_chunk`` is one
  matrix product; the dense noise of a whole population never exists.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import rng
from neuroevo.strategy import PyTree, check_x0, chunk_length, static_int

Array = jax.Array


DENSE_NAMES = ("bias", "scale")  # flax leaves that get dense noise whatever their shape


class Layout(NamedTuple):
    """Static description of a parameter pytree's low-rank noise (hashable)."""

    shapes: tuple[tuple[int, ...], ...]  # every leaf's shape, in tree_leaves order
    matrix: tuple[bool, ...]  # leaf is perturbed as a low-rank matrix
    paths: tuple[str, ...]  # leaf names, for messages
    rank: int

    def rows(self, i: int) -> int:
        return math.prod(self.shapes[i][:-1])

    def sizes(self) -> tuple[int, ...]:
        """Random numbers each leaf takes from a member's noise vector."""
        out = []
        for shape, is_matrix in zip(self.shapes, self.matrix, strict=True):
            out.append((math.prod(shape[:-1]) + shape[-1]) * self.rank if is_matrix else math.prod(shape))
        return tuple(out)

    @property
    def size(self) -> int:
        """Random numbers per member."""
        return sum(self.sizes())


def layout(x0: PyTree, rank: int) -> Layout:
    """The low-rank layout of ``x0``; ``ValueError`` when ``rank`` is not in [1, a matrix's smaller side]."""
    check_x0(x0)
    static_int("rank", rank, 1)
    with_paths = jax.tree_util.tree_flatten_with_path(x0)[0]
    shapes, matrix, paths = [], [], []
    for path, leaf in with_paths:
        shape = tuple(int(d) for d in jnp.shape(leaf))
        name = jax.tree_util.keystr(path) or "x0"
        last = getattr(path[-1], "key", None) if path else None
        is_matrix = len(shape) >= 2 and last not in DENSE_NAMES
        if is_matrix:
            m, k = math.prod(shape[:-1]), shape[-1]
            if rank > min(m, k):
                raise ValueError(
                    f"rank={rank} is larger than the smaller side of parameter {name} of shape {shape} "
                    f"(a {m} x {k} matrix): use a rank in [1, {min(m, k)}]"
                )
        shapes.append(shape)
        matrix.append(is_matrix)
        paths.append(name)
    return Layout(tuple(shapes), tuple(matrix), tuple(paths), rank)


def draw(seed: Array, lay: Layout, dtype=jnp.float32) -> list[Any]:
    """One member's noise factors from its seed (uint32[2]): per leaf ``(A, B)`` or the leaf's noise."""
    words = rng.hash_bits(jax.random.wrap_key_data(seed), lay.size)
    z = rng.normal_from_words(words).astype(dtype)
    factors, start = [], 0
    for i, (shape, size) in enumerate(zip(lay.shapes, lay.sizes(), strict=True)):
        chunk = z[start : start + size]
        start += size
        if lay.matrix[i]:
            m = lay.rows(i)
            factors.append(
                (chunk[: m * lay.rank].reshape(m, lay.rank), chunk[m * lay.rank :].reshape(-1, lay.rank))
            )
        else:
            factors.append(chunk.reshape(shape))
    return factors


def dense_noise(factors: list[Any], lay: Layout) -> list[Array]:
    """Each leaf's noise as a dense array of its shape: ``A B^T / sqrt(r)`` for matrices."""
    out = []
    for i, f in enumerate(factors):
        if lay.matrix[i]:
            a, b = f
            out.append((a @ b.T / np.float32(math.sqrt(lay.rank))).astype(a.dtype).reshape(lay.shapes[i]))
        else:
            out.append(f)
    return out


def perturb(mean: PyTree, seed: Array, scale: Array, lay: Layout) -> PyTree:
    """One member: ``mean + scale * eps(seed)`` leaf by leaf (the dense member)."""
    leaves, treedef = jax.tree_util.tree_flatten(mean)
    noise = dense_noise(draw(seed, lay, leaves[0].dtype), lay)
    return treedef.unflatten([w + (scale * n).astype(w.dtype) for w, n in zip(leaves, noise, strict=True)])


def noise_vector(seed: Array, lay: Layout, dtype=jnp.float32) -> Array:
    """A member's noise as one flat vector (the ravelled dense leaves), for flat-vector strategies."""
    return jnp.concatenate([n.reshape(-1) for n in dense_noise(draw(seed, lay, dtype), lay)])


def weighted_sum(
    coeffs: Array, seeds: Array, lay: Layout, chunk_size: int | None = None, dtype=jnp.float32
) -> list[Array]:
    """``sum_i coeffs[i] * eps_i`` per leaf (dense, full rank), regenerating ``chunk_size`` members at a time.

    For a matrix leaf each chunk adds ``sum_c coeffs[c] A_c B_c^T / sqrt(r)``, one
    matrix product of ``(m, chunk*r)`` by ``(chunk*r, k)``.
    """
    n = coeffs.shape[0]
    c = chunk_length(n, chunk_size)
    seed_chunks = seeds.reshape(n // c, c, *seeds.shape[1:])
    coeff_chunks = coeffs.reshape(n // c, c).astype(dtype)
    inv_sqrt_rank = np.float32(1.0 / math.sqrt(lay.rank))

    def body(acc, xs):
        seed_chunk, w = xs
        factors = jax.vmap(lambda s: draw(s, lay, dtype))(seed_chunk)
        new = []
        for i, (a, f) in enumerate(zip(acc, factors, strict=True)):
            if lay.matrix[i]:
                fa, fb = f  # (c, m, r), (c, k, r)
                term = jnp.einsum("cmr,ckr->mk", fa * (w * inv_sqrt_rank)[:, None, None].astype(dtype), fb)
                new.append(a + term.reshape(a.shape))
            else:
                new.append(a + jnp.tensordot(w, f, axes=1))
        return new, None

    init = [jnp.zeros(shape, dtype) for shape in lay.shapes]
    acc, _ = jax.lax.scan(body, init, (seed_chunks, coeff_chunks))
    return acc


def default_chunk(lay: Layout, budget_bytes: int = 64 << 20) -> int:
    """Members whose factors fit in ``budget_bytes`` (at least one)."""
    return max(1, budget_bytes // (4 * max(lay.size, 1)))

"""Discrete genotypes: integer and categorical genes with per-gene cardinalities.

A :class:`Space` is static data (numpy, built on the host): gene ``i`` takes the
integers ``low[i] .. high[i]`` (inclusive), so it has ``high[i] - low[i] + 1``
values, at least 2::

    ne.space.categorical([3, 5, 5, 2])    # gene i in {0, .., cardinality_i - 1}
    ne.space.integer(-2, 2, n_genes=8)    # eight genes in {-2, .., 2}
    ne.space.integer([0, 1], [7, 4])      # per-gene bounds

A genotype is an ``int32`` vector of ``n_genes`` genes. Strategies take a
space as ``space=`` (``ga``, ``nsga2``, ``regularized_evolution``) and then
evolve such vectors with the operators below, all pure and jit/vmap-able:

- :func:`sample`: each gene uniform over its values.
- :func:`mutate`: each gene, with probability ``rate``, replaced by a value drawn
  uniformly from its *other* values (per-gene mutation; a mutated gene always changes).
- :func:`mutate_one`: exactly one gene, chosen uniformly, replaced by a uniformly
  drawn other value (the single-edit mutation of regularized evolution).
- :func:`uniform_crossover`: two children, each gene exchanged between the parents
  with probability ``rate`` (Syswerda 1989).

Categorical and integer genes are mutated alike (uniform over the other values):
the order of an integer gene's values is not used.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import rng

Array = jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class Space:
    """Genes ``low[i] .. high[i]`` (inclusive, int64 numpy vectors); build with :func:`categorical`
    or :func:`integer`."""

    low: np.ndarray
    high: np.ndarray

    @property
    def n_genes(self) -> int:
        return int(self.low.shape[0])

    @property
    def cardinalities(self) -> np.ndarray:
        """The number of values of each gene."""
        return self.high - self.low + 1

    def __repr__(self) -> str:
        return f"Space(low={self.low.tolist()}, high={self.high.tolist()})"


def _integers(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or _whole(array)):
        raise ValueError(f"{name} must be integers, got {values!r}")
    return array.astype(np.int64)


def _whole(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating) and bool(
        np.all(np.isfinite(array) & (array == np.round(array)))
    )


def categorical(cardinalities: Sequence[int]) -> Space:
    """Genes with ``cardinalities[i]`` categories each, coded ``0 .. cardinalities[i] - 1``.

    Raises ``ValueError`` for an empty list or a cardinality below 2, naming the gene.
    """
    cards = _integers("cardinalities", cardinalities)
    if cards.ndim != 1 or cards.shape[0] == 0:
        raise ValueError(f"cardinalities must be a non-empty list of ints, got {cardinalities!r}")
    small = np.flatnonzero(cards < 2)
    if small.size:
        i = int(small[0])
        raise ValueError(
            f"categorical gene {i} has cardinality {int(cards[i])}: every gene needs at least 2 values "
            f"(cardinalities {cards.tolist()})"
        )
    return Space(np.zeros_like(cards), cards - 1)


def integer(low: int | Sequence[int], high: int | Sequence[int], n_genes: int | None = None) -> Space:
    """Integer genes in ``[low, high]`` (inclusive): scalars with ``n_genes``, or per-gene sequences.

    Raises ``ValueError`` when a gene has ``high <= low`` (fewer than 2 values) or the shapes disagree.
    """
    lo, hi = _integers("low", low), _integers("high", high)
    if n_genes is not None:
        if isinstance(n_genes, bool) or not isinstance(n_genes, int) or n_genes < 1:
            raise ValueError(f"n_genes must be a positive int, got {n_genes!r}")
        lo, hi = np.broadcast_to(lo, (n_genes,)), np.broadcast_to(hi, (n_genes,))
    if lo.ndim != 1 or lo.shape != hi.shape or lo.shape[0] == 0:
        raise ValueError(
            f"low and high must be vectors of the same length (or scalars with n_genes=), "
            f"got shapes {lo.shape} and {hi.shape}"
        )
    small = np.flatnonzero(hi <= lo)
    if small.size:
        i = int(small[0])
        raise ValueError(
            f"integer gene {i} has low={int(lo[i])} >= high={int(hi[i])}: every gene needs at least "
            "2 values (low < high)"
        )
    return Space(lo.copy(), hi.copy())


def check_space(space: Any) -> Space:
    if not isinstance(space, Space):
        raise ValueError(
            f"space must be a neuroevo.space.Space (ne.space.categorical or ne.space.integer), got {space!r}"
        )
    return space


def check_genotype(space: Space, x0: Any, name: str = "x0") -> None:
    """``x0`` is None or an integer vector of the space's genes, inside it; else ``ValueError``."""
    if x0 is None:
        return
    shape = jnp.shape(x0)
    dtype = jnp.result_type(x0)
    if shape != (space.n_genes,) or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"{name} must be an integer vector of the space's {space.n_genes} genes, "
            f"got shape {shape} and dtype {dtype}"
        )
    if not isinstance(x0, jax.core.Tracer):
        values = np.asarray(x0)
        outside = np.flatnonzero((values < space.low) | (values > space.high))
        if outside.size:
            i = int(outside[0])
            raise ValueError(
                f"{name}[{i}] = {int(values[i])} is outside gene {i}'s values "
                f"[{int(space.low[i])}, {int(space.high[i])}]"
            )


def _bounds(space: Space) -> tuple[Array, Array]:
    return jnp.asarray(space.low, jnp.int32), jnp.asarray(space.cardinalities, jnp.int32)


def sample(key: Array, space: Space, n: int | None = None) -> Array:
    """Genotypes, every gene uniform over its values: ``int32[n, n_genes]`` (``[n_genes]`` if n is None)."""
    low, cards = _bounds(space)
    shape = (space.n_genes,) if n is None else (n, space.n_genes)
    return low + jnp.minimum((rng.uniform(key, shape) * cards).astype(jnp.int32), cards - 1)


def shifted(space: Space, genes: Array, u: Array) -> Array:
    """Each gene moved to another of its values, chosen by ``u`` (uniform in [0, 1), shaped like
    ``genes``): uniform over the other values when ``u`` is."""
    low, cards = _bounds(space)
    step = 1 + jnp.minimum((u * (cards - 1)).astype(jnp.int32), cards - 2)
    return low + (genes - low + step) % cards


def _stream(key: Array | rng.Stream) -> rng.Stream:
    return key if isinstance(key, rng.Stream) else rng.Stream(key)


def mutate(key: Array | rng.Stream, space: Space, genes: Array, rate) -> Array:
    """Each gene, with probability ``rate`` (traceable), replaced by a uniformly drawn other value.

    ``key`` is a PRNG key or an :class:`neuroevo.rng.Stream` to draw from (as for the others below).
    """
    draw = _stream(key)
    hit = draw.uniform(genes.shape) < rate
    return jnp.where(hit, shifted(space, genes, draw.uniform(genes.shape)), genes)


def mutate_one(key: Array | rng.Stream, space: Space, genes: Array) -> Array:
    """Exactly one gene (chosen uniformly) of each genotype replaced by a uniformly drawn other value."""
    draw = _stream(key)
    which = draw.integers(genes.shape[:-1] + (1,), space.n_genes)
    hit = jnp.arange(space.n_genes) == which
    return jnp.where(hit, shifted(space, genes, draw.uniform(genes.shape)), genes)


def uniform_crossover(key: Array | rng.Stream, a: Array, b: Array, rate=0.5) -> tuple[Array, Array]:
    """Two children of parents ``a`` and ``b``: each gene exchanged with probability ``rate``."""
    swap = _stream(key).uniform(a.shape) < rate
    return jnp.where(swap, b, a), jnp.where(swap, a, b)


def clip(space: Space, genes: Array) -> Array:
    """``genes`` as int32, each inside its values."""
    low, cards = _bounds(space)
    return jnp.clip(jnp.asarray(genes).astype(jnp.int32), low, low + cards - 1)


def contains(space: Space, genes: Array) -> Array:
    """Whether every gene of ``genes`` (any leading axes) is one of its values."""
    low, cards = _bounds(space)
    genes = jnp.asarray(genes)
    return jnp.all((genes >= low) & (genes <= low + cards - 1))

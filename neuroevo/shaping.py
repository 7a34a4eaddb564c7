"""Fitness shaping: raw fitness to per-member weights.

Fitness is maximised, and NaN means worst (:func:`sanitize` maps it to -inf, so
it ranks below every real value). The shapings are rank-based, hence invariant
to monotone transformations of fitness.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def sanitize(fitness: Array) -> Array:
    """NaN means worst: map NaN to -inf so that it ranks below every real value."""
    return jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)


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

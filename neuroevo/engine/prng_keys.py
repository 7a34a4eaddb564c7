"""PRNG keys at the public entry points: new-style typed keys and legacy ``uint32`` keys alike.

``jax.random.key(seed)`` makes a typed key (a scalar of a key dtype);
``jax.random.PRNGKey(seed)`` the legacy kind, its raw data (``uint32[2]`` for the
default threefry). Both name the same random stream: :func:`as_key` turns
either into a typed key, so every entry point (``evolve``, ``run``, ``sweep``,
``evaluate_population``) gives the same results for both.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def is_typed_key(key: Any) -> bool:
    """Whether ``key`` is a new-style typed key array (``jax.random.key``)."""
    dtype = getattr(key, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def as_key(key: Any, name: str = "key") -> jax.Array:
    """One typed PRNG key from ``jax.random.key(seed)`` or a legacy ``jax.random.PRNGKey(seed)``.

    Args:
      key: a typed key of shape ``()``, or legacy key data (``uint32`` of the
        default implementation's key shape, ``(2,)`` for threefry).
      name: how the error message calls the argument.

    Raises:
      ValueError: for anything else (a batch of keys, an int seed, another dtype).
    """
    if is_typed_key(key):
        if key.shape != ():
            raise ValueError(f"{name} must be a single PRNG key, got a batch of keys of shape {key.shape}")
        return key
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is not None and jnp.dtype(dtype) == jnp.uint32 and shape is not None and len(shape) == 1:
        try:
            return jax.random.wrap_key_data(key)
        except (TypeError, ValueError):
            pass
    shown = f"{jnp.dtype(dtype).name}{list(shape)}" if dtype is not None and shape is not None else repr(key)
    raise ValueError(
        f"{name} must be a PRNG key: jax.random.key(seed), or a legacy jax.random.PRNGKey(seed) "
        f"(uint32[2]); got {shown}"
    )

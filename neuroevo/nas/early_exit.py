"""EEEA-Net's early-exit population initialisation: "EEEA-Net: An Early Exit Evolutionary Neural
Architecture Search", Termritthikun, Jamtsho, Ieamsaard, Muneesawang & Lee, Engineering
Applications of Artificial Intelligence 104, 2021 (arXiv:2108.06156).

Section 3.2 of the paper: while the initial population is drawn, a candidate whose
parameter count exceeds a threshold ``beta`` is rejected and drawn again, *before*
anything is trained, so no training is spent on architectures that are too large::

    for each of the N initial members
        repeat: draw an architecture uniformly
        until params(architecture) <= beta

Here all N members are drawn at once and the rejected ones redrawn together, on device,
in a ``lax.while_loop`` of at most ``max_tries`` rounds (a bounded loop: a rare
threshold cannot hang a compiled program). Members still over the threshold after
``max_tries`` rounds become the space's smallest architecture, which always meets it:
a threshold below the smallest architecture raises ``ValueError`` instead of looping.
:func:`early_exit` wraps a strategy so that its initial population (``queue`` of
``regularized_evolution``, ``population`` of ``nsga2``/``ga``) is drawn this way.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from neuroevo.strategy import Strategy, static_int

Array = jax.Array
POPULATION_FIELDS = ("queue", "population")


def check_threshold(space: Any, input_shape: Any, max_params: Any) -> int:
    """``max_params`` as an int that the space's smallest architecture meets; else ``ValueError``."""
    if isinstance(max_params, bool) or not isinstance(max_params, int) or max_params < 1:
        raise ValueError(f"max_params must be a positive int, got {max_params!r}")
    smallest = space.count_params(space.smallest(), input_shape)
    if smallest > max_params:
        raise ValueError(
            f"no candidate can meet max_params={max_params}: the smallest architecture of the space has "
            f"{smallest} parameters on inputs of shape {tuple(input_shape)}"
        )
    return max_params


def sample_within(
    key: Array, space: Any, n: int, input_shape: Any, max_params: int, max_tries: int = 64
) -> tuple[Array, Array]:
    """``n`` genotypes of at most ``max_params`` parameters, and the rounds of redrawing it took.

    Args:
      key: PRNG key. space: a :mod:`neuroevo.nas` space. n: how many (static).
      input_shape: one example's shape. max_params: the threshold (EEEA-Net's beta).
      max_tries: the most rounds of redrawing (static).
    """
    n = static_int("n", n, 1)
    max_tries = static_int("max_tries", max_tries, 1)
    check_threshold(space, input_shape, max_params)
    fits = lambda genotypes: jax.vmap(lambda g: space.params_of(g, input_shape))(genotypes) <= max_params
    k_first, k_loop = jax.random.split(key)
    genotypes = space.sample(k_first, n)

    def unfinished(carry):
        _, ok, rounds = carry
        return (rounds < max_tries) & ~jnp.all(ok)

    def redraw(carry):
        genotypes, ok, rounds = carry
        fresh = space.sample(jax.random.fold_in(k_loop, rounds), n)
        take = ~ok & fits(fresh)
        return jnp.where(take[:, None], fresh, genotypes), ok | take, rounds + 1

    genotypes, ok, rounds = jax.lax.while_loop(unfinished, redraw, (genotypes, fits(genotypes), jnp.int32(0)))
    smallest = jnp.asarray(space.smallest(), jnp.int32)
    return jnp.where(ok[:, None], genotypes, smallest), rounds


def early_exit(
    strategy: Strategy, space: Any, input_shape: Any, max_params: int, max_tries: int = 64
) -> Strategy:
    """``strategy`` whose initial population is drawn by :func:`sample_within` (EEEA-Net's early exit).

    The strategy must keep its initial population in its state as ``queue``
    (``regularized_evolution``) or ``population`` (``nsga2``, ``ga`` with a space),
    ``int32[N, n_genes]`` genes; the rest of the strategy is unchanged.
    """
    check_threshold(space, input_shape, max_params)
    static_int("max_tries", max_tries, 1)

    def init(key: Array, x0: Any) -> Any:
        k_inner, k_sample = jax.random.split(key)
        state = strategy.init(k_inner, x0)
        for name in POPULATION_FIELDS:
            field = getattr(state, name, None)
            if field is not None and field.ndim == 2 and field.shape[1] == space.n_genes:
                members, _ = sample_within(
                    k_sample, space, field.shape[0], input_shape, max_params, max_tries
                )
                return state._replace(**{name: members.astype(field.dtype)})
        raise ValueError(
            f"early_exit needs a strategy whose state keeps its initial population of {space.n_genes} genes "
            f"as one of {list(POPULATION_FIELDS)} (regularized_evolution, nsga2, ga with space=); "
            f"{type(state).__name__} has none"
        )

    return strategy._replace(init=init)

"""The task interface: what a population is evaluated on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class Evaluation(NamedTuple):
    """What a task returns for a batch of N solutions."""

    fitness: jax.Array  # f[N], maximised
    descriptor: jax.Array | None = None  # f[N, k] behaviour descriptors
    metrics: dict[str, jax.Array] = {}  # per-member values, f[N] each


class Task(NamedTuple):
    """``init(key) -> task_state``; ``evaluate(key, task_state, solutions) -> (Evaluation, task_state)``.

    ``solutions`` is a pytree with a leading population axis. The key is the
    generation's: every chunk of the population receives the same key, so a
    task that uses it the same way for every member (common random numbers)
    gives results that do not depend on how the population is chunked.

    A task whose ``info["members"]`` is True receives a
    :class:`~neuroevo.strategy.Members` handle instead (for every strategy) and
    evaluates through it: ``members.size`` members, ``members.apply(fn, *args)``
    runs ``fn(member_params, *args_i)`` for each; ``as_members(solutions)``
    accepts both forms, so such a task still takes decoded solutions when called
    directly. Strategies with a fast path (``eggroll``) then never materialise
    their members.

    ``init_solution(key)``, when given, returns a default starting point (e.g.
    a policy's freshly initialised parameters); ``info`` holds static metadata.
    """

    init: Callable[[jax.Array], Any]
    evaluate: Callable[[jax.Array, Any, PyTree], tuple[Evaluation, Any]]
    init_solution: Callable[[jax.Array], PyTree] | None = None
    info: dict = {}


def function(fn: Callable[[jax.Array], jax.Array], *, minimize: bool = True, name: str = "") -> Task:
    """A task from a function of one solution: fitness is ``-fn(x)`` (or ``fn(x)``).

    The raw value is reported in ``metrics['value']``.
    """

    def evaluate(key, task_state, solutions):
        del key
        value = jax.vmap(fn)(solutions)
        fitness = -value if minimize else value
        return Evaluation(fitness=fitness, metrics={"value": value}), task_state

    return Task(init=lambda key: (), evaluate=evaluate, info={"name": name or getattr(fn, "__name__", "")})


def sphere(x: PyTree) -> jax.Array:
    """sum(x**2) over every leaf."""
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(x))


def rastrigin(x: jax.Array) -> jax.Array:
    """10 d + sum(x**2 - 10 cos(2 pi x)) of a flat vector."""
    x = jnp.ravel(x)
    return 10.0 * x.shape[0] + jnp.sum(x * x - 10.0 * jnp.cos(2.0 * jnp.pi * x))

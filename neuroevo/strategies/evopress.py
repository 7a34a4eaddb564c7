"""EvoPress: "EvoPress: Towards Optimal Dynamic Model Compression via Evolutionary Search",
Sieberling, Kuznedelev, Kurtic & Alistarh, 2024 (arXiv:2410.14649).

Algorithm 1 of the paper, a (1 + lambda) evolutionary search over per-layer compression
levels under a global budget:

    parent = the initial assignment (uniform levels)
    for t = 1 .. T
        candidates = [parent] + [LevelSwitchMutation(parent) for lambda offspring]
        for each selection step j (few calibration samples first, more later)
            draw n_j fresh calibration samples
            candidates = the k_j candidates of lowest loss on them
        parent = the last survivor

A genotype is an ``int32`` vector of levels, one per layer. The level-switch mutation
raises one layer (chosen uniformly among those below their cap) by one level and lowers
another (uniformly among the others above zero) by one, so the sum of levels, the
budget, never changes: every candidate meets it exactly. Each offspring gets between 1
and ``max_switches`` switches (uniform; the paper's is 1).

``ask`` returns the parent (row 0) and its ``offspring`` mutants (``offspring + 1`` rows).
The multi-step selection is the task's (:func:`neuroevo.tasks.compression`): it scores
candidates on a few samples, the survivors on more, and gives -inf to those it drops, so
``tell`` keeps the fittest (the parent on ties). The budget is the sum of ``x0``, the
initial levels. ``best_solution`` is the current parent and ``best_fitness`` its fitness
on this generation's calibration samples (fresh every generation, so not monotone).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.shaping import sanitize
from neuroevo.strategy import Strategy, check_fitness, static_int

Array = jax.Array


class EvoPressState(NamedTuple):
    best_solution: Array  # int32[L]: the parent
    best_fitness: Array  # f32[]: the parent's fitness when it was last selected
    generation: Array


def level_switch(key: Array, levels: Array, max_levels: Array) -> Array:
    """One layer up a level and another down one (uniformly among those that can); unchanged if
    no pair can."""
    n = levels.shape[0]
    u = jax.random.uniform(key, (2, n))
    up_ok = levels < max_levels
    up = jnp.argmax(jnp.where(up_ok, u[0], -1.0))
    down_ok = (levels > 0) & (jnp.arange(n) != up)
    down = jnp.argmax(jnp.where(down_ok, u[1], -1.0))
    valid = jnp.any(up_ok) & jnp.any(down_ok)
    return jnp.where(valid, levels.at[up].add(1).at[down].add(-1), levels)


def evopress(offspring: int = 16, max_levels: Any = None, max_switches: int = 1) -> Strategy:
    """Build EvoPress.

    Args:
      offspring: lambda, mutants of the parent per generation (static); ``ask`` returns
        ``offspring + 1`` members, the parent first.
      max_levels: per-layer caps (static ints, as many as layers); default: the budget
        (any layer may take all of it).
      max_switches: at most this many level switches per offspring (static).
    """
    static_int("offspring", offspring, 1)
    static_int("max_switches", max_switches, 1)
    caps = None if max_levels is None else np.asarray(max_levels, np.int64)
    if caps is not None and (caps.ndim != 1 or caps.min() < 0):
        raise ValueError(f"max_levels must be a vector of non-negative ints, got {max_levels!r}")

    def limits(parent: Array) -> Array:
        if caps is None:
            return jnp.full(parent.shape, jnp.sum(parent), parent.dtype)
        return jnp.asarray(caps, parent.dtype)

    def init(key: Array, x0: Any) -> EvoPressState:
        del key
        levels = jnp.asarray(x0)
        if levels.ndim != 1 or not (
            jnp.issubdtype(levels.dtype, jnp.integer) or isinstance(x0, jax.core.Tracer) or _whole(x0)
        ):
            raise ValueError(f"x0 must be a vector of integer levels (one per layer), got {x0!r}")
        if caps is not None and levels.shape != caps.shape:
            raise ValueError(f"x0 has {levels.shape[0]} layers but max_levels has {caps.shape[0]}")
        if not isinstance(x0, jax.core.Tracer):
            values = np.asarray(x0)
            top = np.full(values.shape, values.sum()) if caps is None else caps
            bad = np.flatnonzero((values < 0) | (values > top))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"x0[{i}] = {values[i]} is outside layer {i}'s levels 0..{top[i]}")
        return EvoPressState(
            best_solution=levels.astype(jnp.int32),
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=jnp.zeros((), jnp.int32),
        )

    def ask(key: Array, state: EvoPressState) -> tuple[Array, EvoPressState]:
        parent = state.best_solution
        cap = limits(parent)

        def mutant(k):
            k_count, k_switch = jax.random.split(k)
            switches = jax.random.randint(k_count, (), 1, max_switches + 1)

            def body(i, levels):
                switched = level_switch(jax.random.fold_in(k_switch, i), levels, cap)
                return jnp.where(i < switches, switched, levels)

            return jax.lax.fori_loop(0, max_switches, body, parent)

        children = jax.vmap(mutant)(jax.random.split(key, offspring))
        return jnp.concatenate([parent[None], children]), state

    def tell(key, state: EvoPressState, genotypes, fitness, descriptors=None) -> EvoPressState:
        del key, descriptors
        fitness = sanitize(check_fitness(fitness, offspring + 1)).astype(jnp.float32)
        winner = jnp.argmax(fitness)  # ties: the first, the parent
        found = jnp.isfinite(fitness[winner])
        return EvoPressState(
            best_solution=jnp.where(found, genotypes[winner].astype(jnp.int32), state.best_solution),
            best_fitness=jnp.where(found, fitness[winner], state.best_fitness),
            generation=state.generation + 1,
        )

    def decode(state: EvoPressState, genotype: Array) -> Array:
        del state
        return genotype

    return Strategy(init, ask, tell, decode)


def _whole(x: Any) -> bool:
    values = np.asarray(x)
    return np.issubdtype(values.dtype, np.floating) and bool(np.all(values == np.round(values)))


evopress.EvoPressState = EvoPressState

"""The one interface every optimiser implements, and the state every strategy keeps.

A :class:`Strategy` is a NamedTuple of four pure functions, in the manner of
``optax.GradientTransformation``::

    init:   (key, x0) -> state
    ask:    (key, state) -> (genotypes, state)
    tell:   (key, state, genotypes, fitness, descriptors=None) -> state
    decode: (state, genotype) -> solution        # one member, a pytree like x0

- ``x0`` is any pytree of floating-point arrays (a flax params dict, a flat vector).
- **Fitness is maximised**, one value per member: shape ``(popsize,)``. NaN and
  -inf mean "worst" and never make a state NaN. A fitness of another shape
  raises ``ValueError`` naming both shapes, at trace time (:func:`check_fitness`).
- ``genotypes`` carries a leading population axis. It may be the dense
  population (CMA-ES) or something compact from which a member is regenerated
  (a seed and a sign: :mod:`neuroevo.perturbation`). :func:`population`
  materialises members with ``vmap(decode)``.
- **Multi-objective** strategies (``nsga2``, ``nsga3``) take fitness of shape
  ``(popsize, n_objectives)``: every objective is maximised, and NaN (and -inf)
  is worst in that objective. ``n_objectives`` is static (a factory argument);
  another shape raises ``ValueError`` naming both shapes (:func:`check_fitness`
  with ``n_objectives``). A member's scalar summary is its *worst* objective
  (:func:`scalar_fitness`, the maximin value; scale objectives comparably), and
  ``best_fitness``/``best_solution`` are the best summary seen so far and its
  member (with one objective, the single-objective meaning). The result of such
  a run is its current non-dominated set: the state keeps the parent
  population with its ``fitness`` (``(popsize, n_objectives)``) and ``rank``
  (0 = non-dominated), and ``metrics`` reports ``front_size`` and, given a
  reference point, ``hypervolume`` (``ne.strategies.pareto_front`` gathers them).
- ``descriptors`` (``(popsize, k)``) are behaviour descriptors; strategies that
  do not use them ignore them (novelty search needs them).
- Numeric hyperparameters may be traced values (a sweep builds the strategy
  inside ``vmap``); shapes (population size, capacities) are static Python ints
  (:func:`static_int`).

**Optional capabilities** are trailing fields of :class:`Strategy`, None by
default; whoever runs a strategy uses one when it is there and the four
functions otherwise. A wrapper that replaces ``ask`` or ``tell`` must wrap or
drop them too (``strategy._replace(tell=..., live=None, members=None)``).

- ``live`` (:class:`Live`): only the first ``live.count(state)`` members of the
  static population are live (IPOP CMA-ES: a capacity of ``popsize *
  2**max_restarts`` of which the current run uses ``popsize``); the others are
  placeholders whose fitness ``tell`` ignores (give them -inf), so an evaluator
  may skip them. ``live.chunk(state)`` is a static chunk length (a Python int);
  ``live.ask(key, state, chunks, normals)`` samples only the first ``chunks``
  chunks (an unbatched bound, e.g. the maximum over a vmapped batch of states,
  so that its loop is not batched) and, given ``normals`` (``(capacity, dim)``
  standard normals, rows beyond the live ones ignored), takes its samples from
  them instead of from ``key``; ``live.tell(key, state, genotypes, fitness,
  chunks)`` reads those chunks only. With ``chunks`` and ``normals`` None they
  are ``ask`` and ``tell``. :func:`neuroevo.bench.bbob_campaign` uses it.

- ``members`` (``(state, genotypes) -> Members``): a handle on the population that
  evaluates it without materialising every member (:class:`Members`). Without
  it, :func:`members` decodes them (``vmap(decode)``). :func:`population_apply`
  is the one-call form: ``fn(member_params, *args_i)`` for every member. EGGROLL
  (``neuroevo.strategies.eggroll``) runs a flax model once on the shared mean
  and adds each member's low-rank term.

The state (:class:`StrategyState`) is any pytree (a NamedTuple) with at least
``best_solution`` (a pytree like ``x0``), ``best_fitness`` (a float32 scalar,
-inf before the first ``tell``) and ``generation`` (an int32 scalar counting
``tell`` calls). Distribution-based strategies also keep ``mean`` (a pytree like
``x0``: the policy a run hands over). A state may hold ``metrics``, a dict of
scalars the run loop logs every generation (the GA's diversity, novelty
search's archive size). The engine and the application rely on these fields
and on nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from neuroevo.shaping import sanitize

PyTree = Any
Array = jax.Array


class InitFn(Protocol):
    def __call__(self, key: Array, x0: PyTree) -> Any: ...


class AskFn(Protocol):
    def __call__(self, key: Array, state: Any) -> tuple[Any, Any]: ...


class TellFn(Protocol):
    def __call__(
        self, key: Array, state: Any, genotypes: Any, fitness: Array, descriptors: Array | None = None
    ) -> Any: ...


class DecodeFn(Protocol):
    def __call__(self, state: Any, genotype: Any) -> PyTree: ...


class LiveAskFn(Protocol):
    def __call__(
        self, key: Array, state: Any, chunks: Array | None, normals: Array | None
    ) -> tuple[Any, Any]: ...


class LiveTellFn(Protocol):
    def __call__(
        self, key: Array, state: Any, genotypes: Any, fitness: Array, chunks: Array | None
    ) -> Any: ...


class Live(NamedTuple):
    """Optional capability: a population of which only the first ``count(state)`` members are
    live, sampled and read chunk by chunk (see the module docstring)."""

    count: Callable[[Any], Array]  # state -> int32 scalar: the live members
    chunk: Callable[[Any], int]  # state -> the static chunk length
    ask: LiveAskFn
    tell: LiveTellFn


class MembersFn(Protocol):
    def __call__(self, state: Any, genotypes: Any) -> Members: ...


class Strategy(NamedTuple):
    """A gradient-free optimiser as four pure functions (see the module docstring).

    ``config`` (optional, default None) describes how the strategy was built:
    ``{"name": ..., "hyperparameters": {...}}`` with every hyperparameter resolved
    (defaults included). ``ne.strategies.make`` records it; checkpoints store it
    to refuse resuming with other settings. A strategy built otherwise has none.
    ``live`` (optional) is the live-population capability (:class:`Live`).
    """

    init: InitFn
    ask: AskFn
    tell: TellFn
    decode: DecodeFn
    config: Mapping[str, Any] | None = None
    live: Live | None = None
    members: MembersFn | None = None


@runtime_checkable
class StrategyState(Protocol):
    """The fields every strategy state has (see the module docstring)."""

    best_solution: PyTree
    best_fitness: Array
    generation: Array


def population(strategy: Strategy, state: Any, genotypes: Any) -> PyTree:
    """Materialise every member of ``genotypes``: ``vmap(decode)`` over the leading axis."""
    return jax.vmap(strategy.decode, in_axes=(None, 0))(state, genotypes)


class Members:
    """A population to evaluate: ``apply(fn, *args)`` runs ``fn(member_params, *args_i)`` per member.

    ``args`` carry a leading population axis (``args_i`` is member ``i``'s slice);
    the result does too. ``size`` is the (static) population size. Subclasses are
    pytrees, so a handle can be built once and closed over by a rollout loop.
    :class:`DenseMembers` holds the decoded members; a strategy's ``members``
    field may return a handle that never materialises them.
    """

    @property
    def size(self) -> int:
        raise NotImplementedError

    def apply(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError


@jax.tree_util.register_pytree_node_class
class DenseMembers(Members):
    """Decoded members (a pytree with a leading population axis): ``apply`` is ``vmap(fn)``."""

    def __init__(self, solutions: PyTree):
        self.solutions = solutions

    @property
    def size(self) -> int:
        return population_size(self.solutions)

    def apply(self, fn: Callable[..., Any], *args: Any) -> Any:
        return jax.vmap(fn)(self.solutions, *args)

    def tree_flatten(self):
        return (self.solutions,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


def as_members(solutions: Members | PyTree) -> Members:
    """``solutions`` as a :class:`Members` handle (decoded pytrees become :class:`DenseMembers`)."""
    return solutions if isinstance(solutions, Members) else DenseMembers(solutions)


def members(strategy: Strategy, state: Any, genotypes: Any) -> Members:
    """A handle on the population ``genotypes``: the strategy's fast path, else the decoded members."""
    if strategy.members is not None:
        return strategy.members(state, genotypes)
    return DenseMembers(population(strategy, state, genotypes))


def population_apply(strategy: Strategy, state: Any, genotypes: Any, fn: Callable[..., Any], *args: Any):
    """``fn(member_params, *args_i)`` for every member, stacked along a leading population axis.

    ``args`` carry the population axis. For most strategies this is ``vmap`` over
    ``decode`` then ``fn``; a strategy with a ``members`` field (``eggroll``)
    evaluates the population without materialising its members (see its docs for
    what is intercepted).
    """
    if strategy.members is None:
        return jax.vmap(lambda g, *a: fn(strategy.decode(state, g), *a))(genotypes, *args)
    return strategy.members(state, genotypes).apply(fn, *args)


def population_size(genotypes: Any) -> int:
    """The (static) length of the leading population axis of ``genotypes``."""
    leaves = jax.tree_util.tree_leaves(genotypes)
    if not leaves:
        raise ValueError("genotypes is an empty pytree: it has no population axis")
    return int(leaves[0].shape[0])


# --------------------------------------------------------------------------- #
# Checks: raised at trace time, naming what is wrong.
# --------------------------------------------------------------------------- #


def static_int(name: str, value: Any, low: int, high: int | None = None, high_name: str = "") -> int:
    """``value`` as a static Python int in ``[low, high]``; else ``ValueError`` naming ``name``.

    Shapes (population sizes, capacities, counts) must be static: a traced value
    or a float is refused. ``high_name`` describes the upper bound in the message
    (e.g. ``"popsize=64"``).
    """
    if isinstance(value, jax.core.Tracer) or isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a Python int (a static shape), got {value!r}")
    if high is None and value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    if high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high_name or high}], got {value}")
    return value


def check_fitness(
    fitness: Array, popsize: int, name: str = "fitness", n_objectives: int | None = None
) -> Array:
    """Return ``fitness`` as an array, or raise ``ValueError`` if its shape is not ``(popsize,)``,
    or ``(popsize, n_objectives)`` for a multi-objective strategy."""
    fitness = jnp.asarray(fitness)
    if n_objectives is not None:
        if fitness.shape != (popsize, n_objectives):
            raise ValueError(
                f"{name} has shape {fitness.shape}, but the population with its objectives has shape "
                f"({popsize}, {n_objectives}): pass one row of {n_objectives} objective values per member"
            )
        return fitness
    if fitness.shape != (popsize,):
        raise ValueError(
            f"{name} has shape {fitness.shape}, but the population has shape ({popsize},): "
            f"pass one value per member"
        )
    return fitness


def scalar_fitness(fitness: Array) -> Array:
    """One value per member: the fitness itself (``(popsize,)``), or for multi-objective fitness
    (``(popsize, n_objectives)``) the worst objective. NaN becomes -inf (worst)."""
    fitness = sanitize(jnp.asarray(fitness))
    return jnp.min(fitness, axis=-1) if fitness.ndim == 2 else fitness


def check_descriptors(descriptors: Any, popsize: int, dim: int, who: str = "novelty search") -> Array:
    """Descriptors as f32[popsize, dim], or ``ValueError`` naming the expected shape.

    ``who`` names the strategy family in the message when they are missing.
    """
    expected = (popsize, dim)
    if descriptors is None:
        raise ValueError(
            f"{who} needs behaviour descriptors of shape {expected} (popsize, descriptor_dim) "
            "in tell(..., descriptors): use a task that returns them (ne.tasks.maze(), "
            "ne.tasks.gymnax(..., descriptor='final_obs')) or set descriptor_dim"
        )
    descriptors = jnp.asarray(descriptors, jnp.float32)
    if descriptors.shape != expected:
        raise ValueError(
            f"descriptors have shape {descriptors.shape}, but expected shape {expected} "
            "(popsize, descriptor_dim)"
        )
    return descriptors


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
    static_int("popsize", popsize, minimum)
    if even and popsize % 2:
        raise ValueError(f"popsize must be even for mirrored sampling, got {popsize}")
    return popsize


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


def unravel_like(tree: PyTree) -> Callable[[Array], PyTree]:
    """The unravel function of ``tree``'s structure (its ravel is dead code under jit)."""
    return ravel_pytree(tree)[1]


def ravel(tree: PyTree) -> Array:
    return ravel_pytree(tree)[0]


# --------------------------------------------------------------------------- #
# The state fields every strategy keeps.
# --------------------------------------------------------------------------- #


def update_best(
    best_solution: PyTree, best_fitness: Array, candidate: PyTree, candidate_fitness: Array
) -> tuple[PyTree, Array]:
    """Keep the better of (best, candidate); -inf/NaN candidates never win."""
    candidate_fitness = sanitize(jnp.asarray(candidate_fitness)).astype(best_fitness.dtype)
    better = candidate_fitness > best_fitness
    best_solution = jax.tree_util.tree_map(lambda b, c: jnp.where(better, c, b), best_solution, candidate)
    return best_solution, jnp.where(better, candidate_fitness, best_fitness)


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

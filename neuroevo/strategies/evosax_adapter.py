"""Every evosax 0.3 algorithm behind neuroevo's :class:`~neuroevo.strategy.Strategy` contract.

``ne.strategies.make("evosax:CMA_ES", popsize=16, sigma=0.5)`` builds evosax's
CMA-ES as a neuroevo strategy; ``ne.strategies.names()`` lists one
``"evosax:<Name>"`` entry per algorithm of ``evosax.algorithms.algorithms``.

How the two conventions meet:

- **Sign.** evosax minimises, neuroevo maximises: ``tell`` hands evosax ``-fitness``.
- **Worst values.** NaN and -inf fitness become +inf for evosax (NaN means worst),
  except for the algorithms in :data:`FINITE_WORST`, whose updates do arithmetic
  on raw fitness (``inf - inf`` would poison the state): there a failed member
  gets ``max(finite) + 1`` (0 when every member failed), a value just worse than
  the worst real one of its generation; this also holds whenever ``options`` sets a
  ``fitness_shaping_fn``. evosax's own best-so-far archive never admits a failed member.
- **Genotypes** are the dense population, ``(popsize, dim)`` floats; ``decode`` unravels
  one row into the structure of ``x0``.
- **Population-based algorithms** (GAs, DE, PSO, Diffusion Evolution) need an evaluated
  population to start. ``init(key, x0)`` samples ``x0 + sigma * N(0, I)`` (member 0 is
  ``x0`` itself) and generation 0 evaluates exactly that population: its ``ask``
  returns it and its ``tell`` calls evosax's ``init`` with the fitness. From then on
  ``ask``/``tell`` are evosax's.
- **sigma** (the initial step size; None keeps evosax's default) goes to
  ``std_schedule`` where the algorithm has one (the step size is
  ``sigma * std_schedule(generation)``: a constant ``sigma`` by default, a schedule
  passed in ``options`` scaled by it), else to the ``std_init`` parameter,
  else to ``radius_max`` (Gradientless Descent). Population-based algorithms also
  draw their initial population with it, and for PSO, DE and Diffusion Evolution,
  which have no step size, that spread is all it does. Random Search samples
  ``N(x0, sigma^2 I)`` unless ``options`` gives a ``sampling_fn``.
- **Stein variational** algorithms (``SV_CMA_ES``, ``SV_Open_ES``) run
  ``options["num_populations"]`` (default 2) particles of ``popsize // num_populations``
  members each; particle 0 starts at ``x0``, the others at ``x0 + sigma * N(0, I)``.
  Their ``mean`` has a leading particle axis.
- **Guided ES** uses a surrogate gradient when one is put in ``state.inner.grad``
  before ``ask`` (in evosax's minimisation convention); without one it samples as
  evosax does with no gradient (zero), and the "no gradient" NaN marker is stored as 0.

The state exposes ``best_solution``, ``best_fitness`` (maximised, -inf at first),
``generation`` and, for distribution-based algorithms, ``mean`` (like ``x0``); evosax's
own state is ``inner``. evosax is imported on the first build, not when neuroevo is.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    ravel,
    unravel_like,
    update_best,
)

PyTree = Any

#: ``evosax.algorithms.algorithms`` of evosax 0.3.2, in its order (a test checks this
#: list against the installed evosax). Listed here so importing neuroevo does not
#: import evosax.
ALGORITHMS = (
    "ARS", "ASEBO", "CMAAnchoredLES", "CMA_ES", "CR_FM_NES", "DES", "ESMC", "EvoTF_ES",
    "GradientlessDescent", "GuidedES", "HillClimbing", "iAMaLGaM_Full", "iAMaLGaM_Univariate",
    "LES", "LM_MA_ES", "MA_ES", "NoiseReuseES", "Open_ES", "PersistentES", "PGPE",
    "RandomSearch", "Rm_ES", "Sep_CMA_ES", "SimulatedAnnealing", "SimpleES", "SNES",
    "SV_CMA_ES", "SV_Open_ES", "xNES", "DifferentialEvolution", "DiffusionEvolution",
    "GESMR_GA", "LGA", "MR15_GA", "PSO", "SAMR_GA", "SimpleGA",
)  # fmt: skip

#: Algorithms whose update does arithmetic on raw (unranked) fitness, where +inf would make the
#: state NaN: failed members get a finite worst value (as with any ``fitness_shaping_fn`` option).
FINITE_WORST = frozenset(
    {
        "ARS",
        "ASEBO",
        "DiffusionEvolution",
        "ESMC",
        "EvoTF_ES",
        "GuidedES",
        "LES",
        "LGA",
        "NoiseReuseES",
        "PersistentES",
    }
)

PREFIX = "evosax:"
_GIVEN = ("population_size", "solution")  # constructor arguments the adapter supplies


class EvosaxState(NamedTuple):
    """A distribution-based evosax algorithm's state, wrapped."""

    inner: Any  # evosax's own state (flax struct dataclass)
    mean: PyTree
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


class EvosaxPopulationState(NamedTuple):
    """A population-based evosax algorithm's state, wrapped (no search distribution, no ``mean``)."""

    inner: Any
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


class EvosaxSearchState(NamedTuple):
    """Random Search's state: ``origin`` (flat ``x0``) centres the default sampling distribution."""

    inner: Any
    mean: PyTree
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array
    origin: jax.Array


def register_all(register: Callable[[str, Callable[..., Strategy]], None]) -> None:
    """Register ``"evosax:<Name>"`` for every evosax algorithm (lazily: evosax is not imported)."""
    for name in ALGORITHMS:
        register(PREFIX + name, functools.partial(evosax_strategy, name))


def algorithm_class(name: str) -> type:
    """The evosax class called ``name``; unknown names raise ``ValueError`` listing the valid ones."""
    # evosax builds arrays at import time: under a trace they must still be concrete.
    with jax.ensure_compile_time_eval():
        from evosax.algorithms import algorithms

    try:
        return algorithms[name]
    except KeyError:
        raise ValueError(f"unknown evosax algorithm {name!r}; valid names: {sorted(algorithms)}") from None


def params_fields(cls: type) -> list[str]:
    """The field names of ``cls``'s params dataclass (what ``params=`` may override)."""
    return [f.name for f in dataclasses.fields(inspect.getmodule(cls).Params)]


def sigma_target(cls: type) -> str:
    """Where ``sigma`` goes for ``cls``: ``std_schedule``, a params field, or ``population``."""
    if "std_schedule" in inspect.signature(cls.__init__).parameters:
        return "std_schedule"
    fields = params_fields(cls)
    for field in ("std_init", "radius_max"):
        if field in fields:
            return field
    return "population"


def evosax_strategy(
    name: str,
    popsize: int = 64,
    sigma: float | None = None,
    params: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> Strategy:
    """Build evosax's algorithm ``name`` as a neuroevo strategy.

    Args:
      name: an evosax algorithm, e.g. ``"CMA_ES"`` (see :data:`ALGORITHMS`).
      popsize: population size (static); for SV algorithms the total over all particles.
      sigma: initial step size (may be traced); None keeps evosax's default. See the
        module docstring for where it goes per algorithm.
      params: overrides of evosax's ``default_params`` fields by name (values may be traced).
      options: extra keyword arguments of the evosax constructor (``optimizer``,
        ``fitness_shaping_fn``, ``std_schedule``, ``num_populations``, ...).
    """
    cls = algorithm_class(name)  # imports evosax first
    from evosax.algorithms.distribution_based.sv.base import SV_ES
    from evosax.algorithms.population_based.base import PopulationBasedAlgorithm

    check_popsize(popsize)
    params = dict(params or {})
    options = dict(options or {})
    fields = params_fields(cls)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(f"unknown params field(s) {unknown} for evosax:{name}; valid: {fields}")
    ctor = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", *_GIVEN)]
    unknown = sorted(set(options) - set(ctor))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for evosax:{name}; valid: {ctor}")
    target = sigma_target(cls)
    if sigma is not None and target in params:
        raise ValueError(f"evosax:{name} takes its step size from sigma or params[{target!r}], not both")

    stein = issubclass(cls, SV_ES)
    population_based = issubclass(cls, PopulationBasedAlgorithm)
    search = name == "RandomSearch"
    finite_worst = name in FINITE_WORST or "fitness_shaping_fn" in options
    particles = options.pop("num_populations", 2) if stein else 1
    if popsize % particles:
        raise ValueError(f"popsize {popsize} is not a multiple of num_populations {particles}")
    if stein:
        options["num_populations"] = particles
    if search:
        options.setdefault("sampling_fn", None)  # replaced per call, see instance()
    user_sampling = search and options["sampling_fn"] is not None
    spread = 1.0 if sigma is None else sigma

    def build(dim: int, dtype: Any):
        args = (name, popsize // particles, dim, jnp.dtype(dtype), tuple(sorted(options.items())))
        try:
            return _build_cached(*args)
        except TypeError:  # unhashable options (dicts): build afresh
            return _build(*args)

    def instance(dim: int, dtype: Any, origin: jax.Array | None = None):
        """evosax's object and params for this problem, with ``sigma`` (maybe traced) wired in."""
        algo, defaults = build(dim, dtype)
        algo = copy.copy(algo)  # closures over traced values must not outlive this call
        if target == "std_schedule" and sigma is not None:
            base = algo.std_schedule
            algo.std_schedule = lambda generation: sigma * base(generation)
        if search and not user_sampling:
            algo.sampling_fn = lambda key: origin + spread * jax.random.normal(key, origin.shape)
        p = (algo.default_params if defaults is None else defaults).replace(**params)
        if sigma is not None and target not in ("std_schedule", "population"):
            p = p.replace(**{target: jnp.asarray(sigma, jnp.result_type(float))})
        return algo, p

    def call(algo, method: str, *args):
        """evosax's public method without its own ``jit`` (``self`` is a per-call copy)."""
        return getattr(type(algo), method).__wrapped__(algo, *args)

    def around(key: jax.Array, flat: jax.Array, n: int) -> jax.Array:
        """``n`` points ``flat + spread * N(0, I)``, the first one ``flat`` itself."""
        z = jax.random.normal(key, (n, flat.shape[0]), flat.dtype).at[0].set(0.0)
        return flat + jnp.asarray(spread, flat.dtype) * z

    def init(key: jax.Array, x0: PyTree):
        flat, unravel = check_x0(x0)
        k_pop, k_init = jax.random.split(key)
        algo, p = instance(flat.shape[0], flat.dtype, flat)
        if population_based:
            pop = around(k_pop, flat, popsize)
            inner = fill_markers(
                call(algo, "init", k_init, pop, jnp.full((popsize,), jnp.inf, flat.dtype), p), flat
            )
        else:
            start = around(k_pop, flat, particles) if stein else flat
            inner = fill_markers(call(algo, "init", k_init, start, p), flat)
        best = (jax.tree_util.tree_map(jnp.asarray, x0), jnp.array(-jnp.inf, jnp.float32))
        return wrap(inner, best, jnp.zeros((), jnp.int32), unravel, flat)

    def wrap(inner, best, generation, unravel, flat):
        inner = strong(inner)
        if population_based:
            return EvosaxPopulationState(inner, *best, generation)
        mean = jax.vmap(unravel)(inner.mean) if stein else unravel(inner.mean)
        if search:
            return EvosaxSearchState(inner, mean, *best, generation, flat)
        return EvosaxState(inner, mean, *best, generation)

    def flat_of(state) -> jax.Array:
        return ravel(state.best_solution)

    def ask(key: jax.Array, state):
        flat = flat_of(state)
        algo, p = instance(flat.shape[0], flat.dtype, getattr(state, "origin", None))

        def evosax_ask(inner):
            pop, inner = call(algo, "ask", key, inner, p)
            return pop, strong(fill_markers(inner, None))

        if population_based:  # generation 0 evaluates the population sampled in init
            pop, inner = jax.lax.cond(
                state.generation == 0, lambda inner: (inner.population, inner), evosax_ask, state.inner
            )
        else:
            pop, inner = evosax_ask(state.inner)
        return pop, state._replace(inner=inner)

    def decode(state, genotype: jax.Array) -> PyTree:
        return unravel_like(state.best_solution)(genotype)

    def tell(key, state, genotypes: jax.Array, fitness, descriptors=None):
        del descriptors
        fitness = check_fitness(fitness, genotypes.shape[0])
        flat = flat_of(state)
        algo, p = instance(flat.shape[0], flat.dtype, getattr(state, "origin", None))
        ours = sanitize(fitness)
        theirs = -ours.astype(flat.dtype)  # +inf for NaN and -inf
        if finite_worst:
            finite = jnp.isfinite(theirs)
            worst = jnp.where(jnp.any(finite), jnp.max(jnp.where(finite, theirs, -jnp.inf)) + 1.0, 0.0)
            theirs = jnp.where(finite, theirs, worst)
        pop = genotypes.reshape(particles, -1, genotypes.shape[-1]) if stein else genotypes

        def evosax_tell(inner):
            new, _ = call(algo, "tell", key, pop, theirs, inner, p)
            return strong(keep_archive(new, inner, pop, ours))

        def evosax_first_tell(inner):
            new = fill_markers(call(algo, "init", key, pop, theirs, p), flat)
            return strong(keep_archive(new, inner, pop, ours))

        if population_based:  # generation 0: evosax's init with the evaluated initial population
            inner = jax.lax.cond(state.generation == 0, evosax_first_tell, evosax_tell, state.inner)
        else:
            inner = evosax_tell(state.inner)
        i = jnp.argmax(ours)
        best = update_best(state.best_solution, state.best_fitness, decode(state, genotypes[i]), ours[i])
        return wrap(inner, best, state.generation + 1, unravel_like(state.best_solution), flat)

    def keep_archive(new, old, pop, ours):
        """evosax's best-so-far, with failed members (our -inf/NaN) never admitted."""
        if not finite_worst:
            return new
        from evosax.algorithms.base import update_best_solution_and_fitness

        theirs = jnp.where(jnp.isfinite(ours), -ours, jnp.inf).reshape(pop.shape[:-1])
        update = jax.vmap(update_best_solution_and_fitness) if stein else update_best_solution_and_fitness
        solution, value = update(pop, theirs, old.best_solution, old.best_fitness)
        return new.replace(best_solution=solution, best_fitness=value)

    def fill_markers(inner, flat):
        """Replace evosax's NaN "not set yet" markers: unset best solutions by ``flat`` (they
        come with a +inf best fitness, so any value will do), a missing Guided-ES gradient by
        zero (what evosax samples with when it is missing)."""
        fills = {"grad": 0.0}
        if flat is not None:
            fills.update(best_solution=flat, best_solution_shaped=flat)
        return inner.replace(
            **{
                field: jnp.where(jnp.isnan(getattr(inner, field)), value, getattr(inner, field))
                for field, value in fills.items()
                if hasattr(inner, field)
            }
        )

    # jit: one compile per strategy for eager callers (op-by-op dispatch of evosax's updates
    # costs seconds); under an outer jit these are inlined.
    return Strategy(jax.jit(init), jax.jit(ask), jax.jit(tell), decode)


def _build(name: str, popsize: int, dim: int, dtype: Any, options: tuple) -> tuple[Any, Any]:
    """evosax's object for a ``dim``-dimensional problem, and its default params when they must
    be computed eagerly (None: computed in each trace, as evaluating them op by op compiles
    dozens of small kernels)."""
    with jax.ensure_compile_time_eval():  # no tracers may be stored in a cached object
        algo = algorithm_class(name)(population_size=popsize, solution=jnp.zeros(dim, dtype), **dict(options))
    try:
        jax.make_jaxpr(lambda: algo.default_params)()
        return algo, None
    except jax.errors.ConcretizationTypeError:  # LM_MA_ES: int() of a computed value
        with jax.ensure_compile_time_eval():
            return algo, algo.default_params


_build_cached = functools.lru_cache(maxsize=128)(_build)


def strong(tree: PyTree) -> PyTree:
    """Every leaf an array of a fixed (non-weak) type, so that scan and cond carries line up."""

    def leaf(x):
        x = jnp.asarray(x)
        return jax.lax.convert_element_type(x, x.dtype)

    return jax.tree_util.tree_map(leaf, tree)

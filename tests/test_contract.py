"""The contract every registered strategy honours (docs/concepts/contract.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import neuroevo as ne

POPSIZE = 16
# Adapters of external libraries (evosax: ~37 algorithms) run the same checks fused into one
# compiled program each (test_fused_contract); every other strategy gets one test per check.
# NEAT (which evolves graphs, scored on XOR) and the quality-diversity strategies (whose archives
# make each compilation long) run the fused checks too.
QD = ["map_elites", "cvt_map_elites", "cma_me", "me_es"]
FUSED = [n for n in ne.strategies.names() if n.startswith("evosax:") or n == "neat" or n in QD]
# Multi-objective strategies (fitness (popsize, n_objectives)) have their own checks below.
MULTI = [n for n in ne.strategies.names() if ne.strategies.multi_objective(n)]
NAMES = [n for n in ne.strategies.names() if n not in FUSED and n not in MULTI]
# The step size a sweep varies: "sigma" unless a strategy names it otherwise (MAP-Elites' Iso+LineDD).
SWEPT = {"map_elites": "iso_sigma", "cvt_map_elites": "iso_sigma"}


def make(name, **hp):
    strategy = ne.strategies.make(name, popsize=POPSIZE, **hp)
    return with_descriptors(strategy) if ne.strategies.needs_descriptors(name) else strategy


def with_descriptors(strategy):
    """Novelty search needs behaviour descriptors: the contract's tell passes each member's
    first two coordinates (the strategies' default descriptor_dim) when none are given."""

    def tell(key, state, genotypes, fitness, descriptors=None):
        if descriptors is None:
            members = ne.population(strategy, state, genotypes)
            descriptors = jax.vmap(lambda m: ravel_pytree(m)[0][:2])(members)
        return strategy.tell(key, state, genotypes, fitness, descriptors)

    return strategy._replace(tell=tell)


def sphere_fitness(solutions):
    return -jax.vmap(ne.tasks.sphere)(solutions)


def run(strategy, key, x0, generations=5):
    """A few generations, fully traced (jit/vmap-able)."""
    k_init, k_loop = jax.random.split(key)
    state = strategy.init(k_init, x0)

    def step(state, key):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        fitness = sphere_fitness(ne.population(strategy, state, genotypes))
        return strategy.tell(k_tell, state, genotypes, fitness), fitness

    return jax.lax.scan(step, state, jax.random.split(k_loop, generations))


def no_nan(tree):
    return all(
        not bool(jnp.any(jnp.isnan(x)))
        for x in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(x.dtype, jnp.floating)
    )


@pytest.mark.parametrize("name", NAMES)
def test_jit_and_required_fields(name):
    x0 = jnp.ones(5)
    state, fitness = jax.jit(lambda k: run(make(name), k, x0))(jax.random.key(0))
    assert fitness.shape == (5, POPSIZE)
    assert state.best_solution.shape == x0.shape
    assert state.best_fitness.shape == ()
    assert int(state.generation) == 5
    assert float(state.best_fitness) == pytest.approx(float(fitness.max()), rel=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_seeds(name):
    x0 = jnp.ones(5)
    keys = jax.random.split(jax.random.key(1), 4)
    states, fitness = jax.jit(jax.vmap(lambda k: run(make(name), k, x0)))(keys)
    assert fitness.shape == (4, 5, POPSIZE)
    assert states.best_fitness.shape == (4,)
    # Each vmapped lane equals the unbatched run with that key.
    single, _ = jax.jit(lambda k: run(make(name), k, x0))(keys[2])
    np.testing.assert_allclose(states.best_fitness[2], single.best_fitness, rtol=1e-5)
    assert len(set(np.asarray(states.best_fitness).tolist())) > 1  # seeds differ


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_hyperparameter_compiles_once(name):
    x0 = jnp.ones(5)
    traces = []

    @jax.jit
    def sweep(sigmas):
        traces.append(1)  # once per trace, i.e. per compilation
        swept = SWEPT.get(name, "sigma")
        return jax.vmap(lambda s: run(make(name, **{swept: s}), jax.random.key(2), x0)[0].best_fitness)(
            sigmas
        )

    a = sweep(jnp.array([0.01, 0.1, 0.5]))
    b = sweep(jnp.array([0.02, 0.2, 1.0]))
    assert len(traces) == 1
    assert a.shape == b.shape == (3,)
    assert len(set(np.asarray(a).tolist())) == 3  # sigma changes the run


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_fixed_key(name):
    """Two separately built strategies, each compiled in its own program, agree bit for bit."""
    x0 = jnp.ones(5)
    first = jax.jit(lambda k: run(make(name), k, x0))
    second = jax.jit(lambda k: run(make(name), k, x0))
    s1, f1 = first(jax.random.key(3))
    s2, f2 = second(jax.random.key(3))
    for a, b in zip(jax.tree_util.tree_leaves((s1, f1)), jax.tree_util.tree_leaves((s2, f2)), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_minus_inf_fitness_are_worst(name):
    strategy = make(name)
    x0 = jnp.ones(5)
    state = strategy.init(jax.random.key(0), x0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    fitness = sphere_fitness(ne.population(strategy, state, genotypes))
    bad = fitness.at[::2].set(jnp.nan).at[1].set(-jnp.inf)
    new = strategy.tell(jax.random.key(2), state, genotypes, bad)
    assert no_nan(new)
    assert float(new.best_fitness) == pytest.approx(float(jnp.nanmax(bad[2:])))
    all_nan = strategy.tell(jax.random.key(2), state, genotypes, jnp.full((POPSIZE,), jnp.nan))
    assert no_nan(all_nan)
    assert float(all_nan.best_fitness) == -np.inf


@pytest.mark.parametrize("name", NAMES)
def test_wrong_fitness_shape_names_both_shapes(name):
    strategy = make(name)
    state = strategy.init(jax.random.key(0), jnp.ones(5))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    with pytest.raises(ValueError, match=r"\(15,\).*\(16,\)"):
        strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros(POPSIZE - 1))
    with pytest.raises(ValueError, match=r"\(16, 1\)"):
        jax.jit(lambda f: strategy.tell(jax.random.key(2), state, genotypes, f))(jnp.zeros((POPSIZE, 1)))


@pytest.mark.parametrize("name", NAMES)
def test_pytree_x0(name):
    x0 = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}, "scale": jnp.ones(())}
    strategy = make(name)
    state = strategy.init(jax.random.key(0), x0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    member = strategy.decode(state, jax.tree_util.tree_map(lambda g: g[3], genotypes))
    assert jax.tree_util.tree_structure(member) == jax.tree_util.tree_structure(x0)
    pop = ne.population(strategy, state, genotypes)
    assert pop["dense"]["kernel"].shape == (POPSIZE, 3, 2)
    fitness = -jax.vmap(ne.tasks.sphere)(pop)
    state = strategy.tell(jax.random.key(2), state, genotypes, fitness)
    assert jax.tree_util.tree_structure(state.best_solution) == jax.tree_util.tree_structure(x0)
    if hasattr(state, "mean"):
        assert jax.tree_util.tree_structure(state.mean) == jax.tree_util.tree_structure(x0)


PYTREE_X0 = {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}, "scale": jnp.ones(())}
# Lanes of the fused program: 0-3 seeds, 4-6 one seed and three sigmas, 7 NaN/-inf fitness in
# generation 0, 8 all-NaN fitness in generation 0.
FUSED_SIGMAS = np.array([0.5, 0.5, 0.5, 0.5, 0.05, 0.2, 1.0, 0.5, 0.5], np.float32)
FUSED_MODES = np.array([0, 0, 0, 0, 0, 0, 0, 1, 2], np.int32)
FUSED_SEEDS = np.array([0, 1, 2, 3, 4, 4, 4, 5, 5], np.int32)
FUSED_GENERATIONS = 5


def corrupt(fitness, mode):
    bad = fitness.at[::2].set(jnp.nan).at[1].set(-jnp.inf)
    return jnp.select([mode == 1, mode == 2], [bad, jnp.full_like(fitness, jnp.nan)], fitness)


def has_nan(tree):
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.any(jnp.stack([jnp.any(jnp.isnan(x)) for x in leaves]))


def problem(name):
    """``(x0, fitness of a population of solutions)``: a pytree on the sphere, or, for NEAT, whose
    solutions are networks, the XOR task from a 2-input, 1-output template."""
    if name == "neat":
        task = ne.tasks.xor()
        return task.init_solution(None), lambda sols: task.evaluate(None, (), sols)[0].fitness
    return PYTREE_X0, lambda sols: -jax.vmap(ne.tasks.sphere)(sols)


def fused_lane(name, seed, sigma, mode):
    """One lane: FUSED_GENERATIONS generations from the problem's x0; ``mode`` corrupts generation 0."""
    strategy = make(name, **{SWEPT.get(name, "sigma"): sigma})
    x0, fitness_of = problem(name)
    k_init, k_loop = jax.random.split(jax.random.fold_in(jax.random.key(7), seed))
    state = strategy.init(k_init, x0)

    def step(state, key):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        fitness = fitness_of(ne.population(strategy, state, genotypes))
        fitness = jnp.where(state.generation == 0, corrupt(fitness, mode), fitness)
        state = strategy.tell(k_tell, state, genotypes, fitness)
        return state, (fitness, state.best_fitness, has_nan(state))

    return jax.lax.scan(step, state, jax.random.split(k_loop, FUSED_GENERATIONS))


@pytest.mark.parametrize("name", FUSED)
def test_fused_contract(name):
    """The checks above, in one compiled program: jit, required fields, vmap over seeds and over
    sigma (compiled once), determinism, NaN/-inf worst, pytree x0, fitness shape errors."""
    lanes = (FUSED_SEEDS, FUSED_SIGMAS, FUSED_MODES)
    # XLA's lowest backend optimisation builds this 3-4x faster; one program for the whole contract.
    traces = []

    def lanes_program(*lane):
        traces.append(1)  # runs once per trace, i.e. per compilation of this fresh jit
        return jax.vmap(lambda *one: fused_lane(name, *one))(*lane)

    program = jax.jit(lanes_program, compiler_options={"xla_backend_optimization_level": 0})
    out = program(*lanes)
    state, (fitness, bests, nans) = out
    n, g = len(FUSED_SEEDS), FUSED_GENERATIONS
    assert fitness.shape == (n, g, POPSIZE) and bests.shape == (n, g)
    x0, _ = problem(name)
    strategy = make(name)
    key = jax.random.key(0)

    def first_member():
        s = strategy.init(key, x0)
        genotypes, s = strategy.ask(key, s)
        return strategy.decode(s, jax.tree_util.tree_map(lambda x: x[0], genotypes))

    # Members (and the best solution) are shaped like x0, or for NEAT like a decoded network.
    like = jax.eval_shape(first_member) if name == "neat" else PYTREE_X0
    assert jax.tree_util.tree_structure(state.best_solution) == jax.tree_util.tree_structure(like)
    for leaf, ref in zip(*map(jax.tree_util.tree_leaves, (state.best_solution, like)), strict=True):
        assert leaf.shape == (n,) + ref.shape
    if hasattr(state, "mean"):
        assert jax.tree_util.tree_structure(state.mean) == jax.tree_util.tree_structure(PYTREE_X0)
    np.testing.assert_array_equal(state.generation, g)
    assert state.best_fitness.shape == (n,) and state.best_fitness.dtype == jnp.float32
    # Best so far is the running max of the (sanitised) fitness; NaN and -inf are worst.
    clean = np.where(np.isnan(fitness), -np.inf, np.asarray(fitness))
    np.testing.assert_allclose(bests, np.maximum.accumulate(clean.max(-1), axis=1), rtol=1e-5)
    assert bests[7, 0] == pytest.approx(float(np.nanmax(np.asarray(fitness[7, 0, 2:]))))
    assert bests[8, 0] == -np.inf and np.isfinite(bests[8, -1])
    assert not np.any(nans), f"NaN in the state of lanes {np.nonzero(np.asarray(nans).any(1))[0]}"
    assert len(set(np.asarray(state.best_fitness[:4]).tolist())) > 1  # seeds differ
    assert len(set(np.asarray(state.best_fitness[4:7]).tolist())) == 3  # sigma changes the run
    # Deterministic, and lanes are independent: permuted lanes give permuted results.
    again = program(*lanes)
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    perm = np.array([3, 0, 1, 2, 6, 4, 5, 8, 7])
    permuted, (_, permuted_bests, _) = program(*(x[perm] for x in lanes))
    np.testing.assert_allclose(permuted_bests, bests[perm], rtol=1e-5)
    np.testing.assert_allclose(permuted.best_fitness, state.best_fitness[perm], rtol=1e-5)
    assert len(traces) == 1  # other sigmas, seeds and modes: still one compilation
    # decode gives x0's structure; wrong fitness shapes fail at trace time, naming both shapes.

    def told(shape):
        s = strategy.init(key, x0)
        genotypes, s = strategy.ask(key, s)
        return strategy.tell(key, s, genotypes, jnp.zeros(shape)), genotypes

    _, genotypes = jax.eval_shape(lambda: told((POPSIZE,)))
    lane0 = jax.tree_util.tree_map(lambda x: x[0], state)
    member = strategy.decode(
        lane0, jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape[1:], x.dtype), genotypes)
    )
    assert jax.tree_util.tree_structure(member) == jax.tree_util.tree_structure(like)
    with pytest.raises(ValueError, match=r"\(15,\).*\(16,\)"):
        jax.eval_shape(lambda: told((POPSIZE - 1,)))
    with pytest.raises(ValueError, match=r"\(16, 1\)"):
        jax.eval_shape(lambda: told((POPSIZE, 1)))


NOVELTY = [n for n in NAMES + QD if ne.strategies.needs_descriptors(n)]


@pytest.mark.parametrize("name", NOVELTY)
def test_missing_or_misshapen_descriptors_name_the_expected_shape(name):
    strategy = ne.strategies.make(name, popsize=POPSIZE)  # without the contract's descriptors
    state = strategy.init(jax.random.key(0), jnp.ones(5))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    fitness = jnp.zeros(POPSIZE)
    with pytest.raises(ValueError, match=r"descriptors.*\(16, 2\)"):
        strategy.tell(jax.random.key(2), state, genotypes, fitness)
    with pytest.raises(ValueError, match=r"\(16, 3\).*\(16, 2\)"):
        jax.jit(lambda d: strategy.tell(jax.random.key(2), state, genotypes, fitness, d))(jnp.zeros((16, 3)))


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown strategy 'nope'.*openai_es"):
        ne.strategies.make("nope")
    with pytest.raises(ValueError, match="unknown hyperparameter.*'sigmaa'.*valid"):
        ne.strategies.make("openai_es", sigmaa=1.0)
    with pytest.raises(ValueError, match="even"):
        ne.strategies.make("openai_es", popsize=7)
    with pytest.raises(ValueError, match="x0"):
        ne.strategies.make("ga").init(jax.random.key(0), {"w": jnp.ones(3, jnp.int32)})
    assert {"openai_es", "ga"} <= set(ne.strategies.names())
    assert {"ns_ga", "ns_es", "nsr_es", "nsra_es"} <= set(NOVELTY)


# --------------------------------------------------------------------------- #
# Multi-objective strategies: fitness (popsize, n_objectives), every objective maximised.
# --------------------------------------------------------------------------- #


def make_multi(name, **hp):
    return ne.strategies.make(name, popsize=POPSIZE, bounds=(-3.0, 3.0), **hp)


def n_objectives(name):
    return ne.strategies.hyperparameters(name)["n_objectives"]


def objectives(solutions, m):
    """Objective j: -|x - e_j|^2 over the flattened member (conflicting for j != k)."""
    flat = jax.vmap(lambda s: ravel_pytree(s)[0])(solutions)
    centres = jnp.eye(m, flat.shape[1])
    return -jnp.sum(jnp.square(flat[:, None, :] - centres[None]), axis=-1)


def run_multi(strategy, key, x0, m, generations=5):
    k_init, k_loop = jax.random.split(key)
    state = strategy.init(k_init, x0)

    def step(state, key):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        fitness = objectives(ne.population(strategy, state, genotypes), m)
        return strategy.tell(k_tell, state, genotypes, fitness), fitness

    return jax.lax.scan(step, state, jax.random.split(k_loop, generations))


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_jit_fields_and_front(name):
    m = n_objectives(name)
    x0 = jnp.ones(5)
    state, fitness = jax.jit(lambda k: run_multi(make_multi(name), k, x0, m))(jax.random.key(0))
    assert fitness.shape == (5, POPSIZE, m)
    assert state.best_solution.shape == x0.shape and state.best_fitness.shape == ()
    assert int(state.generation) == 5
    # best_fitness: the best worst-objective value seen so far.
    assert float(state.best_fitness) == pytest.approx(float(fitness.min(-1).max()), rel=1e-5)
    assert state.fitness.shape == (POPSIZE, m) and state.rank.shape == (POPSIZE,)
    assert np.all(np.abs(np.asarray(state.population)) <= 3.0)  # inside the bounds
    # rank 0 is the non-dominated set of the parents.
    f = np.asarray(state.fitness)
    dominated = [any(np.all(g >= x) and np.any(g > x) for g in f) for x in f]
    np.testing.assert_array_equal(np.asarray(state.rank) == 0, ~np.array(dominated))
    solutions, front, mask = ne.strategies.pareto_front(make_multi(name), state)
    assert solutions.shape == (POPSIZE, 5) and front.shape == (POPSIZE, m)
    np.testing.assert_array_equal(mask, np.asarray(state.rank) == 0)


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_vmap_over_seeds(name):
    m = n_objectives(name)
    x0 = jnp.ones(5)
    keys = jax.random.split(jax.random.key(1), 4)
    states, fitness = jax.jit(jax.vmap(lambda k: run_multi(make_multi(name), k, x0, m)))(keys)
    assert fitness.shape == (4, 5, POPSIZE, m) and states.best_fitness.shape == (4,)
    single, _ = jax.jit(lambda k: run_multi(make_multi(name), k, x0, m))(keys[2])
    np.testing.assert_allclose(states.fitness[2], single.fitness, rtol=1e-6)
    assert len(set(np.asarray(states.best_fitness).tolist())) > 1


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_vmap_over_hyperparameter_compiles_once(name):
    m = n_objectives(name)
    x0 = jnp.ones(5)
    traces = []

    @jax.jit
    def sweep(etas):
        traces.append(1)
        run = lambda eta: run_multi(
            make_multi(name, mutation_eta=eta, mutation_rate=0.5), jax.random.key(2), x0, m
        )
        return jax.vmap(lambda eta: run(eta)[0].fitness)(etas)

    a = sweep(jnp.array([1.0, 5.0, 50.0]))
    b = sweep(jnp.array([2.0, 10.0, 100.0]))
    assert len(traces) == 1 and a.shape == b.shape == (3, POPSIZE, m)
    assert not np.array_equal(a[0], a[2])  # eta changes the run


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_deterministic(name):
    """Two separately built strategies, each compiled in its own program, agree bit for bit."""
    m = n_objectives(name)
    first = jax.jit(lambda k: run_multi(make_multi(name), k, jnp.ones(5), m))
    second = jax.jit(lambda k: run_multi(make_multi(name), k, jnp.ones(5), m))
    for a, b in zip(
        jax.tree_util.tree_leaves(first(jax.random.key(3))),
        jax.tree_util.tree_leaves(second(jax.random.key(3))),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_nan_and_minus_inf_are_worst(name):
    m = n_objectives(name)
    strategy = make_multi(name)
    state = strategy.init(jax.random.key(0), jnp.ones(5))
    for generation in range(2):  # the initial population, then children
        genotypes, state = strategy.ask(jax.random.key(generation), state)
        fitness = objectives(ne.population(strategy, state, genotypes), m)
        bad = fitness.at[::2].set(jnp.nan).at[1, 0].set(-jnp.inf).at[3, -1].set(jnp.nan)
        state = strategy.tell(jax.random.key(9), state, genotypes, bad)
        assert no_nan(state)
        clean = np.where(np.isnan(bad), -np.inf, np.asarray(bad)).min(-1)
        assert float(state.best_fitness) >= float(clean.max())
        # Members with a NaN (-inf) objective never dominate finite ones.
        ranks = np.asarray(state.rank)
        finite = np.all(np.isfinite(np.asarray(state.fitness)), axis=1)
        assert finite.any() and ranks[finite].min() == 0
    all_nan = strategy.tell(jax.random.key(2), state, genotypes, jnp.full((POPSIZE, m), jnp.nan))
    assert no_nan(all_nan)


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_wrong_fitness_shape_names_both_shapes(name):
    m = n_objectives(name)
    strategy = make_multi(name)
    state = strategy.init(jax.random.key(0), jnp.ones(5))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    with pytest.raises(ValueError, match=rf"\(16,\).*\(16, {m}\)"):
        strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros(POPSIZE))
    with pytest.raises(ValueError, match=rf"\(16, {m + 1}\).*\(16, {m}\)"):
        jax.jit(lambda f: strategy.tell(jax.random.key(2), state, genotypes, f))(jnp.zeros((POPSIZE, m + 1)))


@pytest.mark.parametrize("name", MULTI)
def test_multi_objective_pytree_x0_and_bounds(name):
    m = n_objectives(name)
    high = {"dense": {"kernel": jnp.full((3, 2), 2.0), "bias": jnp.ones(2)}, "scale": jnp.array(0.5)}
    strategy = ne.strategies.make(name, popsize=POPSIZE, bounds=(-1.0, high))
    state = strategy.init(jax.random.key(0), PYTREE_X0)
    genotypes, state = strategy.ask(jax.random.key(1), state)
    pop = ne.population(strategy, state, genotypes)
    assert pop["dense"]["kernel"].shape == (POPSIZE, 3, 2)
    assert float(pop["scale"].max()) <= 0.5 and float(pop["dense"]["bias"].min()) >= -1.0
    state = strategy.tell(jax.random.key(2), state, genotypes, objectives(pop, m))
    assert jax.tree_util.tree_structure(state.best_solution) == jax.tree_util.tree_structure(PYTREE_X0)
    with pytest.raises(ValueError, match=r"shape \(4,\).*x0 has shape \(5,\)"):
        ne.strategies.make(name, popsize=POPSIZE, bounds=(-1.0, np.ones(4))).init(
            jax.random.key(0), jnp.ones(5)
        )

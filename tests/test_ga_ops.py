"""GA operators: selection, crossover, self-adaptation, mate choice, diversity, seed-chain lineage."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import perturbation, rng
from neuroevo.strategies import ga_ops as ops
from neuroevo.strategy import ravel

A = jnp.arange(1.0, 11.0)
B = -jnp.arange(1.0, 11.0)
KEYS = jax.random.split(jax.random.key(0), 8)


def sphere_step(strategy):
    """One jitted generation on the sphere: (key, state) -> state."""

    @jax.jit
    def step(key, state):
        k_ask, k_tell = jax.random.split(key)
        g, state = strategy.ask(k_ask, state)
        fitness = -jax.vmap(ne.tasks.sphere)(ne.population(strategy, state, g))
        return strategy.tell(k_tell, state, g, fitness)

    return step


def run(strategy, x0, generations, key=jax.random.key(0)):
    step = sphere_step(strategy)
    state = strategy.init(jax.random.key(1), x0)
    for i in range(generations):
        state = step(jax.random.fold_in(key, i), state)
    return state


# --------------------------------------------------------------------------- #
# Selection.
# --------------------------------------------------------------------------- #


def test_tournament_returns_the_fittest_entrant_of_each_sample():
    fitness = jnp.array([0.3, jnp.nan, 5.0, -1.0, 2.0, -jnp.inf, 4.0, 1.0])
    key = jax.random.key(3)
    winners = np.asarray(ops.tournament(key, fitness, 64, 3))
    entrants = np.asarray(jax.random.randint(key, (64, 3), 0, 8, jnp.int32))  # the same draw
    f = np.nan_to_num(np.asarray(fitness), nan=-np.inf)
    for row, w in zip(entrants, winners, strict=True):
        assert w in row and f[w] == f[row].max()
    assert 1 not in winners.tolist() or all(1 in r and set(r) <= {1, 5} for r in entrants[winners == 1])


# --------------------------------------------------------------------------- #
# Crossover.
# --------------------------------------------------------------------------- #


def test_one_point_child_is_a_prefix_of_a_and_a_suffix_of_b():
    cuts = set()
    for key in KEYS:
        child = np.asarray(ops.one_point_crossover(key, A, B))
        cut = int(np.argmax(child < 0))  # first gene from B
        assert 1 <= cut <= 9
        np.testing.assert_array_equal(child, np.concatenate([A[:cut], B[cut:]]))
        cuts.add(cut)
    assert len(cuts) > 2  # the cut is random


def test_uniform_child_takes_each_gene_from_a_or_b():
    child = np.asarray(ops.uniform_crossover(jax.random.key(0), jnp.arange(1000.0), -jnp.arange(1000.0) - 1))
    from_a = child >= 0
    np.testing.assert_array_equal(np.abs(child), np.where(from_a, np.arange(1000.0), np.arange(1000.0) + 1))
    assert 400 < from_a.sum() < 600


def test_arithmetic_child_is_a_convex_combination():
    alphas = []
    for key in KEYS:
        child = np.asarray(ops.arithmetic_crossover(key, A, B))
        alpha = (child - np.asarray(B)) / np.asarray(A - B)
        np.testing.assert_allclose(alpha, alpha[0], atol=1e-6)  # one weight for every gene
        assert 0.0 <= alpha[0] <= 1.0
        alphas.append(alpha[0])
    assert np.std(alphas) > 0.05


@pytest.mark.parametrize("crossover", ["one_point", "arithmetic"])  # the code path is shared by all three
def test_ga_crossover_children_regenerate_from_their_genotype(crossover):
    """With sigma = 0 a member is exactly cross(P[parent], P[mate]) from its crossover seed."""
    ga = ne.strategies.ga(16, sigma=0.0, crossover=crossover, crossover_rate=0.75, truncation=4)
    pool = jnp.stack([A, B, 2 * A, -3 * A])
    state = jax.jit(ga.init)(jax.random.key(0), jnp.zeros(10))._replace(parents=pool)
    g, state = jax.jit(ga.ask)(jax.random.key(1), state)
    members = np.asarray(jax.jit(lambda s, g: ne.population(ga, s, g))(state, g))
    fn = ops.CROSSOVER_FNS[crossover]
    crossed = 0
    for i in range(16):
        p, m = int(g.parent[i]), int(g.mate[i])
        expected = pool[p] if p == m else fn(jax.random.wrap_key_data(g.cross_seed[i]), pool[p], pool[m])
        np.testing.assert_allclose(members[i], expected, rtol=1e-6)  # arithmetic: up to fused multiply-add
        crossed += p != m
    assert crossed >= 6
    assert int(g.parent[0]) == int(g.mate[0]) == 0 and float(g.scale[0]) == 0.0  # the elite


# --------------------------------------------------------------------------- #
# Self-adaptive mutation strength.
# --------------------------------------------------------------------------- #


def test_self_adaptive_sigmas_evolve_and_shrink_near_the_optimum():
    ga = ne.strategies.ga(16, sigma=1.0, self_adaptive=True, truncation=4)
    state = run(ga, jnp.zeros(10), 25)  # x0 is the optimum: smaller steps win
    sig = np.asarray(state.parent_sigma)
    assert sig.shape == (4,)
    assert np.median(sig) < 0.1  # started at 1.0 (the elite, x0 itself, keeps its step)
    g, _ = jax.jit(ga.ask)(jax.random.key(9), state)
    assert len(set(np.asarray(g.sigma).tolist())) > 8  # every child draws its own step
    np.testing.assert_array_equal(g.scale[1:], g.sigma[1:])
    assert ops.default_tau(10_000) == pytest.approx(1 / np.sqrt(200))


def test_float_hyperparameters_are_traceable():
    traces = []

    @jax.jit
    def sweep(rates, taus):
        traces.append(1)  # once per trace, i.e. per compilation

        def one(rate, tau):
            ga = ne.strategies.ga(
                16, sigma=0.5, crossover="arithmetic", crossover_rate=rate, self_adaptive=True, tau=tau
            )
            state = ga.init(jax.random.key(0), jnp.ones(4))
            for i in range(1):
                k_ask, k_tell = jax.random.split(jax.random.key(i))
                g, state = ga.ask(k_ask, state)
                state = ga.tell(k_tell, state, g, -jax.vmap(ne.tasks.sphere)(ne.population(ga, state, g)))
            return state.best_fitness

        return jax.vmap(one)(rates, taus)

    a = sweep(jnp.array([0.0, 0.5, 1.0]), jnp.array([0.1, 0.3, 1.0]))
    sweep(jnp.array([0.2, 0.4, 0.9]), jnp.array([0.2, 0.2, 0.2]))
    assert len(traces) == 1 and len(set(np.asarray(a).tolist())) == 3


# --------------------------------------------------------------------------- #
# Mate choice.
# --------------------------------------------------------------------------- #


def test_choose_mates_picks_the_candidate_closest_to_the_ideal():
    pool = jnp.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [0.0, 3.0], [-2.0, -2.0]])
    ideals = jnp.array([[4.0, 4.0], [0.0, 2.0], [-1.0, -1.0], [0.9, 0.1], [0.0, 0.0]])
    distances = ops.squared_distances(ideals, pool)
    np.testing.assert_allclose(distances, np.sum((ideals[:, None] - pool[None]) ** 2, -1), atol=1e-5)
    first = jnp.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4] * 4)
    key = jax.random.key(7)
    mates = np.asarray(ops.choose_mates(key, first, distances, 3))
    drawn = np.asarray(jax.random.randint(key, (40, 3), 0, 5, jnp.int32))  # the same draw
    ideal_np, pool_np = np.asarray(ideals), np.asarray(pool)
    for f, row, m in zip(np.asarray(first), drawn, mates, strict=True):
        d = np.sum((pool_np[row] - ideal_np[f]) ** 2, axis=1)
        assert m == row[np.argmin(d)]


def test_mate_choice_in_the_ga_follows_and_inherits_the_preferences():
    ga = ne.strategies.ga(
        64,
        sigma=0.1,
        truncation=8,
        crossover="uniform",
        crossover_rate=1.0,
        mate_choice=True,
        tournament_size=8,
    )
    state = jax.jit(ga.init)(jax.random.key(0), jnp.zeros(3))
    assert state.preferences.shape == (8, 3) and not np.array_equal(state.preferences, state.parents)
    pool = jnp.arange(24.0).reshape(8, 3)
    ideal = pool[3]
    state = state._replace(parents=pool, preferences=jnp.broadcast_to(ideal, (8, 3)))
    g, state = jax.jit(ga.ask)(jax.random.key(1), state)
    # Every chooser wants member 3: it wins whenever it is among the 8 candidates (p ~ 0.66),
    # against 1/8 for a random partner.
    assert float(jnp.mean(g.mate[1:] == 3)) > 0.5
    new = jax.jit(ga.tell)(jax.random.key(2), state, g, jnp.arange(64.0))
    # A child's ideal is its parents' ideals crossed (here all the same vector), mutated
    # with the child's step and its own noise: new parent j is member 63 - j.
    for j in range(8):
        i = 63 - j
        noise = rng.seed_normal(g.pref_seed[i], (3,))
        np.testing.assert_allclose(new.preferences[j], ideal + g.scale[i] * noise, rtol=1e-6)
    assert not np.array_equal(new.preferences, state.preferences)  # ideals evolve with their owners


# --------------------------------------------------------------------------- #
# Diversity.
# --------------------------------------------------------------------------- #


def test_diversity_is_the_mean_distance_to_the_centroid():
    square = jnp.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert float(ops.diversity(square)) == pytest.approx(np.sqrt(2.0))
    assert float(ops.diversity(jnp.ones((5, 3)))) == 0.0
    line = jnp.array([[0.0], [0.0], [0.0], [4.0]])  # centroid 1: distances 1, 1, 1, 3
    assert float(ops.diversity(line)) == pytest.approx(1.5)


def test_diversity_is_in_the_state_and_the_history():
    ga = ne.strategies.ga(16, sigma=0.3, selection="tournament", crossover="one_point")
    task = ne.tasks.function(ne.tasks.sphere)
    state, history = ne.evolve(jax.random.key(0), ga, task, jnp.ones(5), 6, log_every=6)
    assert history["diversity"].shape == (6,) and np.all(history["diversity"] > 0)
    assert float(state.diversity) == pytest.approx(float(ops.diversity(state.parents)))
    assert history["diversity"][-1] == pytest.approx(float(state.diversity))


# --------------------------------------------------------------------------- #
# Seed-chain lineage (Such et al. 2017).
# --------------------------------------------------------------------------- #


def mlp_init(key):
    return ne.nn.MLP(hidden=(64,), out=2).init(key, jnp.zeros(8))


@pytest.mark.parametrize("dense", [True, False])
def test_lineage_rebuilds_the_network_bit_for_bit_after_50_generations(dense):
    x0_key = jax.random.key(42)
    x0 = mlp_init(x0_key)
    ga = ne.strategies.ga(16, sigma=0.01, truncation=4, lineage_capacity=64, dense=dense)
    state = run(ga, x0, 50)
    n = int(state.best_lineage.length)
    assert 10 < n <= 50
    chain = ne.strategies.ga.encode(state, x0_seed=x0_key)
    assert len(chain) == 16 + 8 + 12 * n
    rebuilt = ne.strategies.ga.decode_lineage(chain, init=mlp_init)
    for r, b in zip(
        jax.tree_util.tree_leaves(rebuilt), jax.tree_util.tree_leaves(state.best_solution), strict=True
    ):
        np.testing.assert_array_equal(r, b)
    dim = ravel(x0).shape[0]
    assert len(chain) < 4 * dim  # smaller than the dense network
    # Parents too, with x0 given instead of its key.
    member = ne.strategies.ga.decode_lineage(ne.strategies.ga.encode(state, index=2), x0)
    np.testing.assert_array_equal(ravel(member), state.parents[2])


def test_lineage_overflow_and_misuse_raise():
    ga = ne.strategies.ga(16, sigma=0.01, truncation=4, lineage_capacity=3)
    step = sphere_step(ga)
    state = jax.jit(ga.init)(jax.random.key(0), jnp.ones(6))
    chain = ne.strategies.ga.encode(state)  # x0 itself: no mutation yet
    assert len(chain) == 16
    with pytest.raises(ValueError, match="pass the run's x0"):
        ne.strategies.ga.decode_lineage(chain)
    with pytest.raises(ValueError, match="7 parameters.*6"):
        ne.strategies.ga.decode_lineage(chain, jnp.ones(7))
    for i in range(12):
        state = step(jax.random.key(i), state)
    assert int(state.best_lineage.length) > 3
    with pytest.raises(ValueError, match="overflowed.*lineage_capacity=3"):
        ne.strategies.ga.encode(state)
    with pytest.raises(ValueError, match="lineage_capacity > 0"):
        ne.strategies.ga.encode(ne.strategies.ga(16).init(jax.random.key(0), jnp.ones(6)))


# --------------------------------------------------------------------------- #
# Bad input and defaults.
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(selection="roulette"), "unknown selection 'roulette'"),
        (dict(crossover="two_point"), "unknown crossover 'two_point'"),
        (dict(selection="tournament", tournament_size=17), "tournament_size.*popsize 16.*17"),
        (dict(selection="tournament", tournament_size=0), "tournament_size"),
        (
            dict(crossover="uniform", crossover_rate=1.5),
            r"crossover_rate' of strategy 'ga' must be in \[0, 1\], got 1.5",
        ),
        (dict(crossover="uniform", crossover_rate=-0.1), "crossover_rate"),
        (dict(mate_choice=True), "mate_choice.*crossover"),
        (dict(crossover="uniform", lineage_capacity=10), "lineage_capacity.*crossover"),
        (dict(lineage_capacity=-1), "lineage_capacity"),
    ],
)
def test_bad_hyperparameters_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ne.strategies.make("ga", popsize=16, **kwargs)


def test_defaults_are_the_plain_deep_ga():
    ga = ne.strategies.ga(16)
    g, state = jax.jit(ga.ask)(jax.random.key(1), jax.jit(ga.init)(jax.random.key(0), jnp.zeros(3)))
    assert type(g) is perturbation.Perturbation and state.parents.shape == (2, 3)
    assert state.parent_sigma is None and state.preferences is None and state.lineage is None
    assert ne.strategies.ga(16, selection="tournament").init(
        jax.random.key(0), jnp.zeros(3)
    ).parents.shape == (16, 3)

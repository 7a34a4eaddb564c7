"""Discrete genotypes (ne.space) and the strategies that evolve them: ga, nsga2 and
regularized_evolution under the contract's checks (jit, vmap over seeds, determinism, NaN,
wrong shapes), and regularized evolution's queue."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne

SPACE = ne.space.categorical([3, 5, 5, 2])
MIXED = ne.space.integer([-2, 0, 10], [2, 1, 14])
POPSIZE = 16


def test_spaces_and_their_errors():
    assert SPACE.n_genes == 4 and SPACE.cardinalities.tolist() == [3, 5, 5, 2]
    assert MIXED.low.tolist() == [-2, 0, 10] and MIXED.cardinalities.tolist() == [5, 2, 5]
    assert ne.space.integer(0, 3, n_genes=2).high.tolist() == [3, 3]
    with pytest.raises(ValueError, match=r"categorical gene 2 has cardinality 1.*\[3, 4, 1\]"):
        ne.space.categorical([3, 4, 1])
    with pytest.raises(ValueError, match="gene 0 has cardinality 0"):
        ne.space.categorical([0])
    with pytest.raises(ValueError, match="non-empty"):
        ne.space.categorical([])
    with pytest.raises(ValueError, match="integers"):
        ne.space.categorical([2.5, 3])
    with pytest.raises(ValueError, match=r"integer gene 1 has low=4 >= high=4"):
        ne.space.integer([0, 4], [1, 4])
    with pytest.raises(ValueError, match="same length"):
        ne.space.integer([0, 1], [3])
    with pytest.raises(ValueError, match=r"x0\[1\] = 7 is outside gene 1's values \[0, 4\]"):
        ne.space.check_genotype(SPACE, np.array([0, 7, 0, 0]))
    with pytest.raises(ValueError, match="integer vector of the space's 4 genes"):
        ne.space.check_genotype(SPACE, np.zeros(4, np.float32))


def test_sample_is_uniform_and_inside():
    genes = np.asarray(ne.space.sample(jax.random.key(0), MIXED, 20000))
    assert genes.shape == (20000, 3) and bool(ne.space.contains(MIXED, genes))
    for g, card in enumerate(MIXED.cardinalities):
        counts = np.bincount(genes[:, g] - MIXED.low[g], minlength=card)
        np.testing.assert_allclose(counts / 20000, 1 / card, atol=0.015)


def test_mutation_changes_genes_to_uniform_other_values():
    genes = jnp.zeros((20000, 4), jnp.int32)
    assert np.array_equal(ne.space.mutate(jax.random.key(0), SPACE, genes, 0.0), genes)
    every = np.asarray(ne.space.mutate(jax.random.key(1), SPACE, genes, 1.0))
    assert np.all(every != 0) and bool(ne.space.contains(SPACE, every))
    for g, card in enumerate(SPACE.cardinalities):  # uniform over the other values
        counts = np.bincount(every[:, g], minlength=card)[1:]
        np.testing.assert_allclose(counts / 20000, 1 / (card - 1), atol=0.015)
    some = np.asarray(ne.space.mutate(jax.random.key(2), SPACE, genes, 0.25))
    assert abs(np.mean(some != 0) - 0.25) < 0.01
    one = np.asarray(ne.space.mutate_one(jax.random.key(3), SPACE, genes))
    np.testing.assert_array_equal(np.sum(one != 0, axis=1), 1)
    np.testing.assert_allclose(np.mean(one != 0, axis=0), 0.25, atol=0.015)  # the gene is uniform


def test_uniform_crossover_exchanges_genes():
    a, b = jnp.zeros((1000, 4), jnp.int32), jnp.ones((1000, 4), jnp.int32)
    c, d = ne.space.uniform_crossover(jax.random.key(0), a, b, 0.3)
    np.testing.assert_array_equal(np.asarray(c) + np.asarray(d), 1)  # complementary children
    assert abs(float(jnp.mean(c)) - 0.3) < 0.02


# --------------------------------------------------------------------------- #
# The strategies on discrete genes.
# --------------------------------------------------------------------------- #

DISCRETE = {
    "ga": dict(crossover="uniform"),
    "ga_tournament": dict(selection="tournament", crossover="one_point", mutation_rate=0.3),
    "nsga2": dict(n_objectives=2),
    "regularized_evolution": dict(population_size=32, tournament_size=4),
    "regularized_evolution_per_gene": dict(population_size=32, mutation="per_gene", mutation_rate=0.5),
}
TARGET = jnp.array([2, 4, 0, 1])


def make(label, space=SPACE):
    name = label.split("_tournament")[0].split("_per_gene")[0]
    return name, ne.strategies.make(name, popsize=POPSIZE, space=space, **DISCRETE[label])


def objectives(genes, name):
    """Matches with TARGET; for nsga2 also (conflicting) the number of zero genes."""
    score = jnp.sum(genes == TARGET, axis=-1).astype(jnp.float32)
    return (
        jnp.stack([score, jnp.sum(genes == 0, axis=-1).astype(jnp.float32)], -1) if name == "nsga2" else score
    )


def run(label, key, generations=6):
    name, strategy = make(label)
    k_init, k_loop = jax.random.split(key)
    state = strategy.init(k_init, None)

    def step(state, key):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        members = ne.population(strategy, state, genotypes)
        return strategy.tell(k_tell, state, genotypes, objectives(members, name)), members

    return jax.lax.scan(step, state, jax.random.split(k_loop, generations))


@pytest.mark.parametrize("label", list(DISCRETE))
def test_discrete_jit_vmap_determinism(label):
    state, members = jax.jit(lambda k: run(label, k))(jax.random.key(0))
    assert members.shape == (6, POPSIZE, 4) and members.dtype == jnp.int32
    assert bool(ne.space.contains(SPACE, members))
    assert state.best_solution.shape == (4,) and state.best_solution.dtype == jnp.int32
    keys = jax.random.split(jax.random.key(1), 3)
    batched, batched_members = jax.jit(jax.vmap(lambda k: run(label, k)))(keys)
    single, single_members = jax.jit(lambda k: run(label, k))(keys[1])
    np.testing.assert_array_equal(batched_members[1], single_members)
    np.testing.assert_array_equal(batched.best_fitness[1], single.best_fitness)
    again, again_members = jax.jit(lambda k: run(label, k))(keys[1])
    np.testing.assert_array_equal(again_members, single_members)
    assert len({np.asarray(m).tobytes() for m in batched_members}) == 3  # seeds differ


@pytest.mark.parametrize("label", list(DISCRETE))
def test_discrete_nan_fitness_and_wrong_shapes(label):
    name, strategy = make(label)
    state = strategy.init(jax.random.key(0), jnp.zeros(4, jnp.int32))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    shape = (POPSIZE, 2) if name == "nsga2" else (POPSIZE,)
    state = strategy.tell(jax.random.key(2), state, genotypes, jnp.full(shape, jnp.nan))
    genotypes, state = strategy.ask(jax.random.key(3), state)
    assert bool(ne.space.contains(SPACE, genotypes))
    assert float(state.best_fitness) == -np.inf
    with pytest.raises(ValueError, match=r"\(15,\)"):
        strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros((POPSIZE - 1,)))
    with pytest.raises(ValueError, match="integer vector of the space's 4 genes"):
        strategy.init(jax.random.key(0), jnp.zeros(5, jnp.int32))


@pytest.mark.parametrize("label", ["ga", "nsga2", "regularized_evolution"])
def test_discrete_strategies_find_the_target(label):
    space = ne.space.categorical([5] * 12)
    target = jnp.arange(12) % 5
    hp = dict(DISCRETE[label], n_objectives=1) if label == "nsga2" else DISCRETE[label]
    strategy = ne.strategies.make(label, popsize=POPSIZE, space=space, **hp)

    def evaluate(key, task_state, genes):
        matches = jnp.mean(genes == target, -1)
        return ne.tasks.Evaluation(fitness=matches[:, None] if label == "nsga2" else matches), task_state

    task = ne.tasks.Task(init=lambda key: (), evaluate=evaluate)
    _, history = ne.evolve(jax.random.key(0), strategy, task, jnp.zeros(12, jnp.int32), 60, log_every=60)
    assert history["best"][-1] >= 10 / 12 > history["best"][0]


def test_ga_space_rejects_real_only_options():
    with pytest.raises(ValueError, match="'arithmetic' needs real genes"):
        ne.strategies.ga(16, space=SPACE, crossover="arithmetic")
    with pytest.raises(ValueError, match="self_adaptive=True needs real genes"):
        ne.strategies.ga(16, space=SPACE, self_adaptive=True)
    with pytest.raises(ValueError, match="lineage_capacity"):
        ne.strategies.ga(16, space=SPACE, lineage_capacity=4)
    with pytest.raises(ValueError, match="neuroevo.space.Space"):
        ne.strategies.ga(16, space=[3, 4])
    with pytest.raises(ValueError, match=r"mutation_rate must be in \[0, 1\], got 2"):
        ne.strategies.ga(16, space=SPACE, mutation_rate=2)


# --------------------------------------------------------------------------- #
# Regularized evolution's aging queue.
# --------------------------------------------------------------------------- #


def test_regularized_evolution_queue_ages_out_the_oldest():
    strategy = ne.strategies.regularized_evolution(4, population_size=12, tournament_size=3, space=SPACE)
    state = strategy.init(jax.random.key(0), None)
    initial = np.asarray(state.queue)
    for g in range(3):  # the initial members are evaluated first, oldest first
        genotypes, state = strategy.ask(jax.random.key(g), state)
        np.testing.assert_array_equal(genotypes, initial[4 * g : 4 * g + 4])
        state = strategy.tell(jax.random.key(g), state, genotypes, jnp.arange(4.0) + 10 * g)
    assert int(state.head) == 0
    np.testing.assert_array_equal(state.queue_fitness, np.arange(12) % 4 + 10 * (np.arange(12) // 4))
    genotypes, state = strategy.ask(jax.random.key(7), state)
    assert np.all(np.sum(np.asarray(genotypes)[:, None] != initial[None], -1).min(1) == 1)  # one edit away
    state = strategy.tell(jax.random.key(7), state, genotypes, jnp.full(4, -1.0))
    np.testing.assert_array_equal(state.queue[:4], genotypes)  # the oldest 4 were replaced
    np.testing.assert_array_equal(state.queue[4:], initial[4:])
    assert int(state.head) == 4 and float(state.best_fitness) == 23.0


def test_regularized_evolution_tournament_takes_the_fittest_sample():
    def winners(size):
        strategy = ne.strategies.regularized_evolution(
            256, population_size=256, tournament_size=size, sigma=0.0
        )
        state = strategy.init(jax.random.key(0), jnp.zeros(1))
        ranks = jnp.arange(256.0)
        state = state._replace(queue=ranks[:, None], queue_fitness=ranks, generation=jnp.int32(5))
        genotypes, _ = strategy.ask(jax.random.key(size), state)  # sigma 0: a child equals its parent
        return np.asarray(genotypes[:, 0])

    # The winner of S uniform draws is their maximum: P(winner < q) = (q / 256)^S.
    assert np.mean(winners(8) >= 192) > 0.8  # expected 1 - 0.75^8 = 0.90
    assert abs(np.mean(winners(1) >= 192) - 0.25) < 0.1  # one entrant: uniform


def test_regularized_evolution_bad_input():
    with pytest.raises(ValueError, match="population_size=10 must be a multiple of popsize=4"):
        ne.strategies.regularized_evolution(4, population_size=10)
    with pytest.raises(ValueError, match="tournament_size"):
        ne.strategies.regularized_evolution(4, population_size=8, tournament_size=9)
    with pytest.raises(ValueError, match="unknown mutation"):
        ne.strategies.regularized_evolution(4, mutation="swap")

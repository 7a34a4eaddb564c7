"""EvoPress: pruning levels under an exact budget, the level-switch strategy, multi-step selection."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neuroevo as ne
from neuroevo.nas import pruning
from neuroevo.strategies.evopress import level_switch


def mlp_params(seed=0, sizes=((6, 20), (20, 30), (30, 4))):
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    return {
        "params": {
            f"layer_{i}": {"kernel": jax.random.normal(k, s), "bias": jnp.ones(s[1])}
            for i, (k, s) in enumerate(zip(keys, sizes, strict=True))
        }
    }


def mlp_apply(params, x):
    p = params["params"]
    h = jnp.tanh(x @ p["layer_0"]["kernel"] + p["layer_0"]["bias"])
    h = jnp.tanh(h @ p["layer_1"]["kernel"] + p["layer_1"]["bias"])
    return h @ p["layer_2"]["kernel"] + p["layer_2"]["bias"]


def mlp_loss(params, batch):
    x, y = batch
    return jnp.mean((mlp_apply(params, x) - y) ** 2)


PARAMS = mlp_params()
X = jax.random.normal(jax.random.key(9), (300, 6))
Y = mlp_apply(PARAMS, X)  # the dense model is perfect: every pruning raises the loss


@pytest.mark.parametrize("sparsity", [0.5, 0.7, 0.333])
def test_the_budget_is_exact(sparsity):
    grid = pruning.level_grid(PARAMS, sparsity, levels=7)
    total = 6 * 20 + 20 * 30 + 30 * 4
    assert grid.target == round(sparsity * total)
    assert abs(grid.sparsity - sparsity) <= 0.5 / total
    # Every assignment of the budget's levels prunes exactly the target.
    rng = np.random.default_rng(0)
    for _ in range(50):
        levels = np.zeros(3, np.int64)
        while levels.sum() < grid.budget:
            i = rng.integers(3)
            if levels[i] < grid.max_levels[i]:
                levels[i] += 1
        assert grid.counts(levels).sum() == grid.target
        assert np.all(grid.counts(levels) <= np.floor(0.95 * grid.sizes))
    uniform = pruning.uniform_counts(grid)
    assert uniform.sum() == grid.target and np.all(np.abs(uniform - sparsity * grid.sizes) < 1)
    start = pruning.uniform_levels(grid)
    assert start.sum() == grid.budget and np.all(start <= grid.max_levels)


def test_budgets_no_assignment_reaches_raise():
    with pytest.raises(ValueError, match="no per-layer assignment reaches sparsity 0.9"):
        pruning.level_grid(PARAMS, 0.9, max_sparsity=0.8)
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\)"):
        pruning.level_grid(PARAMS, 1.0)
    with pytest.raises(ValueError, match="no prunable layers"):
        pruning.level_grid({"bias": jnp.ones(3)}, 0.5)
    with pytest.raises(ValueError, match="quantum"):
        pruning.level_grid(PARAMS, 0.5, quantum=0)


def test_prune_zeroes_exactly_the_smallest_magnitudes():
    grid = pruning.level_grid(PARAMS, 0.5, levels=7)
    ranks = pruning.magnitude_ranks(PARAMS, grid)
    counts = jnp.array([3, 100, 7])
    pruned = jax.jit(lambda c: pruning.prune(PARAMS, grid, ranks, c))(counts)
    for i, name in enumerate(["layer_0", "layer_1", "layer_2"]):
        dense = np.asarray(PARAMS["params"][name]["kernel"]).ravel()
        kept = np.asarray(pruned["params"][name]["kernel"]).ravel()
        zeroed = np.flatnonzero(kept == 0)
        assert zeroed.size == int(counts[i])
        assert np.abs(dense[zeroed]).max() <= np.abs(dense[kept != 0]).min()
        np.testing.assert_array_equal(pruned["params"][name]["bias"], PARAMS["params"][name]["bias"])


@settings(max_examples=25)
@given(
    caps=st.lists(st.integers(0, 4), min_size=1, max_size=4),
    data=st.data(),
)
def test_additive_levels_is_the_optimum(caps, data):
    budget = data.draw(st.integers(0, sum(caps)))
    grid = pruning.LevelGrid(
        tuple(range(len(caps))), np.ones(len(caps)), 1, np.array(caps), 0, budget, budget
    )
    errors = [np.array(data.draw(st.lists(st.floats(0, 10), min_size=c + 1, max_size=c + 1))) for c in caps]
    levels = pruning.additive_levels(grid, errors)
    assert levels.sum() == budget and np.all(levels <= caps)
    best = min(
        sum(e[level] for e, level in zip(errors, combo, strict=True))
        for combo in itertools.product(*(range(c + 1) for c in caps))
        if sum(combo) == budget
    )
    assert sum(e[level] for e, level in zip(errors, levels, strict=True)) == pytest.approx(best)


@settings(max_examples=30)
@given(seed=st.integers(0, 2**31 - 1), caps=st.lists(st.integers(0, 5), min_size=2, max_size=6))
def test_level_switch_keeps_the_budget(seed, caps):
    caps = jnp.array(caps)
    levels = jnp.minimum(caps, 2)
    out = level_switch(jax.random.key(seed), levels, caps)
    assert int(out.sum()) == int(levels.sum())
    assert bool(jnp.all((out >= 0) & (out <= caps)))
    changed = int(jnp.sum(out != levels))
    assert changed in (0, 2)
    can = bool(jnp.any(levels < caps)) and int(jnp.sum(levels > 0)) >= 1
    if changed == 0:  # only when no layer can go up while another goes down
        assert not can or (int(jnp.sum(levels < caps)) == 1 and int(jnp.sum(levels > 0)) == 1)


def test_strategy_ask_tell():
    strategy = ne.strategies.evopress(offspring=6, max_levels=[3, 3, 3, 3], max_switches=3)
    state = strategy.init(jax.random.key(0), jnp.array([1, 2, 0, 3]))
    genotypes, _ = jax.jit(strategy.ask)(jax.random.key(1), state)
    assert genotypes.shape == (7, 4)
    np.testing.assert_array_equal(genotypes[0], [1, 2, 0, 3])  # the parent first
    assert np.all(np.asarray(genotypes).sum(1) == 6) and np.all(np.asarray(genotypes) <= 3)
    assert len({tuple(g) for g in np.asarray(genotypes)}) > 2
    fitness = jnp.array([0.5, jnp.nan, 0.9, -jnp.inf, 0.9, 0.1, 0.2])
    told = strategy.tell(jax.random.key(2), state, genotypes, fitness)
    np.testing.assert_array_equal(told.best_solution, genotypes[2])  # the best; ties: the first
    assert float(told.best_fitness) == pytest.approx(0.9) and int(told.generation) == 1
    tie = strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros(7))
    np.testing.assert_array_equal(tie.best_solution, genotypes[0])  # the parent wins ties
    lost = strategy.tell(jax.random.key(2), state, genotypes, jnp.full(7, jnp.nan))
    np.testing.assert_array_equal(lost.best_solution, state.best_solution)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        strategy.tell(jax.random.key(2), state, genotypes, jnp.zeros(5))
    with pytest.raises(ValueError, match="outside layer 1's levels"):
        strategy.init(jax.random.key(0), jnp.array([1, 4, 0, 0]))
    with pytest.raises(ValueError, match="integer levels"):
        strategy.init(jax.random.key(0), jnp.array([1.5, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="max_levels has 4"):
        strategy.init(jax.random.key(0), jnp.array([1, 1]))


def run_search(key, generations=3, selection=((20, 3), (60, 1))):
    grid = pruning.level_grid(PARAMS, 0.6, levels=7)
    strategy = ne.strategies.evopress(offspring=5, max_levels=grid.max_levels)
    task = ne.tasks.compression(mlp_loss, PARAMS, (X, Y), grid, selection=selection)
    return grid, strategy, task


def test_multi_step_selection():
    grid, strategy, task = run_search(None)
    state = strategy.init(jax.random.key(0), jnp.asarray(pruning.uniform_levels(grid)))
    genotypes, _ = strategy.ask(jax.random.key(1), state)
    evaluation, _ = jax.jit(task.evaluate)(jax.random.key(2), (), genotypes)
    m = evaluation.metrics
    np.testing.assert_array_equal(np.sort(np.asarray(m["survived"])), [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(np.sort(np.asarray(m["samples"])), [20, 20, 20, 80, 80, 80])
    assert int(jnp.sum(jnp.isfinite(evaluation.fitness))) == 1
    winner = int(jnp.argmax(evaluation.fitness))
    assert float(m["survived"][winner]) == 2
    # The first step keeps the 3 lowest losses on its 20 samples; the last, the lowest on 60 more.
    ranks = pruning.magnitude_ranks(PARAMS, grid)
    index = jax.random.choice(jax.random.fold_in(jax.random.key(2), 0), 300, (20,), replace=False)
    first = [
        float(mlp_loss(pruning.prune(PARAMS, grid, ranks, grid.counts(g)), (X[index], Y[index])))
        for g in genotypes
    ]
    survivors = set(np.argsort(first, kind="stable")[:3].tolist())
    assert survivors == set(np.flatnonzero(np.asarray(m["survived"]) >= 1).tolist())
    assert float(-evaluation.fitness[winner]) == pytest.approx(float(m["loss"][winner]))


def test_selection_errors():
    grid = pruning.level_grid(PARAMS, 0.6, levels=7)
    with pytest.raises(ValueError, match="300"):
        ne.tasks.compression(mlp_loss, PARAMS, (X, Y), grid, selection=((400, 2),))
    with pytest.raises(ValueError, match="non-increasing"):
        ne.tasks.compression(mlp_loss, PARAMS, (X, Y), grid, selection=((10, 2), (20, 3)))
    with pytest.raises(ValueError, match="common leading"):
        ne.tasks.compression(mlp_loss, PARAMS, (X, Y[:10]), grid)
    task = ne.tasks.compression(mlp_loss, PARAMS, (X, Y), grid, selection=((10, 8),))
    with pytest.raises(ValueError, match="do not chunk"):
        task.evaluate(jax.random.key(0), (), jnp.zeros((4, 3), jnp.int32))


def test_search_runs_deterministic_resumes_and_vmaps(tmp_path):
    grid, strategy, task = run_search(None)
    x0 = jnp.asarray(pruning.uniform_levels(grid), jnp.int32)
    full, history = ne.evolve(jax.random.key(0), strategy, task, x0, 4)
    assert int(full.best_solution.sum()) == grid.budget  # the budget holds through the search
    assert history["samples"].tolist() == [6 * 20 + 3 * 60] * 4  # the search's evaluations
    # Stopped after 2 generations, resumed in another compiled program: the same run bit for bit.
    ne.evolve(jax.random.key(0), strategy, task, x0, 2, checkpoint_dir=str(tmp_path))
    resumed, resumed_history = ne.evolve(
        jax.random.key(0), strategy, task, x0, 4, checkpoint_dir=str(tmp_path)
    )
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(history["best"], resumed_history["best"])

    def search(key):
        state = strategy.init(key, x0)

        def step(state, k):
            genotypes, state = strategy.ask(k, state)
            evaluation, _ = task.evaluate(k, (), genotypes)
            return strategy.tell(k, state, genotypes, evaluation.fitness), evaluation.fitness

        return jax.lax.scan(step, state, jax.random.split(key, 3))

    keys = jax.random.split(jax.random.key(1), 3)
    states, fitness = jax.jit(jax.vmap(search))(keys)
    single, _ = jax.jit(search)(keys[1])
    np.testing.assert_array_equal(states.best_solution[1], single.best_solution)
    assert fitness.shape == (3, 3, 6)


def test_compress_end_to_end(tmp_path):
    result = ne.compress.evopress(
        jax.random.key(0),
        mlp_loss,
        PARAMS,
        (X[:200], Y[:200]),
        validation=(X[200:], Y[200:]),
        sparsity=0.5,
        generations=6,
        offspring=4,
        selection=((32, 2), (100, 1)),
        levels=7,
        error_samples=100,
        out=str(tmp_path),
    )
    assert int(result.counts.sum()) == result.grid.target == round(0.5 * 840)
    zeros = sum(int(jnp.sum(result.params["params"][f"layer_{i}"]["kernel"] == 0)) for i in range(3))
    assert zeros == result.grid.target
    assert set(result.losses) == {"dense", "uniform", "additive", "evolved"}
    assert result.losses["dense"] < min(result.losses["uniform"], result.losses["evolved"])
    assert result.evaluations["search_candidate_evaluations"] == 6 * (5 + 2)
    assert result.evaluations["search_samples"] == 6 * (5 * 32 + 2 * 100)
    profile = json.loads((tmp_path / "profile.json").read_text())
    assert [layer["evolved_pruned"] for layer in profile["layers"]] == result.counts.tolist()
    assert (tmp_path / "compressed_params.msgpack").stat().st_size > 0
    with pytest.raises(ValueError, match="no per-layer assignment"):
        ne.compress.evopress(
            jax.random.key(0), mlp_loss, PARAMS, (X, Y), sparsity=0.97, out=str(tmp_path / "x")
        )
    assert not (tmp_path / "x").exists()

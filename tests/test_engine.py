"""The run loop: chunked evaluation, history, callbacks and bit-for-bit resume."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne

TASK = ne.tasks.function(ne.tasks.rastrigin)
X0 = jnp.full((8,), 2.0)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("name", ["openai_es", "ga", "eggroll"])
def test_chunked_evaluation_matches_whole_population(name):
    strategy = ne.strategies.make(name, popsize=24)
    s1, h1 = ne.evolve(jax.random.key(0), strategy, TASK, X0, 6)
    s2, h2 = ne.evolve(jax.random.key(0), strategy, TASK, X0, 6, chunk_size=5)  # -> chunks of 4
    for k in h1:
        np.testing.assert_allclose(h1[k], h2[k], rtol=1e-6)
    np.testing.assert_allclose(s1.best_fitness, s2.best_fitness, rtol=1e-6)


def test_history_and_callbacks():
    seen = []
    state, history = ne.evolve(
        jax.random.key(0),
        ne.strategies.make("openai_es", popsize=16),
        TASK,
        X0,
        7,
        log_every=3,
        callbacks=[lambda g, s, m: seen.append((g, len(m["best"]), int(s.generation)))],
    )
    assert seen == [(3, 3, 3), (6, 3, 6), (7, 1, 7)]
    assert set(history) >= {"best", "generation_best", "mean", "value"}
    assert all(v.shape == (7,) for v in history.values())
    np.testing.assert_allclose(history["best"], np.maximum.accumulate(history["generation_best"]))
    assert int(state.generation) == 7


@pytest.mark.parametrize("name", ["openai_es", "ga", "eggroll"])
def test_resume_from_checkpoint_is_bit_for_bit(tmp_path, name):
    strategy = ne.strategies.make(name, popsize=16)
    full_state, full_history = ne.evolve(jax.random.key(5), strategy, TASK, X0, 9, log_every=2)
    ckpt = str(tmp_path / "ckpt")
    # "Interrupted" after 5 generations (checkpoints at 2, 4, 5) ...
    ne.evolve(jax.random.key(5), strategy, TASK, X0, 5, log_every=2, checkpoint_dir=ckpt)
    # ... and resumed with other block boundaries.
    state, history = ne.evolve(jax.random.key(5), strategy, TASK, X0, 9, log_every=3, checkpoint_dir=ckpt)
    assert_trees_equal(state, full_state)
    for k in full_history:
        np.testing.assert_array_equal(history[k], full_history[k])


def test_resume_refuses_another_run(tmp_path):
    strategy = ne.strategies.make("ga", popsize=8)
    ne.evolve(jax.random.key(0), strategy, TASK, X0, 2, checkpoint_dir=str(tmp_path))
    with pytest.raises(ValueError, match="different run|written by a run"):
        ne.evolve(jax.random.key(1), strategy, TASK, X0, 4, checkpoint_dir=str(tmp_path))


def test_bad_task_output_is_named():
    bad = ne.tasks.Task(
        init=lambda k: (),
        evaluate=lambda k, s, x: (ne.tasks.Evaluation(fitness=jnp.zeros(3)), s),
    )
    with pytest.raises(ValueError, match=r"task fitness has shape \(3,\).*\(8,\)"):
        ne.evolve(jax.random.key(0), ne.strategies.make("ga", popsize=8), bad, X0, 1)
    with pytest.raises(ValueError, match="generations"):
        ne.evolve(jax.random.key(0), ne.strategies.make("ga", popsize=8), TASK, X0, -1)

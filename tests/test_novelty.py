"""Novelty archive (kNN, overflow, jit/vmap), the hard maze, and novelty search end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne
from neuroevo import novelty as nov
from neuroevo.tasks import maze_module


def brute_novelty(queries, points, k, exclude_self=False):
    d = np.sqrt(((queries[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d[:, -queries.shape[0] :], np.inf)
    d = np.sort(d, axis=1)[:, :k]
    found = np.isfinite(d)
    return np.where(found, d, 0).sum(1) / np.maximum(found.sum(1), 1)


def filled(capacity, rows):
    return nov.add(nov.empty(capacity, rows.shape[1]), jnp.asarray(rows))


@pytest.mark.parametrize("chunks", [(None, None), (7, 5)])
def test_knn_novelty_matches_numpy(chunks):
    rng = np.random.default_rng(0)
    archive_rows = rng.normal(size=(37, 3)).astype(np.float32)
    pop = rng.normal(size=(23, 3)).astype(np.float32)
    archive = filled(50, archive_rows)  # 13 empty rows must be ignored
    qc, pc = chunks
    got = nov.novelty(pop, archive, pop, k=10, query_chunk=qc, point_chunk=pc)
    want = brute_novelty(pop, np.concatenate([archive_rows, pop]), 10, exclude_self=True)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # Archive only; and fewer neighbours than k: the mean over those there are.
    np.testing.assert_allclose(
        nov.novelty(pop, archive, k=10, query_chunk=qc, point_chunk=pc),
        brute_novelty(pop, archive_rows, 10),
        rtol=1e-5,
    )
    few = filled(50, archive_rows[:4])
    np.testing.assert_allclose(
        nov.novelty(pop, few, k=10), brute_novelty(pop, archive_rows[:4], 10), rtol=1e-5
    )
    assert float(nov.novelty(pop[:1], nov.empty(8, 3))[0]) == 0.0
    d = nov.knn_distances(pop, archive_rows, 4, query_chunk=qc, point_chunk=pc)
    ref = np.sort(np.sqrt(((pop[:, None] - archive_rows[None]) ** 2).sum(-1)), axis=1)[:, :4]
    np.testing.assert_allclose(d, ref, rtol=1e-5)


def test_overflow_keeps_the_newest_and_insert_policies():
    rows = np.arange(14, dtype=np.float32).reshape(7, 2)
    a = nov.add(nov.empty(4, 2), jnp.asarray(rows[:3]))
    a = nov.add(a, jnp.asarray(rows[3:]))  # 7 insertions into 4 slots: the newest 4 remain
    assert int(a.count) == 7 and int(a.size) == 4
    assert sorted(map(tuple, np.asarray(a.data).tolist())) == sorted(map(tuple, rows[3:].tolist()))
    big = nov.add(nov.empty(3, 2), jnp.asarray(rows))  # more in one call than fits: the last 3
    assert sorted(np.asarray(big.data)[:, 0].tolist()) == [8.0, 10.0, 12.0]
    skip = nov.add(nov.empty(3, 2), jnp.asarray([[1.0, jnp.nan], [2.0, 2.0]]))  # non-finite: never
    assert int(skip.count) == 1 and np.asarray(skip.data)[0].tolist() == [2.0, 2.0]
    # Policies: the most novel, or a random sample without repeats.
    scores = jnp.array([0.1, 5.0, 0.2, 3.0, 0.0, 0.3, 4.0])
    top = nov.insert(jax.random.key(0), nov.empty(5, 2), jnp.asarray(rows), scores, 3, "novelty")
    assert sorted(np.asarray(top.data)[:3, 0].tolist()) == [2.0, 6.0, 12.0]
    rand = nov.insert(jax.random.key(0), nov.empty(5, 2), jnp.asarray(rows), scores, 3, "random")
    assert int(rand.count) == 3 and len(set(np.asarray(rand.data)[:3, 0].tolist())) == 3
    with pytest.raises(ValueError, match="archive policy"):
        nov.insert(jax.random.key(0), top, jnp.asarray(rows), scores, 1, "best")


def test_archive_is_jit_and_vmap_able():
    rng = np.random.default_rng(1)
    batch = jnp.asarray(rng.normal(size=(3, 6, 2)).astype(np.float32))

    @jax.jit
    @jax.vmap
    def step(rows):
        archive = nov.add(nov.empty(8, 2), rows)
        return nov.novelty(rows, archive, rows, k=3, point_chunk=4), archive.count

    scores, counts = step(batch)
    assert scores.shape == (3, 6) and counts.tolist() == [6, 6, 6]
    for i in range(3):
        rows = np.asarray(batch[i])
        want = brute_novelty(rows, np.concatenate([rows, rows]), 3, exclude_self=True)
        np.testing.assert_allclose(scores[i], want, rtol=1e-5)


def test_maze_physics():
    walls = jnp.asarray(maze_module.HARD_MAZE_WALLS)
    # Full speed straight ahead (heading 0, +x) from the start: stopped by the diagonal wall
    # near the bottom, never through it; the distance to every wall stays above the radius.
    forward = lambda params, obs: jnp.array([0.0, 10.0])  # noqa: E731
    end, path = maze_module.simulate(forward, None, steps=200, trajectory=True)
    # The wall (77, 200)-(108, 164) crosses y = 184 at x = 90.8: the robot stops before it.
    assert 60.0 < float(end[0]) < 90.8 - 8.0 and float(end[1]) == pytest.approx(184.0)
    assert float(jnp.min(jax.vmap(lambda p: maze_module.wall_distance(p, walls))(path))) >= 8.0
    # Heading up the screen (-y) from the start: the end (33, 121) of the wall from the left
    # side stops the robot (radius 8) at y = 121 + sqrt(8**2 - 3**2) = 128.4, x unchanged.
    end_up = maze_module.simulate(forward, None, steps=60, heading=-jnp.pi / 2)
    assert float(end_up[0]) == pytest.approx(36.0, abs=1e-3) and 128.4 < float(end_up[1]) < 131.5
    # Sensors: rangefinders as a fraction of range, a one-hot radar.
    obs = maze_module.sense(
        jnp.array(maze_module.START), jnp.float32(0.0), walls, jnp.array(maze_module.GOAL), 100.0
    )
    assert obs.shape == (10,) and float(obs[:6].max()) <= 1.0 and float(obs[6:].sum()) == 1.0
    assert float(obs[5]) == pytest.approx((36.0 - 5.0) / 100.0)  # 180 degrees: the left wall
    assert float(obs[6 + 1]) == 1.0 or float(obs[6 + 3]) == 1.0  # the goal is up: a side slice
    task = ne.tasks.maze(steps=50)
    x0 = task.init_solution(jax.random.key(0))
    pop = jax.tree_util.tree_map(lambda x: jnp.stack([x, x * 2, x * 0]), x0)
    evaluation, _ = jax.jit(task.evaluate)(jax.random.key(0), (), pop)
    assert evaluation.fitness.shape == (3,) and evaluation.descriptor.shape == (3, 2)
    np.testing.assert_allclose(
        -evaluation.fitness,
        np.linalg.norm(np.asarray(evaluation.descriptor) - maze_module.GOAL, axis=1),
        rtol=1e-5,
    )


def test_novelty_search_end_to_end_on_the_maze():
    task = ne.tasks.maze(steps=100)
    x0 = task.init_solution(jax.random.key(0))
    for name in ("ns_ga", "nsra_es"):
        strategy = ne.strategies.make(name, popsize=16, archive_capacity=64, sigma=0.3)
        state, history = ne.evolve(jax.random.key(1), strategy, task, x0, 4, log_every=4)
        assert int(state.generation) == 4 and float(state.archive.size) > 0
        assert history["archive_size"].shape == (4,) and np.isfinite(history["best"]).all()
        assert float(state.best_fitness) == pytest.approx(float(history["generation_best"].max()))


def test_novelty_search_on_gymnax_with_final_obs():
    task = ne.tasks.gymnax("CartPole-v1", hidden=(8,), max_steps=50, descriptor="final_obs")
    x0 = task.init_solution(jax.random.key(0))
    strategy = ne.strategies.make("nsr_es", popsize=8, descriptor_dim=4, archive_capacity=32)
    state, history = ne.evolve(jax.random.key(2), strategy, task, x0, 3, log_every=3)
    assert int(state.generation) == 3 and int(state.archive.size) == 3
    assert np.isfinite(history["best"]).all()
    wrong = ne.strategies.make("ns_es", popsize=8)  # descriptor_dim=2, but CartPole gives 4
    with pytest.raises(ValueError, match=r"\(8, 4\).*\(8, 2\)"):
        ne.evolve(jax.random.key(2), wrong, task, x0, 1)


@pytest.mark.parametrize("shaping", [None, ne.shaping.nes_utilities])
def test_ns_es_steps_along_the_shaped_novelty(shaping):
    """The agent's first (Adam) step has the sign of sum_i shaping(novelty)_i * eps_i (centre pair out)."""
    extra = {} if shaping is None else {"shaping": shaping}
    strategy = ne.strategies.make("ns_es", popsize=8, meta_population=2, include_population=True, **extra)
    state = strategy.init(jax.random.key(0), jnp.zeros(5))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    members = ne.population(strategy, state, genotypes) - state.mean
    descriptors = jax.random.normal(jax.random.key(2), (8, 2))
    novelty = nov.novelty(descriptors, state.archive, descriptors, k=10)
    weights = (shaping or ne.shaping.centered_ranks)(novelty).at[0].set(0.0).at[4].set(0.0)
    expected = np.sign(np.asarray(weights @ members))
    m = int(state.current)
    after = strategy.tell(jax.random.key(3), state, genotypes, jnp.zeros(8), descriptors)
    np.testing.assert_array_equal(np.sign(np.asarray(after.agents.mean[m] - state.agents.mean[m])), expected)

"""MuJoCo Playground (MJX) tasks: returns match a plain rollout, statistics, clear errors.

MJX programs take tens of seconds to compile on CPU, so the whole file compiles
one evaluation (2 members, 2 episodes, 5 steps) and one reference step function.
"""

import importlib
import logging
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracles import require

import neuroevo as ne

require("mujoco_playground")

# By path: neuroevo.tasks may export the factory ``playground`` under the module's name.
pg = importlib.import_module("neuroevo.tasks.playground")

ENV, MEMBERS, EPISODES, STEPS = "CartpoleSwingup", 2, 2, 5


@pytest.fixture(scope="module")
def run():
    """One compiled evaluation, applied twice (the second from the first's statistics)."""
    task = pg.playground(ENV, hidden=(8,), episodes=EPISODES, max_steps=STEPS, normalize_obs=True)
    params = jax.vmap(task.init_solution)(jax.random.split(jax.random.key(0), MEMBERS))
    key = jax.random.key(7)
    stats0 = task.init(key)
    evaluate = jax.jit(task.evaluate)
    evaluation, stats1 = evaluate(key, stats0, params)
    _, stats2 = evaluate(jax.random.key(8), stats1, params)
    return task, params, key, stats0, evaluation, stats1, stats2


def reference_rollouts(task, params, key, stats):
    """Each member's episodes played one step at a time in Python: (mean returns, observations seen)."""
    env, _ = pg.make_env(ENV)
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    apply = jax.jit(task.info["apply"])
    returns, seen = [], []
    for i in range(MEMBERS):
        p = jax.tree_util.tree_map(lambda x, i=i: x[i], params)
        totals = []
        for reset_key in jax.random.split(key, EPISODES):
            state, total = reset(reset_key), 0.0
            for _ in range(STEPS):
                obs = pg.flat_obs(state.obs)
                seen.append(np.asarray(obs))
                state = step(state, apply(p, stats.normalize(obs)))
                total += float(state.reward)
                if float(state.done) > 0:
                    break
            totals.append(total)
        returns.append(np.mean(totals))
    return np.array(returns), np.stack(seen)


def test_fitness_matches_a_python_rollout_and_obs_statistics_count_every_step(run):
    task, params, key, stats0, evaluation, stats1, stats2 = run
    returns, seen = reference_rollouts(task, params, key, stats0)
    np.testing.assert_allclose(np.asarray(evaluation.fitness), returns, rtol=1e-4, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(evaluation.metrics["return"]), np.asarray(evaluation.fitness))
    # Statistics: one observation per member, episode and step, the ones the policy acted on.
    assert float(stats1.count) == MEMBERS * EPISODES * STEPS == len(seen)
    np.testing.assert_allclose(np.asarray(stats1.mean), seen.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(stats1.m2) / len(seen), seen.var(axis=0), rtol=1e-3, atol=1e-5)
    assert float(stats2.count) == 2 * MEMBERS * EPISODES * STEPS


def test_episode_metrics_and_info(run):
    task, _, _, _, evaluation, _, _ = run
    assert evaluation.fitness.shape == (MEMBERS,) and evaluation.descriptor is None
    np.testing.assert_array_equal(np.asarray(evaluation.metrics["episode_length"]), STEPS)
    np.testing.assert_array_equal(np.asarray(evaluation.metrics["env_steps"]), EPISODES * STEPS)
    info = task.info
    assert info["env_id"] == ENV and info["max_steps"] == STEPS and info["episodes"] == EPISODES
    assert info["obs_shape"] == (5,) and "shape=(1,)" in info["action_space"] and info["normalize_obs"]


def test_bad_arguments_are_rejected_before_compiling(caplog):
    class TwoActions(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(2)(obs)

    with jax.log_compiles(True), caplog.at_level(logging.DEBUG):
        with pytest.raises(
            ValueError, match="unknown MuJoCo Playground env 'CartpoleSwingUp'.*CartpoleSwingup"
        ):
            pg.playground("CartpoleSwingUp")
        with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(1,\)"):
            pg.playground(ENV, policy=TwoActions())
        with pytest.raises(ValueError, match="unknown config keys \\['episode_len'\\]"):
            pg.playground(ENV, episode_len=10)
        with pytest.raises(ValueError, match="episodes"):
            pg.playground(ENV, episodes=0)
    # Loading the model converts a few arrays eagerly (one-op programs); nothing else compiles.
    compiled = [r.getMessage() for r in caplog.records if "XLA compilation" in r.getMessage()]
    task_programs = ("evaluate", "reset", "step", "init", "apply", "<lambda>")
    assert not [m for m in compiled if any(name in m for name in task_programs)], compiled
    assert "CheetahRun" in pg.env_names()


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_playground", None)
    with pytest.raises(ImportError, match=r"pip install 'neuroevo\[mujoco\]'"):
        pg.env_names()


def test_default_policy_spans_the_action_bounds():
    policy = pg.default_policy(3, hidden=(4,))

    @jax.jit
    def saturated_action(key):
        params = policy.init(key, jnp.zeros(5))
        params = jax.tree_util.tree_map(lambda x: 100.0 * jnp.ones_like(x), params)
        return policy.apply(params, jnp.ones(5))

    action = saturated_action(jax.random.key(0))
    assert action.shape == (3,) and np.allclose(np.asarray(action), 1.0)


def test_the_training_tool_builds_playground_tasks():
    """``neuroevo train --env playground:NAME`` goes through the same task factory."""
    import neuroevo as ne

    task = ne.rl.make_task(ne.rl.resolve(None, env="playground:CartpoleSwingup", max_steps=5, hidden=(4,)))
    assert task.info["env_id"].endswith("CartpoleSwingup") and task.info["max_steps"] == 5


def test_eggroll_evaluates_through_its_fast_path():
    """The task evaluates a Members handle: eggroll's low-rank members score as their decoded selves."""
    task = pg.playground(ENV, hidden=(8,), episodes=1, max_steps=STEPS)
    assert task.info["members"]
    strategy = ne.strategies.make("eggroll", popsize=MEMBERS, sigma=0.5)
    state = strategy.init(jax.random.key(0), task.init_solution(jax.random.key(0)))
    genotypes, state = strategy.ask(jax.random.key(1), state)
    key, stats = jax.random.key(7), task.init(None)

    @jax.jit
    def both(state, genotypes):
        fast = task.evaluate(key, stats, ne.strategy.members(strategy, state, genotypes))[0]
        slow = task.evaluate(key, stats, ne.population(strategy, state, genotypes))[0]
        return fast.fitness, slow.fitness

    fast, slow = both(state, genotypes)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)

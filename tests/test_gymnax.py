"""gymnax tasks: episode returns, done-masking, normalisation and clear errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import neuroevo as ne


def test_returns_match_a_python_rollout():
    """Fitness equals the return of a plain step-by-step rollout with the same keys."""
    task = ne.tasks.gymnax("CartPole-v1", hidden=(4,), max_steps=60, descriptor="final_obs")
    params = jax.vmap(task.init_solution)(jax.random.split(jax.random.key(0), 3))
    key = jax.random.key(7)
    evaluation, _ = jax.jit(task.evaluate)(key, task.init(key), params)
    env, env_params = ne.tasks.gymnax_module.make_env("CartPole-v1", max_steps=60)
    apply = task.info["apply"]
    k_reset, k_step = jax.random.split(key)
    for i in range(3):
        p = jax.tree_util.tree_map(lambda x, i=i: x[i], params)
        obs, state = env.reset(jax.random.split(k_reset, 1)[0], env_params)
        total, t = 0.0, 0
        while t < 60:
            a = apply(p, obs)
            k = jax.random.split(jax.random.fold_in(k_step, t), 1)[0]
            obs, state, r, term, _ = env.step_env(k, state, a, env_params)
            total += float(r)
            t += 1
            if bool(term) or bool(env.is_truncated(state, env_params)):
                break
        assert float(evaluation.fitness[i]) == pytest.approx(total)
        assert float(evaluation.metrics["env_steps"][i]) == t
        np.testing.assert_allclose(evaluation.descriptor[i], obs, rtol=1e-6)
    assert evaluation.fitness.shape == (3,)


def test_several_episodes_and_obs_normalisation_statistics():
    task = ne.tasks.gymnax("Pendulum-v1", hidden=(8,), episodes=2, max_steps=20, normalize_obs=True)
    params = jax.vmap(task.init_solution)(jax.random.split(jax.random.key(0), 4))
    stats = task.init(jax.random.key(0))
    evaluation, stats = jax.jit(task.evaluate)(jax.random.key(1), stats, params)
    assert float(stats.count) == 4 * 2 * 20
    assert np.all(np.asarray(evaluation.metrics["episode_length"]) == 20)
    assert np.all(np.abs(np.asarray(stats.mean)) < 1.5) and np.all(np.asarray(stats.m2) > 0)
    _, stats2 = jax.jit(task.evaluate)(jax.random.key(2), stats, params)
    assert float(stats2.count) == 2 * 4 * 2 * 20


def test_minatar_bool_observations_are_cast():
    task = ne.tasks.gymnax("Breakout-MinAtar", hidden=(8,), max_steps=10, normalize_obs=True)
    params = jax.vmap(task.init_solution)(jax.random.split(jax.random.key(0), 2))
    evaluation, stats = jax.jit(task.evaluate)(jax.random.key(1), task.init(jax.random.key(0)), params)
    assert stats.mean.dtype == jnp.float32 and evaluation.fitness.shape == (2,)


def test_unknown_env_and_mismatched_policy_are_rejected_before_compiling():
    with pytest.raises(ValueError, match="unknown gymnax env id 'CartPole-v9'.*CartPole-v1"):
        ne.tasks.gymnax("CartPole-v9")

    class Continuous(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(3)(obs)

    with pytest.raises(ValueError, match="Discrete\\(2\\)"):
        ne.tasks.gymnax("CartPole-v1", policy=Continuous())
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(1,\)"):
        ne.tasks.gymnax("Pendulum-v1", policy=Continuous())
    with pytest.raises(ValueError, match="episodes"):
        ne.tasks.gymnax("CartPole-v1", episodes=0)


def test_openai_es_learns_cartpole():
    """The one end-to-end learning test of the unit suite (about 10 s)."""
    task = ne.tasks.gymnax("CartPole-v1", hidden=(16,))
    x0 = task.init_solution(jax.random.key(0))
    strategy = ne.strategies.make("openai_es", popsize=64)
    state, history = ne.evolve(jax.random.key(1), strategy, task, x0, 25, log_every=25)
    assert history["best"][-1] == 500.0
    assert history["mean"][-1] > history["mean"][0] + 100


def test_descriptors_mean_obs_and_user_functions():
    env, env_params = ne.tasks.gymnax_module.make_env("Pendulum-v1", max_steps=15)
    key = jax.random.key(3)
    # A user function of the trajectory: the final angle state and the episode length.
    fn = lambda tr: jnp.stack([tr.final_state.theta, tr.length, tr.ret])  # noqa: E731
    tasks = {
        d: ne.tasks.gymnax("Pendulum-v1", hidden=(4,), max_steps=15, descriptor=d) for d in ("mean_obs", fn)
    }
    params = jax.vmap(tasks["mean_obs"].init_solution)(jax.random.split(jax.random.key(0), 2))
    mean_obs = jax.jit(tasks["mean_obs"].evaluate)(key, (), params)[0]
    user = jax.jit(tasks[fn].evaluate)(key, tasks[fn].init(key), params)[0]
    assert mean_obs.descriptor.shape == (2, 3) and user.descriptor.shape == (2, 3)
    apply = tasks["mean_obs"].info["apply"]
    k_reset, k_step = jax.random.split(key)
    p = jax.tree_util.tree_map(lambda x: x[0], params)
    obs, state = env.reset(jax.random.split(k_reset, 1)[0], env_params)
    seen = []
    for t in range(15):
        seen.append(obs)
        k = jax.random.split(jax.random.fold_in(k_step, t), 1)[0]
        obs, state, _, _, _ = env.step_env(k, state, apply(p, obs), env_params)
    np.testing.assert_allclose(mean_obs.descriptor[0], np.mean(seen, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(user.descriptor[0, :2], [state.theta, 15.0], rtol=1e-5)
    np.testing.assert_allclose(user.descriptor[:, 2], user.fitness, rtol=1e-6)
    assert tasks[fn].info["descriptor_dim"] == 3
    with pytest.raises(ValueError, match="unknown descriptor 'final'.*'final_obs'"):
        ne.tasks.gymnax("Pendulum-v1", descriptor="final")
    with pytest.raises(ValueError, match=r"must return a vector f32\[k\], got shape \(\)"):
        ne.tasks.gymnax("Pendulum-v1", descriptor=lambda tr: tr.ret)


# MNISTBandit downloads MNIST on first use; this machine has no internet.
OFFLINE = {"MNISTBandit-bsuite"}


def test_every_gymnax_environment_traces():
    """Every registered id builds a default policy and its evaluation traces (shapes, dtypes)."""
    for env_id in ne.tasks.env_ids():
        if env_id in OFFLINE:
            continue
        task = ne.tasks.gymnax(env_id, hidden=(4,), max_steps=4, descriptor="final_obs")
        params = jax.eval_shape(jax.vmap(task.init_solution), jax.random.split(jax.random.key(0), 2))
        evaluation, _ = jax.eval_shape(task.evaluate, jax.random.key(1), task.init(jax.random.key(0)), params)
        assert evaluation.fitness.shape == (2,), env_id
        assert evaluation.descriptor.shape == (2, int(np.prod(task.info["obs_shape"]))), env_id


@pytest.mark.parametrize("env_id", ["Catch-bsuite", "BernoulliBandit-misc", "PointRobot-misc", "Pong-misc"])
def test_one_environment_of_each_family_runs(env_id):
    task = ne.tasks.gymnax(env_id, hidden=(4,), max_steps=4)
    params = jax.vmap(task.init_solution)(jax.random.split(jax.random.key(0), 2))
    evaluation, _ = jax.jit(task.evaluate)(jax.random.key(1), task.init(jax.random.key(0)), params)
    assert np.all(np.isfinite(evaluation.fitness))
    assert np.all((evaluation.metrics["env_steps"] >= 1) & (evaluation.metrics["env_steps"] <= 4))

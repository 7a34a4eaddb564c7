"""Yardsticks for a trained policy: gymnax's reference returns and a random policy's return.

``REFERENCE`` is the table of gymnax's README (returns of gymnax-blines' PPO/ES
agents). :func:`random_return` plays uniformly random actions in the same
environment (the same episode cap as the run), so ``neuroevo train`` can end
with ``final evaluation return: X (reference R, random r)`` and a user sees at
once whether the run learnt anything: the normalised score is
``(X - random) / (reference - random)``.
"""

from __future__ import annotations

from typing import Any

# gymnax README, "Implemented Accelerated Environments" (gymnax 0.0.x-1.0).
REFERENCE: dict[str, float] = {
    "CartPole-v1": 500.0,
    "MountainCar-v0": -118.0,
    "MountainCarContinuous-v0": 92.0,
    "Asterix-MinAtar": 15.0,
    "Breakout-MinAtar": 28.0,
    "Freeway-MinAtar": 58.0,
    "SpaceInvaders-MinAtar": 131.0,
    "Catch-bsuite": 1.0,
    "DeepSea-bsuite": 0.0,
    "MemoryChain-bsuite": 0.1,
    "UmbrellaChain-bsuite": 1.0,
    "DiscountingChain-bsuite": 1.1,
    "FourRooms-misc": 1.0,
    "MetaMaze-misc": 32.0,
    "PointRobot-misc": 10.0,
    "BernoulliBandit-misc": 90.0,
    "GaussianBandit-misc": 0.0,
}


def reference_return(env_id: str) -> float | None:
    """gymnax's reference return for ``env_id``, or None where its README lists none."""
    return REFERENCE.get(env_id)


def random_return(env_id: str, episodes: int, key: Any, max_steps: int | None = None) -> float:
    """The mean return of uniformly random actions over ``episodes`` episodes (one compiled loop)."""
    import jax
    import jax.numpy as jnp

    from neuroevo.tasks.gymnax import make_env

    env, params = make_env(env_id, max_steps)
    space = env.action_space(params)
    horizon = int(max_steps or params.max_steps_in_episode)

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = env.reset(k_reset, params)

        def cond(c):
            t, _, _, alive = c
            return (t < horizon) & alive

        def body(c):
            t, state, total, alive = c
            k_act, k_step = jax.random.split(jax.random.fold_in(k_run, t))
            action = space.sample(k_act)
            _, new_state, reward, terminated, _ = env.step_env(k_step, state, action, params)
            new_state = jax.tree_util.tree_map(lambda a, b: jnp.asarray(a, b.dtype), new_state, state)
            done = jnp.logical_or(terminated, env.is_truncated(new_state, params))
            return t + 1, new_state, total + jnp.asarray(reward, jnp.float32), ~done.astype(bool)

        carry = (jnp.zeros((), jnp.int32), state, jnp.zeros((), jnp.float32), jnp.ones((), bool))
        return jax.lax.while_loop(cond, body, carry)[2]

    returns = jax.jit(jax.vmap(episode))(jax.random.split(key, episodes))
    return float(jnp.mean(returns))


def yardsticks(env_id: str, episodes: int, key: Any, max_steps: int | None = None) -> dict[str, float]:
    """``{"reference_return": R, "random_return": r}`` for a gymnax environment (R where known)."""
    out = {"random_return": random_return(env_id, episodes, key, max_steps)}
    reference = reference_return(env_id)
    if reference is not None:
        out["reference_return"] = reference
    return out

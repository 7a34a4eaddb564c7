"""RL tasks on gymnax environments: whole episodes inside one compiled loop.

Each member plays ``episodes`` episodes. All members of a generation start from
the same reset keys (common random numbers), which makes rankings less noisy and
the result independent of how the population is chunked. The rollout is a
``lax.while_loop`` that stops as soon as every episode of the batch has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from neuroevo import nn as ne_nn
from neuroevo.strategy import as_members
from neuroevo.tasks.base import Evaluation, Task

PyTree = Any


class ObsStats(NamedTuple):
    """Running observation statistics (Chan et al.'s parallel update)."""

    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @classmethod
    def empty(cls, obs_shape: tuple[int, ...]) -> ObsStats:
        zeros = jnp.zeros(obs_shape, jnp.float32)
        return cls(jnp.zeros((), jnp.float32), zeros, zeros)

    def normalize(self, obs: jax.Array, clip: float = 5.0) -> jax.Array:
        var = jnp.where(self.count > 1, self.m2 / jnp.maximum(self.count, 1.0), 1.0)
        return jnp.clip((obs - self.mean) / jnp.sqrt(var + 1e-8), -clip, clip)

    def merge(self, count: jax.Array, total: jax.Array, total_sq: jax.Array) -> ObsStats:
        """Fold in a batch given by its count, sum and sum of squares."""
        batch_mean = total / jnp.maximum(count, 1.0)
        batch_m2 = total_sq - count * batch_mean**2
        n = self.count + count
        delta = batch_mean - self.mean
        mean = self.mean + delta * count / jnp.maximum(n, 1.0)
        m2 = self.m2 + jnp.maximum(batch_m2, 0.0) + delta**2 * self.count * count / jnp.maximum(n, 1.0)
        return ObsStats(n, mean, m2)


class Trajectory(NamedTuple):
    """What a descriptor function sees of one episode (no leading axes)."""

    final_obs: jax.Array  # the observation the episode ended on
    mean_obs: jax.Array  # the mean observation over the episode's steps
    final_state: Any  # the environment state the episode ended in
    ret: jax.Array  # the episode's return
    length: jax.Array  # the number of steps it lasted


DESCRIPTORS = ("final_obs", "mean_obs")


def _descriptor_fn(descriptor) -> Callable[[Trajectory], jax.Array]:
    if descriptor == "final_obs":
        return lambda tr: jnp.ravel(tr.final_obs)
    if descriptor == "mean_obs":
        return lambda tr: jnp.ravel(tr.mean_obs)
    return descriptor


def env_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)


def make_env(env_id: str, max_steps: int | None = None, env_params: Any = None, **env_kwargs):
    """gymnax.make with a clear error for unknown ids, and an optional step limit."""
    import gymnax

    if env_id not in gymnax.registered_envs:
        raise ValueError(f"unknown gymnax env id {env_id!r}; valid ids: {sorted(gymnax.registered_envs)}")
    try:
        env, default_params = gymnax.make(env_id, **env_kwargs)
    except OSError as e:  # e.g. MNISTBandit-bsuite downloads MNIST on first use
        raise RuntimeError(f"gymnax could not build {env_id!r}: {e}") from e
    params = env_params if env_params is not None else default_params
    if max_steps is not None:
        if int(max_steps) < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        # Keep the field's type: some environments compute with it (BernoulliBandit's is a float).
        params = params.replace(max_steps_in_episode=type(params.max_steps_in_episode)(int(max_steps)))
    return env, params


def check_action(env_id: str, space: Any, action: jax.ShapeDtypeStruct) -> None:
    kind = type(space).__name__
    if kind == "Discrete":
        if action.shape != () or not jnp.issubdtype(action.dtype, jnp.integer):
            raise ValueError(
                f"the policy returns {action.dtype}{list(action.shape)}, but {env_id} has a "
                f"Discrete({space.n}) action space: return a scalar integer action "
                f"(e.g. ne.nn.policy_for(space) adds an argmax head)"
            )
    elif kind == "Box":
        if tuple(action.shape) != tuple(space.shape):
            raise ValueError(
                f"the policy returns an action of shape {tuple(action.shape)}, but {env_id} has a "
                f"Box action space of shape {tuple(space.shape)}"
            )


def gymnax(
    env_id: str,
    policy: nn.Module | Callable[[PyTree, jax.Array], jax.Array] | None = None,
    *,
    hidden: tuple[int, ...] = (32, 32),
    episodes: int = 1,
    max_steps: int | None = None,
    normalize_obs: bool = False,
    descriptor: str | Callable[[Trajectory], jax.Array] | None = None,
    env_params: Any = None,
    **env_kwargs,
) -> Task:
    """A task that plays ``episodes`` episodes of ``env_id`` per member.

    Args:
      env_id: any id in ``gymnax.registered_envs``.
      policy: a flax module (its params are the solution) or an
        ``apply(solution, obs) -> action`` function; default
        ``ne.nn.policy_for(action_space, hidden)``.
      episodes: episodes per member; fitness is their mean return.
      max_steps: episode length cap (default: the environment's).
      normalize_obs: normalise observations with running statistics kept in the
        task state (updated from every step the population took).
      descriptor: behaviour descriptors for novelty search, averaged over the
        member's episodes: ``"final_obs"`` (the observation each episode ended
        on, flattened), ``"mean_obs"`` (the mean observation along the episode),
        or a function ``fn(Trajectory) -> f32[k]`` of one episode's summary.
    Metrics (per member): ``return``, ``episode_length``, ``env_steps``.
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if not (descriptor is None or callable(descriptor) or descriptor in DESCRIPTORS):
        raise ValueError(
            f"unknown descriptor {descriptor!r}; valid: None, {', '.join(map(repr, DESCRIPTORS))} "
            "or a function of a Trajectory"
        )
    env, params = make_env(env_id, max_steps, env_params, **env_kwargs)
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    obs_shape = tuple(obs_space.shape)
    horizon = int(params.max_steps_in_episode)
    if policy is None:
        policy = ne_nn.policy_for(act_space, hidden)
    apply, init_solution, action = ne_nn.policy_functions(policy, obs_shape)
    if action is not None:
        check_action(env_id, act_space, action)

    def init(key):
        del key
        return ObsStats.empty(obs_shape)

    describe = None if descriptor is None else _descriptor_fn(descriptor)
    track = describe is not None  # static: keep each episode's final obs/state and obs sums
    descriptor_dim = None
    if track:
        obs_s = jax.ShapeDtypeStruct(obs_shape, jnp.float32)
        scalar = jax.ShapeDtypeStruct((), jnp.float32)
        _, state_s = jax.eval_shape(env.reset, jax.random.key(0), params)
        out = jax.eval_shape(describe, Trajectory(obs_s, obs_s, state_s, scalar, scalar))
        if len(out.shape) != 1:
            raise ValueError(f"a descriptor function must return a vector f32[k], got shape {out.shape}")
        descriptor_dim = int(out.shape[0])

    def evaluate(key, stats: ObsStats, solutions):
        members = as_members(solutions)
        n = members.size
        k_reset, k_step = jax.random.split(key)
        reset_keys = jax.random.split(k_reset, episodes)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
        # (episodes, ...) -> (n, episodes, ...): every member sees the same starts.
        bcast = lambda x: jnp.broadcast_to(x, (n,) + x.shape)  # noqa: E731
        obs, env_state = jax.tree_util.tree_map(bcast, (obs, env_state))
        obs = jnp.asarray(obs, jnp.float32)

        def act(solution, obs_e):
            if normalize_obs:
                obs_e = stats.normalize(obs_e)
            return apply(solution, obs_e)

        def step_one(key, env_state, action):
            # step_env, not step: finished episodes are masked, never reset.
            obs, new_state, reward, terminated, _ = env.step_env(key, env_state, action, params)
            # Some environments change a state leaf's dtype on step (e.g. BernoulliBandit):
            # keep the loop carry's types fixed.
            new_state = jax.tree_util.tree_map(lambda a, b: jnp.asarray(a, b.dtype), new_state, env_state)
            done = jnp.logical_or(terminated, env.is_truncated(new_state, params))
            return jnp.asarray(obs, jnp.float32), new_state, reward, done

        step_all = jax.vmap(jax.vmap(step_one, in_axes=(0, 0, 0)), in_axes=(None, 0, 0))
        policy_all = lambda obs: members.apply(jax.vmap(act, in_axes=(None, 0)), obs)  # noqa: E731

        zeros = jnp.zeros((n, episodes), jnp.float32)
        obs_zero = jnp.zeros(obs_shape, jnp.float32)
        # The trajectory summary for descriptors: final obs, final state, sum of obs.
        summary = (obs, env_state, jnp.zeros_like(obs)) if track else ()
        carry = (jnp.zeros((), jnp.int32), obs, env_state, zeros, zeros, jnp.ones((n, episodes), bool))
        carry = carry + ((obs_zero, obs_zero), summary)

        def cond(c):
            t, alive = c[0], c[5]
            return (t < horizon) & jnp.any(alive)

        def body(c):
            t, obs, env_state, ret, length, alive, (s1, s2), summary = c
            action = policy_all(obs)
            keys = jax.random.split(jax.random.fold_in(k_step, t), episodes)
            obs_next, env_state, reward, done = step_all(keys, env_state, action)
            a = alive.astype(jnp.float32)
            ret = ret + a * reward.astype(jnp.float32)
            length = length + a
            w = a.reshape(a.shape + (1,) * len(obs_shape))
            if normalize_obs:
                s1 = s1 + jnp.sum(w * obs, axis=(0, 1))
                s2 = s2 + jnp.sum(w * obs * obs, axis=(0, 1))
            if track:
                last_obs, last_state, obs_sum = summary

                def keep(new, old):
                    mask = alive.reshape(alive.shape + (1,) * (new.ndim - 2))
                    return jnp.where(mask, new, old)

                summary = (
                    keep(obs_next, last_obs),
                    jax.tree_util.tree_map(keep, env_state, last_state),
                    obs_sum + w * obs,
                )
            alive = alive & ~done.astype(bool)
            return (t + 1, obs_next, env_state, ret, length, alive, (s1, s2), summary)

        _, _, _, ret, length, _, (s1, s2), summary = jax.lax.while_loop(cond, body, carry)
        if normalize_obs:
            stats = stats.merge(jnp.sum(length), s1, s2)
        fitness = jnp.mean(ret, axis=1)
        descriptors = None
        if track:
            last_obs, last_state, obs_sum = summary
            steps = jnp.maximum(length, 1.0).reshape(length.shape + (1,) * len(obs_shape))
            trajectory = Trajectory(last_obs, obs_sum / steps, last_state, ret, length)
            descriptors = jnp.mean(jax.vmap(jax.vmap(describe))(trajectory), axis=1).astype(jnp.float32)
        metrics = {
            "return": fitness,
            "episode_length": jnp.mean(length, axis=1),
            "env_steps": jnp.sum(length, axis=1),
        }
        return Evaluation(fitness=fitness, descriptor=descriptors, metrics=metrics), stats

    info = {
        "env_id": env_id,
        "obs_shape": obs_shape,
        "action_space": repr(act_space),
        "episodes": episodes,
        "max_steps": horizon,
        "apply": apply,
        "normalize_obs": normalize_obs,
        "descriptor_dim": descriptor_dim,
        "total_metrics": ("env_steps",),  # summed over the population, not averaged
        "members": True,  # evaluates through Members.apply: eggroll's fast path
    }
    return Task(init=init, evaluate=evaluate, init_solution=init_solution, info=info)

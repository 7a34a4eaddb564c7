"""RL tasks on MuJoCo Playground's DM Control Suite (MJX): whole episodes in one compiled loop.

Needs the optional extra: ``pip install 'neuroevo[mujoco]'``. The package is
imported only when a task is made, so neuroevo imports without it.

Same contract as :func:`neuroevo.tasks.gymnax`: each member plays ``episodes``
episodes, every member of a generation starts from the same reset keys (common
random numbers), finished episodes are masked (never auto-reset), and the
``lax.while_loop`` stops once every episode of the batch has ended.

Playground environments do not count time themselves (in Playground's own
training code a Brax ``EpisodeWrapper`` ends the episode after the config's
``episode_length`` and repeats each action ``action_repeat`` times): here the
task does both. One policy step is ``action_repeat`` environment steps with the
same action, whose rewards are summed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from neuroevo import nn as ne_nn
from neuroevo.strategy import as_members
from neuroevo.tasks.base import Evaluation, Task
from neuroevo.tasks.gymnax import ObsStats

PyTree = Any

INSTALL_HINT = "pip install 'neuroevo[mujoco]'"


def _suite():
    """The ``mujoco_playground.dm_control_suite`` module, or an ImportError saying how to get it."""
    try:
        from mujoco_playground import dm_control_suite
    except ImportError as e:
        raise ImportError(
            f"MuJoCo Playground tasks need the optional 'mujoco' extra: {INSTALL_HINT} ({e})"
        ) from e
    return dm_control_suite


def env_names() -> list[str]:
    """The DM Control Suite environment names Playground registers (e.g. ``CartpoleSwingup``)."""
    return list(_suite().ALL_ENVS)


def _config_overrides(env_name: str, default_config: Any, env_kwargs: dict) -> dict:
    """``env_kwargs`` as Playground ``config_overrides``, checked against the env's config.

    Keys are config entries (``episode_length``, ``action_repeat``, ``ctrl_dt``,
    ``impl``...; dotted keys such as ``"vision_config.nworld"`` reach nested ones).
    Unless ``impl`` is given, the pure-JAX MJX backend is used on CPU: Playground's
    default, ``"warp"``, runs there but is orders of magnitude slower per step.
    """
    valid = sorted(default_config.keys())
    unknown = sorted(k for k in env_kwargs if k.split(".")[0] not in valid)
    if unknown:
        raise ValueError(f"unknown config keys {unknown} for {env_name}; valid keys: {valid}")
    overrides = dict(env_kwargs)
    if "impl" not in overrides and "impl" in valid and jax.default_backend() == "cpu":
        overrides["impl"] = "jax"
    return overrides


def make_env(env_name: str, **env_kwargs):
    """Load ``env_name`` from Playground's DM Control Suite, with clear errors.

    Returns ``(env, config)``, ``config`` being the environment's final config.
    """
    suite = _suite()
    names = list(suite.ALL_ENVS)
    if env_name not in names:
        raise ValueError(f"unknown MuJoCo Playground env {env_name!r}; valid names: {names}")
    overrides = _config_overrides(env_name, suite.get_default_config(env_name), env_kwargs)
    env = suite.load(env_name, config_overrides=overrides)
    # Some envs adjust their config in __init__ (e.g. Cartpole with vision); read the result.
    config = getattr(env, "_config", None)
    if config is None:
        config = suite.get_default_config(env_name)
    return env, config


def flat_obs(obs: jax.Array | Mapping[str, jax.Array]) -> jax.Array:
    """One observation as a flat f32 vector; a dict's entries are concatenated in key order."""
    leaves = jax.tree_util.tree_leaves(obs)
    return jnp.concatenate([jnp.asarray(x, jnp.float32).reshape(-1) for x in leaves])


def default_policy(action_size: int, hidden: tuple[int, ...] = (32, 32)) -> ne_nn.Policy:
    """An MLP whose tanh head spans Playground's action bounds, [-1, 1]."""
    body = ne_nn.MLP(hidden=tuple(hidden), out=action_size)
    return ne_nn.Policy(body=body, head=ne_nn.box_head(-1.0, 1.0, (action_size,)))


def check_action(env_name: str, action_size: int, action: jax.ShapeDtypeStruct) -> None:
    """A ValueError unless the policy's action has shape ``(action_size,)``."""
    if tuple(action.shape) != (action_size,):
        raise ValueError(
            f"the policy returns an action of shape {tuple(action.shape)}, but {env_name} takes "
            f"actions of shape {(action_size,)} (in [-1, 1])"
        )


def repeat_step(env: Any, action_repeat: int) -> Callable[[Any, jax.Array], tuple[Any, jax.Array, jax.Array]]:
    """``step(state, action) -> (state, reward, done)`` applying the action ``action_repeat`` times.

    The reward is summed over the repeats that started before the episode ended;
    non-finite rewards (a diverged simulation, which also ends the episode) count 0.
    """

    def one(state, action, done):
        state = env.step(state, action)
        reward = jnp.asarray(state.reward, jnp.float32)
        reward = jnp.where(done | ~jnp.isfinite(reward), 0.0, reward)
        return state, reward, done | (state.done > 0)

    def step(state, action):
        done = jnp.zeros((), bool)
        if action_repeat == 1:
            return one(state, action, done)

        def body(c, _):
            state, total, done = c
            state, reward, done = one(state, action, done)
            return (state, total + reward, done), None

        (state, total, done), _ = jax.lax.scan(
            body, (state, jnp.zeros((), jnp.float32), done), length=action_repeat
        )
        return state, total, done

    return step


def playground(
    env_name: str,
    policy: nn.Module | Callable[[PyTree, jax.Array], jax.Array] | None = None,
    *,
    hidden: tuple[int, ...] = (32, 32),
    episodes: int = 1,
    max_steps: int | None = None,
    normalize_obs: bool = False,
    **env_kwargs,
) -> Task:
    """A task that plays ``episodes`` episodes of a DM Control Suite env per member.

    Args:
      env_name: one of :func:`env_names`, e.g. ``"CartpoleSwingup"``, ``"CheetahRun"``.
      policy: a flax module mapping the flat f32 observation to an action of shape
        ``(action_size,)`` in [-1, 1] (its params are the solution), or an
        ``apply(solution, obs) -> action`` function; default: an MLP with ``hidden``
        layers and a tanh head (:func:`default_policy`).
      episodes: episodes per member; fitness is their mean return.
      max_steps: episode length in policy steps (default: the config's
        ``episode_length / action_repeat``, typically 1000).
      normalize_obs: normalise observations with running statistics kept in the
        task state (updated from every step the population took).
      **env_kwargs: Playground config overrides, e.g. ``action_repeat=2`` or
        ``impl="warp"`` (default ``"jax"`` on CPU, the env's own on accelerators).
    Metrics (per member): ``return``, ``episode_length`` (policy steps, mean over
    episodes), ``env_steps`` (environment steps, ``action_repeat`` per policy step).
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    env, config = make_env(env_name, **env_kwargs)
    action_repeat = int(config.get("action_repeat", 1))
    if action_repeat < 1:
        raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
    horizon = max_steps if max_steps is not None else math.ceil(int(config.episode_length) / action_repeat)
    action_size = int(env.action_size)
    obs_shape = tuple(jax.eval_shape(lambda: flat_obs(env.reset(jax.random.key(0)).obs)).shape)

    if policy is None:
        policy = default_policy(action_size, hidden)
    apply, init_solution, action = ne_nn.policy_functions(policy, obs_shape)
    if action is not None:
        check_action(env_name, action_size, action)

    step = repeat_step(env, action_repeat)

    def init(key):
        del key
        return ObsStats.empty(obs_shape)

    def evaluate(key, stats: ObsStats, solutions):
        members = as_members(solutions)
        n = members.size
        batch = n * episodes
        # Member-major (n * episodes) batch; every member gets the same reset keys, hence
        # the same starts. Reset, not broadcast, the states: MJX's warp backend lays out
        # some batched fields without a leading batch axis, and batches over one axis only.
        reset_keys = jax.random.split(key, episodes)[jnp.tile(jnp.arange(episodes), n)]
        env_state = jax.vmap(env.reset)(reset_keys)

        def act(solution, obs):
            return apply(solution, stats.normalize(obs) if normalize_obs else obs)

        policy_all = lambda obs: members.apply(jax.vmap(act, in_axes=(None, 0)), obs)  # noqa: E731
        step_all = jax.vmap(step)

        zeros = jnp.zeros((n, episodes), jnp.float32)
        obs_zero = jnp.zeros(obs_shape, jnp.float32)
        carry = (jnp.zeros((), jnp.int32), env_state, zeros, zeros, jnp.ones((n, episodes), bool))
        carry = carry + ((obs_zero, obs_zero),)

        def cond(c):
            t, alive = c[0], c[4]
            return (t < horizon) & jnp.any(alive)

        def body(c):
            t, env_state, ret, length, alive, (s1, s2) = c
            obs = jax.vmap(flat_obs)(env_state.obs).reshape((n, episodes) + obs_shape)
            action = policy_all(obs)
            env_state, reward, done = step_all(env_state, action.reshape((batch,) + action.shape[2:]))
            reward, done = reward.reshape(n, episodes), done.reshape(n, episodes)
            ret = ret + jnp.where(alive, reward, 0.0)
            length = length + alive.astype(jnp.float32)
            if normalize_obs:
                seen = jnp.where(alive[..., None], obs, 0.0)
                s1 = s1 + jnp.sum(seen, axis=(0, 1))
                s2 = s2 + jnp.sum(seen * seen, axis=(0, 1))
            return (t + 1, env_state, ret, length, alive & ~done, (s1, s2))

        _, _, ret, length, _, (s1, s2) = jax.lax.while_loop(cond, body, carry)
        if normalize_obs:
            stats = stats.merge(jnp.sum(length), s1, s2)
        fitness = jnp.mean(ret, axis=1)
        metrics = {
            "return": fitness,
            "episode_length": jnp.mean(length, axis=1),
            "env_steps": jnp.sum(length, axis=1) * action_repeat,
        }
        return Evaluation(fitness=fitness, metrics=metrics), stats

    info = {
        "env_id": env_name,
        "obs_shape": obs_shape,
        "action_space": f"Box(low=-1.0, high=1.0, shape={(action_size,)}, dtype=float32)",
        "episodes": episodes,
        "max_steps": horizon,
        "action_repeat": action_repeat,
        "impl": str(config.get("impl", "")),
        "apply": apply,
        "normalize_obs": normalize_obs,
        "descriptor_dim": None,
        "total_metrics": ("env_steps",),  # summed over the population, not averaged
        "members": True,  # evaluates through Members.apply: eggroll's fast path
    }
    return Task(init=init, evaluate=evaluate, init_solution=init_solution, info=info)

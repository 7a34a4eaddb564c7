"""Training a policy end to end (:func:`train`) and evaluating or drawing a saved one."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from neuroevo.rl.archive_outputs import archive_outputs
from neuroevo.rl.config import make_strategy, make_task, resolve, run_keys
from neuroevo.rl.rundir import (
    _MetricsWriter,
    _save_obs_stats,
    _save_params,
    _write_json,
    load_run,
    plot_learning_curve,
)


def final_solution(state: Any) -> Any:
    """The policy a run hands over: the distribution mean if it has one, else the best member."""
    return state.mean if hasattr(state, "mean") else state.best_solution


def evaluate_policy(task: Any, task_state: Any, params: Any, key: Any) -> float:
    """One policy's fitness on ``task`` (its mean return over the task's episodes)."""
    import jax
    import numpy as np

    batch = jax.tree_util.tree_map(lambda x: x[None], params)
    evaluation, _ = jax.jit(task.evaluate)(key, task_state, batch)
    return float(np.asarray(evaluation.fitness)[0])


class TrainResult(NamedTuple):
    config: dict
    state: Any  # the final strategy state
    history: dict  # per-generation metric arrays
    final_params: Any  # the policy handed over (mean, or best member)
    final_return: float  # its mean return over eval_episodes
    summary: dict


def train(
    config: Mapping[str, Any] | None = None,
    *,
    file: str | None = None,
    out: str | None = None,
    resume: bool = False,
    progress: bool = False,
    **overrides: Any,
) -> TrainResult:
    """Train a policy; return the final state, history and evaluation.

    Args:
      config: a resolved config (e.g. a run's ``config.json``); else one is
        resolved from ``file`` and ``overrides`` (see :func:`resolve`).
      out: the run directory (outputs and checkpoints); None writes nothing.
      resume: continue the run in ``out`` from its last checkpoint, bit for bit.
      progress: draw a progress bar with best/mean return and env-steps/s.
    """
    import numpy as np

    from neuroevo.engine import checkpoint as ckpt
    from neuroevo.engine import loop

    if config is None:
        config = resolve(file, **overrides)
    else:
        config = resolve(None, **{**dict(config), **overrides})
    # Build (and so check) everything before anything compiles or is written.
    task = make_task(config)
    strategy = make_strategy(config, task.info.get("descriptor_dim"))
    eval_task = make_task(config, episodes=config["eval_episodes"])
    archive_out = archive_outputs(config, out, task.info.get("descriptor_dim"))  # QD strategies only

    checkpoint_dir = None
    writer = None
    if out is not None:
        existing = os.path.join(out, "config.json")
        if resume:
            if not os.path.exists(existing):
                raise ValueError(f"--resume {out}: no run there (config.json is missing)")
        elif os.path.exists(existing):
            raise ValueError(
                f"{out} already holds a run: resume it with --resume {out}, or pick another --out"
            )
        os.makedirs(out, exist_ok=True)
        _write_json(existing, {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()})
        checkpoint_dir = os.path.join(out, "checkpoints")
        reached = ckpt.Manager(checkpoint_dir).latest() if resume else None
        writer = _MetricsWriter(out, keep_until=reached or 0)

    k_params, k_run, k_eval = run_keys(config["seed"])
    x0 = task.init_solution(k_params)
    t0 = time.perf_counter()
    result = loop.run(
        k_run,
        strategy,
        task,
        x0,
        config["generations"],
        chunk_size=config["chunk_size"],
        log_every=config["log_every"],
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=config["checkpoint_every"],
        callbacks=[c for c in (writer, archive_out) if c is not None],
        progress=progress,
    )
    final_params = final_solution(result.state)
    final_return, best_return = (
        evaluate_policy(eval_task, result.task_state, params, k_eval)
        for params in (final_params, result.state.best_solution)
    )
    summary = {
        "env": config["env"],
        "strategy": config["strategy"],
        "final_eval_return": final_return,
        "best_eval_return": best_return,
        "eval_episodes": config["eval_episodes"],
        "generations": result.generations,
        "env_steps": float(np.sum(result.history.get("env_steps", [0.0]))),
        "wall_time_s": time.perf_counter() - t0,
        "best_fitness": float(np.asarray(result.state.best_fitness)),
    }
    if out is not None:
        _save_params(os.path.join(out, "final_params.msgpack"), final_params)
        _save_params(os.path.join(out, "best_params.msgpack"), result.state.best_solution)
        _save_obs_stats(os.path.join(out, "obs_stats.json"), result.task_state)
        plot_learning_curve(writer.rows, os.path.join(out, "learning_curve.png"), config["env"])
        if hasattr(result.state, "best_genome"):  # NEAT: the evolved network, readable and drawn
            from neuroevo.strategies import neat_module

            _write_json(os.path.join(out, "best_genome.json"), neat_module.export(result.state.best_genome))
            neat_module.draw(
                result.state.best_genome, os.path.join(out, "best_network.png"), title=config["env"]
            )
        if archive_out is not None:
            archive_out.finish(result.state)
        _write_json(os.path.join(out, "summary.json"), summary)
    return TrainResult(dict(config), result.state, result.history, final_params, final_return, summary)


def evaluate_run(
    run_dir: str, *, episodes: int | None = None, seed: int | None = None, which: str = "final"
) -> float:
    """Re-evaluate a saved policy: its mean return over ``episodes``.

    With the defaults (the run's ``eval_episodes`` and seed) this reproduces the
    run's ``final_eval_return`` (``best_eval_return`` with ``which="best"``).
    """

    config, _, task_state, params = load_run(run_dir, which)
    n = config["eval_episodes"] if episodes is None else int(episodes)
    if n < 1:
        raise ValueError(f"episodes must be >= 1, got {n}")
    k_eval = run_keys(config["seed"] if seed is None else seed)[2]
    return evaluate_policy(make_task(config, episodes=n), task_state, params, k_eval)


def render_gif(run_dir: str, path: str, *, which: str = "final", seed: int = 0, max_frames: int = 500) -> int:
    """Play one episode of a saved policy and draw it to a GIF; returns the frame count.

    Uses gymnax's visualiser: classic control, MinAtar, Catch, PointRobot,
    MetaMaze and FourRooms can be drawn.
    """
    import jax
    import numpy as np

    config, task, task_state, params = load_run(run_dir, which)
    env_id = config["env"]
    if env_id not in DRAWABLE:
        raise ValueError(f"gymnax cannot draw {env_id!r}; drawable environments: {', '.join(DRAWABLE)}")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame draws off-screen: no sound card,
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # no display
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from gymnax.visualize import Visualizer

    from neuroevo.tasks.gymnax import make_env

    env, env_params = make_env(env_id, config["max_steps"])
    apply = task.info["apply"]
    normalize = config["normalize_obs"]

    @jax.jit
    def act(obs):
        obs = jax.numpy.asarray(obs, jax.numpy.float32)
        return apply(params, task_state.normalize(obs) if normalize else obs)

    step = jax.jit(lambda k, s, a: env.step_env(k, s, a, env_params))
    key = jax.random.key(seed)
    obs, state = env.reset(key, env_params)
    states, returns, total = [state], [0.0], 0.0
    for t in range(min(max_frames, int(env_params.max_steps_in_episode))):
        obs, state, reward, done, _ = step(jax.random.fold_in(key, t), state, act(obs))
        total += float(reward)
        states.append(state)
        returns.append(total)
        if bool(done) or bool(env.is_truncated(state, env_params)):
            break
    Visualizer(env, env_params, states, np.asarray(returns)).animate(path)
    return len(states)


DRAWABLE = (
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Catch-bsuite",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "Pong-misc",
    "PointRobot-misc",
    "MetaMaze-misc",
    "FourRooms-misc",
)

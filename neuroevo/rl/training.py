"""Training a policy end to end (:func:`train`) and evaluating or drawing a saved one."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from neuroevo.rl import paths
from neuroevo.rl.archive_outputs import archive_outputs
from neuroevo.rl.config import check_resume, make_strategy, make_task, resolve, run_keys
from neuroevo.rl.rundir import (
    _MetricsWriter,
    _save_obs_stats,
    _save_params,
    _write_json,
    load_config,
    load_run,
    plot_learning_curve,
)


def final_solution(state: Any) -> Any:
    """The policy a run hands over: the distribution mean if it has one, else the best member."""
    return state.mean if hasattr(state, "mean") else state.best_solution


def evaluate_policy(task: Any, task_state: Any, params: Any, key: Any) -> float:
    """One policy's fitness on ``task`` (its mean return over the task's episodes); ``key`` may be
    a typed or a legacy key."""
    import jax
    import numpy as np

    from neuroevo.engine import prng_keys

    key = prng_keys.as_key(key)
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
    log: str | Sequence[str] | None = None,
    callbacks: Sequence[Callable[[int, Any, dict], None]] = (),
    **overrides: Any,
) -> TrainResult:
    """Train a policy; return the final state, history and evaluation.

    Everything is checked before anything compiles or is written: the config,
    the strategy and task (built, and one generation traced on the real
    starting point), the output directory, and on resume the rule that only
    ``generations`` may change (:func:`neuroevo.rl.config.check_resume`). A run
    that fails before its first checkpoint removes what it wrote.

    Args:
      config: a resolved config (e.g. a run's ``config.json``); else one is
        resolved from ``file`` and ``overrides`` (see :func:`resolve`).
      out: the run directory (outputs and checkpoints); None writes nothing. A
        new run needs a new or empty directory.
      resume: continue the run in ``out`` from its last checkpoint, bit for bit.
        Its stored config is used (``config``/``file``, if given, must agree
        with it); ``overrides`` may only raise ``generations``.
      progress: draw a progress bar with best/mean return and env-steps/s.
      log: loggers writing every metric per generation under ``out``:
        ``"tensorboard"`` (``out/tensorboard/``), ``"wandb"`` (``out/wandb/``, offline
        unless ``WANDB_MODE`` says otherwise), a list or a comma list of them
        (:mod:`neuroevo.engine.callbacks`). A resumed run keeps logging to the
        loggers it has.
      callbacks: more ``fn(generation, state, block_metrics)`` callbacks for the run loop.
    """
    import numpy as np

    from neuroevo.engine import callbacks as loggers
    from neuroevo.engine import checkpoint as ckpt
    from neuroevo.engine import loop

    stored = None
    if resume:
        if out is None:
            raise ValueError("resume=True needs out=, the directory of the run to continue")
        stored = load_config(out)
    if config is not None:
        config = resolve(None, **{**dict(config), **overrides})
    elif file is None and stored is not None:
        config = resolve(None, **{**stored, **overrides})
    else:
        config = resolve(file, **overrides)
    checkpoint_dir = None if out is None else os.path.join(out, "checkpoints")
    if stored is not None:
        check_resume(stored, config, ckpt.latest_step(checkpoint_dir))
    if out is not None:
        if resume:
            paths.check_output_dir(out)
        else:
            paths.check_new_run_dir(out)
    # Build (and so check) everything before anything compiles or is written.
    task = make_task(config)
    strategy = make_strategy(config, task.info.get("descriptor_dim"))
    eval_task = make_task(config, episodes=config["eval_episodes"])
    log = loggers.parse_log(log)
    if log and out is None:
        raise ValueError(f"logging ({', '.join(log)}) writes under the run directory: give out=")
    loggers.check(log)  # a missing extra is reported before anything is written
    if resume and out is not None:  # a resumed run keeps the loggers it has
        log += tuple(n for n in loggers.LOGGERS if n not in log and os.path.isdir(os.path.join(out, n)))
    k_params, k_run, k_eval = run_keys(config["seed"])
    check_traces(config, strategy, task, k_params, k_run)

    writer = archive_out = None
    run_callbacks = []
    created = out is not None and not os.path.exists(out)
    if out is not None:
        os.makedirs(out, exist_ok=True)
        config_file = _ConfigFile(os.path.join(out, "config.json"), config)
        if not resume:
            config_file()
        writer = _MetricsWriter(out, resume=resume)
        # A resumed run's config (its generations) is rewritten once its restore has worked.
        run_callbacks = [writer, config_file]
        archive_out = archive_outputs(config, out, task.info.get("descriptor_dim"))  # QD strategies only
        if archive_out is not None:
            run_callbacks.append(archive_out)
        run_name = os.path.basename(os.path.normpath(out))
        log = [loggers.make(n, out, run_name=run_name, config=config, resume=resume) for n in log]

    x0 = task.init_solution(k_params)
    t0 = time.perf_counter()
    try:
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
            callbacks=run_callbacks + list(log) + list(callbacks),
            progress=progress,
        )
    except Exception:
        if out is not None and not resume and ckpt.latest_step(checkpoint_dir) is None:
            for logger in log:
                logger.close()
            log = []
            _remove_failed_start(out, created)
        raise
    finally:
        for logger in log:
            logger.close()
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
    if task.info.get("name") == "text":  # the evaluation is minus the validation loss (nats per char)
        summary["final_eval_bits_per_char"] = -final_return / float(np.log(2.0))
    elif not config["env"].startswith("playground:"):  # gymnax: its reference and a random policy's return
        import jax

        from neuroevo.rl.reference import yardsticks

        key = jax.random.fold_in(k_eval, 1)
        summary.update(yardsticks(config["env"], config["eval_episodes"], key, config["max_steps"]))
    if out is not None:
        writer.finish(result.generations)
        config_file()
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


def check_traces(config: Mapping[str, Any], strategy: Any, task: Any, k_params: Any, k_run: Any) -> None:
    """Trace (not compile) the start and one generation of a run on its real starting point.

    Raises ``ValueError`` naming the strategy and its hyperparameters when they
    cannot run on the task (e.g. a value of the wrong kind that only the trace reveals).
    """
    import jax

    from neuroevo.engine import loop

    try:
        x0 = jax.eval_shape(task.init_solution, k_params)
        carry = jax.eval_shape(lambda x: (strategy.init(k_run, x), task.init(k_run)), x0)
        jax.eval_shape(loop.make_step(strategy, task, config["chunk_size"]), carry, k_run)
    except Exception as e:
        lines = str(e).strip().splitlines() or [type(e).__name__]
        raise ValueError(
            f"strategy {config['strategy']!r} with hyperparameters {config['hp']} cannot run on "
            f"{config['env']}: {type(e).__name__}: {lines[0]}"
        ) from None


class _ConfigFile:
    """Writes a run's ``config.json`` when its content would change (a callback too)."""

    def __init__(self, path: str, config: Mapping[str, Any]):
        self.path = path
        self.content = {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
        self.current = False

    def __call__(self, *_: Any) -> None:
        if self.current:
            return
        try:
            with open(self.path) as f:
                self.current = json.load(f) == self.content
        except (OSError, ValueError):
            pass
        if not self.current:
            _write_json(self.path, self.content)
            self.current = True


def _remove_failed_start(out: str, created: bool) -> None:
    """Remove what a run that failed before its first checkpoint wrote, so a corrected rerun can start."""
    for name in ("config.json", "metrics.jsonl", "metrics.csv"):
        for path in (os.path.join(out, name), os.path.join(out, name + ".tmp")):
            if os.path.exists(path):
                os.remove(path)
    shutil.rmtree(os.path.join(out, "checkpoints"), ignore_errors=True)
    if created and os.path.isdir(out) and not os.listdir(out):
        os.rmdir(out)


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

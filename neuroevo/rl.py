"""Training RL policies end to end: configuration, outputs, resume and evaluation.

``neuroevo train`` is a thin shell around :func:`train`; everything it does is a
call here::

    import neuroevo as ne

    result = ne.train(env="CartPole-v1", generations=30, out="runs/cartpole")
    print(result.final_return)
    ne.rl.evaluate_run("runs/cartpole", episodes=20)

A configuration is resolved, lowest first, from the global :data:`DEFAULTS`,
the environment's :data:`PRESETS` (settings measured to solve it, see
``benchmarks/rl.py``), a config file (TOML or YAML), and explicit overrides.
Every key is checked, and the strategy and task are built, before anything is
compiled.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl``
and ``metrics.csv`` (one row per generation), ``learning_curve.png``,
``checkpoints/`` (orbax, atomic), ``final_params.msgpack`` and
``best_params.msgpack`` (flax serialisation) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from neuroevo.presets import PRESETS

DEFAULTS: dict[str, Any] = {
    "env": "CartPole-v1",
    "strategy": "openai_es",
    "popsize": 256,
    "generations": 50,
    "seed": 0,
    "episodes": 1,
    "eval_episodes": 10,
    "hidden": (32, 32),
    "network": "mlp",
    "max_steps": None,
    "normalize_obs": False,
    "chunk_size": None,
    "log_every": 1,
    "checkpoint_every": 10,
    "hp": {},
}

TYPES: dict[str, type] = {
    "env": str,
    "strategy": str,
    "popsize": int,
    "generations": int,
    "seed": int,
    "episodes": int,
    "eval_episodes": int,
    "network": str,
    "max_steps": int,
    "normalize_obs": bool,
    "chunk_size": int,
    "log_every": int,
    "checkpoint_every": int,
}


def _valid_keys() -> str:
    return ", ".join(DEFAULTS)


def _coerce(key: str, value: Any) -> Any:
    """Check one config value's type (None allowed where the default is None)."""
    if key == "hidden":
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        try:
            widths = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(
                f"config key 'hidden' must be layer widths like [32, 32], got {value!r}"
            ) from None
        if any(w < 1 for w in widths):
            raise ValueError(f"config key 'hidden' must hold positive widths, got {value!r}")
        return widths
    if key == "hp":
        if not isinstance(value, Mapping):
            raise ValueError(f"config key 'hp' must be a table of hyperparameters, got {value!r}")
        return dict(value)
    kind = TYPES[key]
    if value is None and DEFAULTS[key] is None:
        return None
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"config key {key!r} must be {kind.__name__}, got {value!r}")
    if kind is int and key not in ("seed",) and value < 1:
        raise ValueError(f"config key {key!r} must be >= 1, got {value!r}")
    return value


def read_config_file(path: str) -> dict[str, Any]:
    """A config file's table: TOML (``.toml``) or YAML (``.yaml``/``.yml``)."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".toml", ".yaml", ".yml") and not os.path.isfile(path):
        raise ValueError(f"config file {path!r} does not exist")
    if ext == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config file {path!r} is not valid TOML: {e}") from None
    elif ext in (".yaml", ".yml"):
        import yaml

        with open(path) as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"config file {path!r} is not valid YAML: {e}") from None
    else:
        raise ValueError(f"config file {path!r}: unknown format {ext!r}; valid: .toml, .yaml, .yml")
    if not isinstance(data, Mapping):
        raise ValueError(f"config file {path!r} must hold a table of keys, got {type(data).__name__}")
    return dict(data)


def resolve(file: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The full configuration: defaults < the env's preset < ``file`` < ``overrides``.

    ``hp`` tables are merged in the same order. Unknown keys raise ``ValueError``
    listing the valid ones.
    """
    layers = [read_config_file(file)] if file else []
    layers.append(dict(overrides))
    for layer in layers:
        unknown = sorted(set(layer) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown config key {unknown[0]!r}; valid keys: {_valid_keys()}")
    env = DEFAULTS["env"]
    for layer in layers:
        env = layer.get("env", env)
    config = dict(DEFAULTS, hp={})
    for layer in [PRESETS.get(env, {}), *layers]:
        for key, value in layer.items():
            if key == "hp":
                config["hp"].update(_coerce("hp", value))
            else:
                config[key] = _coerce(key, value)
    return config


def make_task(config: Mapping[str, Any], episodes: int | None = None):
    """The task a config trains on (``episodes`` overrides the config's)."""
    from neuroevo import nn as ne_nn
    from neuroevo import tasks

    env_id = config["env"]
    kwargs = dict(
        episodes=config["episodes"] if episodes is None else episodes,
        max_steps=config["max_steps"],
        normalize_obs=config["normalize_obs"],
    )
    if env_id.startswith("playground:"):
        return tasks.playground(env_id.split(":", 1)[1], hidden=config["hidden"], **kwargs)
    if config["network"] not in ("mlp", "cnn", "neat"):
        raise ValueError(f"unknown network {config['network']!r}; valid: 'mlp', 'cnn', 'neat'")
    env, params = tasks.gymnax_module.make_env(env_id, config["max_steps"])
    obs_shape = tuple(env.observation_space(params).shape)
    if config["strategy"] == "neat" or config["network"] == "neat":
        # NEAT evolves the network itself: its solutions are ne.nn.neat.Network graphs.
        n_out, head = ne_nn.head_for(env.action_space(params))
        return tasks.gymnax(env_id, ne_nn.neat.neat_policy(obs_shape, n_out, head), **kwargs)
    if config["network"] == "cnn" and len(obs_shape) != 3:
        raise ValueError(
            f"network 'cnn' needs image observations (H, W, C); {env_id} observations have shape "
            f"{obs_shape}: use network 'mlp'"
        )
    policy = ne_nn.policy_for(env.action_space(params), config["hidden"], config["network"])
    return tasks.gymnax(env_id, policy, **kwargs)


def make_strategy(config: Mapping[str, Any]):
    from neuroevo import strategies

    return strategies.make(config["strategy"], popsize=config["popsize"], **config["hp"])


def final_solution(state: Any) -> Any:
    """The policy a run hands over: the distribution mean if it has one, else the best member."""
    return state.mean if hasattr(state, "mean") else state.best_solution


def run_keys(seed: int):
    """A run's keys from its seed: (policy initialisation, evolution, final evaluation)."""
    import jax

    return jax.random.split(jax.random.key(seed), 3)


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


# ---------------------------------------------------------------------------
# The run directory


def _save_params(path: str, params: Any) -> None:
    from flax import serialization

    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(serialization.msgpack_serialize(serialization.to_state_dict(params)))
    os.replace(tmp, path)


def load_params(path: str, like: Any) -> Any:
    """Parameters saved by a run, restored into the structure of ``like``."""
    from flax import serialization

    with open(path, "rb") as f:
        return serialization.from_state_dict(like, serialization.msgpack_restore(f.read()))


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


class _MetricsWriter:
    """Appends one row per generation to metrics.jsonl and metrics.csv.

    On resume, rows past the checkpoint's generation (written before the run was
    killed) are dropped, so the files end up as an uninterrupted run's.
    """

    def __init__(self, out: str, keep_until: int):
        self.jsonl = os.path.join(out, "metrics.jsonl")
        self.csv = os.path.join(out, "metrics.csv")
        self.rows = []
        if os.path.exists(self.jsonl):
            with open(self.jsonl) as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut short by a kill
                        break
                    if row["generation"] > keep_until:
                        break
                    self.rows.append(row)
        self.columns = list(self.rows[0]) if self.rows else None
        with open(self.jsonl, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.rows)
        with open(self.csv, "w", newline="") as f:
            if self.columns:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(self.rows)

    @property
    def env_steps_total(self) -> float:
        return self.rows[-1].get("env_steps_total", 0.0) if self.rows else 0.0

    def __call__(self, generation: int, state: Any, metrics: dict) -> None:
        n = len(metrics["best"])
        new = []
        total = self.env_steps_total
        for i in range(n):
            row = {"generation": generation - n + i + 1}
            row.update({k: float(v[i]) for k, v in metrics.items()})
            if "env_steps" in row:
                total += row["env_steps"]
                row["env_steps_total"] = total
            new.append(row)
        if self.columns is None:
            self.columns = list(new[0])
            with open(self.csv, "w", newline="") as f:
                csv.DictWriter(f, self.columns).writeheader()
        with open(self.jsonl, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in new)
        with open(self.csv, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerows(new)
        self.rows.extend(new)


def plot_learning_curve(rows: list[dict], path: str, title: str = "") -> None:
    """best / generation-best / mean fitness per generation (and env steps on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = [r["generation"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label, style in (
        ("best", "best so far", "-"),
        ("generation_best", "generation best", ":"),
        ("mean", "population mean", "--"),
    ):
        if rows and key in rows[0]:
            ax.plot(gens, [r[key] for r in rows], style, label=label)
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if rows and "env_steps_total" in rows[-1]:
        total = rows[-1]["env_steps_total"]
        ax.set_title(f"{title}  ({total:,.0f} env steps)".strip())
    else:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Training


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
    strategy = make_strategy(config)
    task = make_task(config)
    eval_task = make_task(config, episodes=config["eval_episodes"])

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
        callbacks=[writer] if writer is not None else [],
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
        _write_json(os.path.join(out, "summary.json"), summary)
    return TrainResult(dict(config), result.state, result.history, final_params, final_return, summary)


def _save_obs_stats(path: str, task_state: Any) -> None:
    """The observation statistics a saved policy was trained with (for ``eval``)."""
    import numpy as np

    if hasattr(task_state, "_asdict"):
        _write_json(path, {k: np.asarray(v).tolist() for k, v in task_state._asdict().items()})


def _load_task_state(run_dir: str, task: Any) -> Any:
    import jax
    import jax.numpy as jnp

    state = task.init(jax.random.key(0))
    path = os.path.join(run_dir, "obs_stats.json")
    if hasattr(state, "_asdict") and os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        state = type(state)(**{k: jnp.asarray(saved[k], jnp.float32) for k in state._asdict()})
    return state


def load_config(run_dir: str) -> dict[str, Any]:
    """The resolved config a run directory was trained with."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"{run_dir} is not a run directory (config.json is missing)")
    with open(path) as f:
        return resolve(None, **json.load(f))


def load_run(run_dir: str, which: str = "final") -> tuple[dict, Any, Any, Any]:
    """``(config, task, task_state, params)`` of a finished run's ``final`` or ``best`` policy."""
    import jax

    if which not in ("final", "best"):
        raise ValueError(f"unknown policy {which!r}; valid: 'final', 'best'")
    config = load_config(run_dir)
    params_path = os.path.join(run_dir, f"{which}_params.msgpack")
    if not os.path.exists(params_path):
        raise ValueError(f"{params_path} is missing: the run has not finished (resume it first)")
    task = make_task(config)
    like = task.init_solution(jax.random.key(0))
    return config, task, _load_task_state(run_dir, task), load_params(params_path, like)


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

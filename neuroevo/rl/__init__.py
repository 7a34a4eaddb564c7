"""Training RL policies end to end: configuration, outputs, resume and evaluation.

``neuroevo train`` is a thin shell around :func:`train`; everything it does is a
call here::

    import neuroevo as ne

    result = ne.train(env="CartPole-v1", generations=30, out="runs/cartpole")
    print(result.final_return)
    ne.rl.evaluate_run("runs/cartpole", episodes=20)

Modules: :mod:`neuroevo.rl.config` (defaults, presets, config files),
:mod:`neuroevo.rl.rundir` (the run directory's files), :mod:`neuroevo.rl.training`
(train, evaluate, draw) and :mod:`neuroevo.rl.sweep_file` (``neuroevo sweep``).

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

from neuroevo.rl.config import DEFAULTS, TYPES, make_strategy, make_task, read_config_file, resolve, run_keys
from neuroevo.rl.rundir import load_config, load_params, load_run, plot_learning_curve
from neuroevo.rl.sweep_file import sweep_file
from neuroevo.rl.training import (
    DRAWABLE,
    TrainResult,
    evaluate_policy,
    evaluate_run,
    final_solution,
    render_gif,
    train,
)

__all__ = [
    "DEFAULTS",
    "DRAWABLE",
    "TYPES",
    "TrainResult",
    "evaluate_policy",
    "evaluate_run",
    "final_solution",
    "load_config",
    "load_params",
    "load_run",
    "make_strategy",
    "make_task",
    "plot_learning_curve",
    "read_config_file",
    "render_gif",
    "resolve",
    "run_keys",
    "sweep_file",
    "train",
]

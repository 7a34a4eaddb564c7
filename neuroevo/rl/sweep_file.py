"""``neuroevo sweep CONFIG --out DIR``: a sweep described by a config file."""

from __future__ import annotations

import os
from collections.abc import Sequence

from neuroevo.engine import callbacks as loggers
from neuroevo.engine import sweep as engine_sweep
from neuroevo.rl import config as config_lib

SWEEP_KEYS = ("grid", "samples", "num_samples", "seeds")


def sweep_file(path: str, out: str, log: str | Sequence[str] | None = None) -> engine_sweep.SweepResult:
    """Run the sweep a TOML/YAML file describes; write ``sweep.csv`` and ``sweep.png`` under ``out``.

    The file holds ``neuroevo train`` settings (env, strategy, popsize,
    generations, seed, hidden, fixed ``hp`` ...) plus ``seeds`` and either a
    ``grid`` table (name -> list of values) or a ``samples`` table (name ->
    ``[low, high, "log"|"linear"]``) with ``num_samples``.

    ``log`` (``"tensorboard"``, ``"wandb"`` or both) logs every metric per
    generation of each config x seed as a run of its own, after the sweep
    (:func:`neuroevo.engine.callbacks.log_sweep`): ``out/tensorboard/<run>/``
    and ``out/wandb/``.
    """
    log = loggers.parse_log(log)
    loggers.check(log)
    table = config_lib.read_config_file(path)
    settings = {k: table.pop(k) for k in SWEEP_KEYS if k in table}
    config = config_lib.resolve(**table)
    task = config_lib.make_task(config)
    k_params, k_run, _ = config_lib.run_keys(config["seed"])
    x0 = task.init_solution(k_params)

    def make_strategy(**hp):
        return config_lib.make_strategy(
            dict(config, hp=dict(config["hp"], **hp)), task.info.get("descriptor_dim")
        )

    result = engine_sweep.sweep(
        k_run,
        make_strategy,
        task,
        x0,
        grid=settings.get("grid"),
        samples=settings.get("samples"),
        num_samples=settings.get("num_samples", 8),
        seeds=settings.get("seeds", 1),
        generations=config["generations"],
        chunk_size=config["chunk_size"],
    )
    os.makedirs(out, exist_ok=True)
    result.to_csv(os.path.join(out, "sweep.csv"))
    result.plot(os.path.join(out, "sweep.png"), title=f"{config['strategy']} on {config['env']}")
    if log:
        loggers.log_sweep(result, out, log, group=os.path.basename(os.path.normpath(out)))
    return result

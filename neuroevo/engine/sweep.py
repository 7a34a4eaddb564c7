"""Sweeps: every config x seed of a strategy as one compiled, vmapped program.

``make_strategy(**hp)`` is called inside ``jax.vmap`` with each hyperparameter
a traced scalar, so one compilation serves the whole sweep (docs/concepts/contract.md:
numeric hyperparameters may be traced; shapes such as ``popsize`` are fixed
in ``make_strategy``)::

    result = ne.sweep(
        jax.random.key(0),
        lambda sigma, learning_rate: ne.strategies.openai_es(64, sigma=sigma, learning_rate=learning_rate),
        task, x0,
        grid={"sigma": [0.03, 0.1], "learning_rate": [0.01, 0.03]},
        seeds=4, generations=20,
    )
    result.table()          # one row per config x seed
    result.plot("sweep.png")

Seed ``s`` of every config runs with ``result.keys[s]``: ``ne.evolve(result.keys[s],
make_strategy(**config), task, x0, generations)`` repeats that member alone.
"""

from __future__ import annotations

import csv
import itertools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from neuroevo.engine import distributed, prng_keys
from neuroevo.engine import pbt as population_based
from neuroevo.engine.loop import make_step
from neuroevo.tasks.base import Task

PyTree = Any
SCALES = ("linear", "log")


class SweepResult(NamedTuple):
    """What :func:`sweep` returns; arrays are indexed ``[config, seed, generation]``."""

    names: tuple[str, ...]  # hyperparameter names
    configs: list[dict[str, float]]  # one dict of hyperparameter values per config
    keys: jax.Array  # the run key of each seed (the same for every config)
    history: dict[str, np.ndarray]  # per-generation metrics (best, generation_best, mean, ...)
    states: Any  # final strategy states, leaves shaped [config, seed, ...]
    compilations: int  # programs compiled for the sweep (1)
    seconds: float  # wall time, compilation included
    # With pbt=: configs are the members' starting configs; one population per seed.
    schedule: dict[str, np.ndarray] | None = None  # hyperparameters in force, [config, seed, interval]
    parents: np.ndarray | None = None  # whose state each took after each interval, same axes
    interval: int = 0  # PBT's generations per interval

    @property
    def curves(self) -> np.ndarray:
        """Best fitness so far, ``[config, seed, generation]``."""
        return self.history["best"]

    def table(self) -> list[dict[str, float]]:
        """One row per config x seed: the config's values, ``seed``, ``best_fitness``, ``final_mean``."""
        rows = []
        for c, config in enumerate(self.configs):
            for s in range(len(self.keys)):
                rows.append(
                    dict(
                        config,
                        seed=s,
                        best_fitness=float(self.history["best"][c, s, -1]),
                        final_mean=float(self.history["mean"][c, s, -1]),
                    )
                )
        return rows

    def to_csv(self, path: str) -> None:
        rows = self.table()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def plot(self, path: str, title: str = "") -> None:
        """Best fitness per generation of each config: mean over seeds, shaded min to max."""
        plot_curves(self.curves, [label(c) for c in self.configs], path, title)

    def plot_schedule(self, path: str, seed: int = 0, title: str = "") -> None:
        """PBT: each hyperparameter vs generation per member of population ``seed``, and its fitness."""
        if self.schedule is None:
            raise ValueError("plot_schedule needs a PBT sweep (ne.sweep(..., pbt=ne.PBT(...)))")
        schedule = {n: v[:, seed] for n, v in self.schedule.items()}
        plot_schedule(schedule, self.curves[:, seed], self.interval, path, title)


def label(config: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in config.items())


def plot_curves(curves: np.ndarray, labels: Sequence[str], path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 5))
    gens = np.arange(1, curves.shape[-1] + 1)
    colors = plt.cm.viridis(np.linspace(0, 1, max(len(labels), 2)))
    for c, name in enumerate(labels):
        ax.plot(gens, curves[c].mean(axis=0), color=colors[c], label=name)
        ax.fill_between(gens, curves[c].min(axis=0), curves[c].max(axis=0), color=colors[c], alpha=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("best fitness (mean over seeds, min-max shaded)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=1 + len(labels) // 9, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_schedule(
    schedule: Mapping[str, np.ndarray], curves: np.ndarray, interval: int, path: str, title: str = ""
) -> None:
    """One panel per hyperparameter (``schedule[name]`` is [member, interval]) and one of ``curves``
    ([member, generation]; drawn as -fitness on a log scale when every value is negative)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members, generations = curves.shape
    fig, axes = plt.subplots(len(schedule) + 1, 1, figsize=(8, 2.6 * (len(schedule) + 1)), sharex=True)
    colors = plt.cm.viridis(np.linspace(0, 1, max(members, 2)))
    edges = np.arange(schedule[next(iter(schedule))].shape[1] + 1) * interval
    for ax, (name, values) in zip(axes, schedule.items(), strict=False):
        for m in range(members):
            ax.stairs(values[m], edges, color=colors[m], lw=1.2, baseline=None)
        positive = bool(np.all(values > 0))
        ax.set_yscale("log" if positive and values.max() > 10 * values.min() else "linear")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax = axes[-1]
    gens = np.arange(1, generations + 1)
    negative = bool(np.all(curves < 0))
    for m in range(members):
        ax.plot(gens, -curves[m] if negative else curves[m], color=colors[m], lw=1.0)
    if negative:
        ax.set_yscale("log")
    ax.set_ylabel("-best fitness (log)" if negative else "best fitness")
    ax.set_xlabel("generation")
    ax.grid(alpha=0.3)
    axes[0].set_title(title or f"PBT: {members} members, exploit/explore every {interval} generations")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Configurations
# --------------------------------------------------------------------------- #


def grid_configs(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The cartesian product of ``grid``'s value lists, the last name varying fastest."""
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of numbers, got {values!r}")
        for v in values:
            check_number(name, v)
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def sample_configs(key: jax.Array, samples: Mapping[str, Sequence], num_samples: int) -> list[dict]:
    """``num_samples`` configs, each name drawn from ``(low, high, "linear" | "log")``."""
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int with samples=, got {num_samples!r}")
    columns = {}
    for i, (name, spec) in enumerate(samples.items()):
        low, high, scale = parse_range(name, spec)
        u = np.asarray(jax.random.uniform(jax.random.fold_in(key, i), (num_samples,), jnp.float32))
        if scale == "log":
            columns[name] = np.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            columns[name] = low + u * (high - low)
    return [{k: float(v[j]) for k, v in columns.items()} for j in range(num_samples)]


def parse_range(name: str, spec: Sequence) -> tuple[float, float, str]:
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or len(spec) not in (2, 3):
        raise ValueError(
            f"samples[{name!r}] must be (low, high) or (low, high, 'linear'|'log'), got {spec!r}"
        )
    low, high = check_number(name, spec[0]), check_number(name, spec[1])
    scale = spec[2] if len(spec) == 3 else "linear"
    if scale not in SCALES:
        raise ValueError(f"samples[{name!r}]: unknown scale {scale!r}; valid: {', '.join(SCALES)}")
    if not low < high:
        raise ValueError(f"samples[{name!r}]: low must be below high, got ({low}, {high})")
    if scale == "log" and low <= 0:
        raise ValueError(f"samples[{name!r}]: a log scale needs low > 0, got {low}")
    return float(low), float(high), scale


def check_number(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"hyperparameter {name!r}: {value!r} is not a number; a sweep traces its hyperparameters, "
            f"so fix non-numeric (and shape) settings such as popsize inside make_strategy"
        )
    return value


def configs_of(key, grid, samples, num_samples) -> list[dict[str, float]]:
    if (grid is None) == (samples is None):
        raise ValueError(
            "give exactly one of grid= (name -> values) and samples= (name -> (low, high, scale))"
        )
    if grid is not None:
        if not grid:
            raise ValueError("grid is empty: give at least one hyperparameter name -> list of values")
        return grid_configs(grid)
    if not samples:
        raise ValueError("samples is empty: give at least one hyperparameter name -> (low, high, scale)")
    return sample_configs(key, samples, num_samples)


# --------------------------------------------------------------------------- #
# The compiled sweep
# --------------------------------------------------------------------------- #


def member_start(make_strategy: Callable[..., Any], task: Task, x0: PyTree):
    """``(key, hp) -> ((state, task_state), loop_key)``: a run's start, keyed as ``ne.evolve`` keys it."""

    def start(key, hp):
        k_init, k_task, k_loop = jax.random.split(key, 3)
        return (make_strategy(**hp).init(k_init, x0), task.init(k_task)), k_loop

    return start


def member_steps(make_strategy: Callable[..., Any], task: Task, length: int, chunk_size: int | None):
    """``(carry, loop_key, hp, first) -> (carry, metrics)``: ``length`` generations from ``first``."""

    def steps(carry, loop_key, hp, first):
        step = make_step(make_strategy(**hp), task, chunk_size)
        generations = first + jnp.arange(length)
        return jax.lax.scan(lambda c, g: step(c, jax.random.fold_in(loop_key, g)), carry, generations)

    return steps


def member_run(
    make_strategy: Callable[..., Any], task: Task, x0: PyTree, generations: int, chunk_size: int | None
) -> Callable[[jax.Array, dict], tuple[Any, dict]]:
    """``(key, hp) -> (final state, per-generation metrics)``: one run, as ``ne.evolve`` keys it."""
    start = member_start(make_strategy, task, x0)
    steps = member_steps(make_strategy, task, generations, chunk_size)

    def run(key, hp):
        carry, loop_key = start(key, hp)
        (state, _), metrics = steps(carry, loop_key, hp, 0)
        return state, metrics

    return run


def sweep(
    key: jax.Array,
    make_strategy: Callable[..., Any],
    task: Task,
    x0: PyTree,
    *,
    grid: Mapping[str, Sequence[float]] | None = None,
    samples: Mapping[str, Sequence] | None = None,
    num_samples: int = 8,
    seeds: int = 1,
    generations: int,
    chunk_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
    pbt: population_based.PBT | None = None,
) -> SweepResult:
    """Run every config x seed of ``make_strategy`` on ``task`` as one ``jit(vmap(...))`` program.

    Args:
      key: a typed key (``jax.random.key``) or a legacy one (``jax.random.PRNGKey``).
      make_strategy: ``(**hp) -> Strategy``; each ``hp`` value is a traced scalar.
      grid: name -> list of values; the configs are their cartesian product.
      samples: name -> ``(low, high, "linear" | "log")``; ``num_samples`` configs
        drawn at random (from ``key``). Give ``grid`` or ``samples``.
      seeds: runs per config; seed ``s`` uses ``result.keys[s]`` for every config.
      generations: generations per run.
      mesh: split the config x seed members over this mesh's devices (their
        number must divide configs x seeds).
      pbt: population-based training (:class:`ne.PBT`): the configs of each seed
        form one population whose members, every ``pbt.interval`` generations,
        copy better members' states and perturb their hyperparameters, inside
        the one compiled program. ``result.schedule`` records the
        hyperparameters each member followed and ``result.plot_schedule`` draws them.
    """
    import time

    key = prng_keys.as_key(key)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive int, got {seeds!r}")
    if not isinstance(generations, int) or isinstance(generations, bool) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    k_configs, k_seeds = jax.random.split(key)
    configs = configs_of(k_configs, grid, samples, num_samples)
    names = tuple(configs[0])
    members = len(configs) * seeds
    if pbt is not None:
        population_based.check(pbt, names, len(configs), generations)
        if mesh is not None:
            raise ValueError("mesh= is not supported with pbt= yet: run PBT on one device")
    if mesh is not None:
        distributed.check_divisible(members, mesh, "configs x seeds")
    keys = jax.random.split(k_seeds, seeds)
    if pbt is not None:
        return pbt_sweep(make_strategy, task, x0, configs, keys, generations, chunk_size, pbt, grid, samples)
    # Member m = config (m // seeds), seed (m % seeds).
    hp = {n: jnp.repeat(jnp.asarray([c[n] for c in configs]), seeds) for n in names}
    member_keys = jnp.tile(keys, len(configs))
    run = jax.vmap(member_run(make_strategy, task, x0, generations, chunk_size))
    split = {} if mesh is None else dict(in_shardings=NamedSharding(mesh, distributed.population_spec(mesh)))
    program, traces = _counting_jit(run, **split)
    t0 = time.perf_counter()
    states, metrics = program(member_keys, hp)
    history = {k: np.asarray(v).reshape(len(configs), seeds, generations) for k, v in metrics.items()}
    seconds = time.perf_counter() - t0
    states = jax.tree_util.tree_map(lambda x: x.reshape((len(configs), seeds) + x.shape[1:]), states)
    return SweepResult(names, configs, keys, history, states, traces(), seconds)


def _counting_jit(fn: Callable, **jit_kwargs) -> tuple[Callable, Callable[[], int]]:
    """``(jit(fn), traces)``: ``traces()`` is how many times the program was traced, i.e.
    compiled (each trace of a fresh ``jit`` is one compilation)."""
    count = [0]

    def counted(*args):
        count[0] += 1
        return fn(*args)

    return jax.jit(counted, **jit_kwargs), lambda: count[0]


def pbt_sweep(make_strategy, task, x0, configs, keys, generations, chunk_size, pbt, grid, samples):
    """The PBT mode of :func:`sweep`: one population of ``configs`` per seed key, as one program."""
    import time

    names = tuple(configs[0])
    ranges = None if samples is None else {n: parse_range(n, spec) for n, spec in samples.items()}
    population = population_based.population_run(
        member_start(make_strategy, task, x0),
        member_steps(make_strategy, task, pbt.interval, chunk_size),
        pbt,
        population_based.spaces(pbt, names, grid, ranges),
        generations // pbt.interval,
    )
    program, traces = _counting_jit(jax.vmap(population, in_axes=(0, None)))
    hp = {n: jnp.asarray([c[n] for c in configs]) for n in names}
    t0 = time.perf_counter()
    (states, _), metrics, schedule, parents = program(keys, hp)
    # [seed, config, ...] -> [config, seed, ...]
    config_first = lambda x: np.swapaxes(np.asarray(x), 0, 1)
    history = {k: config_first(v) for k, v in metrics.items()}
    seconds = time.perf_counter() - t0
    states = jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), states)
    schedule = {k: config_first(v) for k, v in schedule.items()}
    return SweepResult(
        names,
        configs,
        keys,
        history,
        states,
        traces(),
        seconds,
        schedule,
        config_first(parents),
        pbt.interval,
    )


def best_config(result: SweepResult) -> tuple[dict[str, float], float]:
    """The config with the highest final best fitness averaged over seeds, and that average."""
    scores = result.curves[:, :, -1].mean(axis=1)
    c = int(np.argmax(scores))
    return result.configs[c], float(scores[c])

"""Multi-objective benchmark runs (``ne.bench.moo_run``, ``neuroevo bench moo``).

A run evolves ``nsga2`` or ``nsga3`` on a ZDT or DTLZ problem and records, per
generation, the hypervolume of the non-dominated parents (2 or 3 objectives,
w.r.t. the problem's reference point), their IGD to the problem's true Pareto
front and the front's size. With ``out`` it writes:

- ``front.csv``: the final non-dominated set, one row per member, its minimised
  objectives ``f1..fM`` (the problem's own convention) then its variables ``x1..xn``;
- ``history.csv``: ``generation, hypervolume, igd, front_size``;
- ``front.png``: the front against the true front (2-D scatter, 3-D scatter, or
  parallel coordinates beyond 3 objectives) and the indicators per generation.
"""

from __future__ import annotations

import csv
import pathlib
import time
from typing import Any, NamedTuple

import jax
import numpy as np

from neuroevo import moo, strategies
from neuroevo.engine.loop import evolve
from neuroevo.tasks.base import Task
from neuroevo.tasks.dtlz import dtlz
from neuroevo.tasks.zdt import zdt

PROBLEMS = tuple([f"zdt{i}" for i in (1, 2, 3, 4, 6)] + [f"dtlz{i}" for i in range(1, 8)])


class MOOResult(NamedTuple):
    """What :func:`moo_run` returns; objectives are the problem's (minimised)."""

    problem: str
    front: np.ndarray  # (K, M): minimised objectives of the final non-dominated set
    solutions: np.ndarray  # (K, n): their variables
    history: dict[str, np.ndarray]  # per generation: hypervolume (M <= 3), igd, front_size
    seconds: float
    out: pathlib.Path | None


def problem(name: str, n_var: int | None = None, n_objectives: int | None = None) -> Task:
    """The task of a problem name (``zdt1``-``zdt4``, ``zdt6``, ``dtlz1``-``dtlz7``)."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; valid: {', '.join(PROBLEMS)}")
    if name.startswith("zdt"):
        if n_objectives not in (None, 2):
            raise ValueError(f"{name} has 2 objectives, got n_objectives={n_objectives}")
        return zdt(int(name[3:]), n_var)
    return dtlz(int(name[4:]), 3 if n_objectives is None else n_objectives, n_var)


def moo_run(
    problem_name: str = "zdt1",
    strategy: str = "nsga2",
    popsize: int = 100,
    generations: int = 250,
    seed: int = 0,
    n_var: int | None = None,
    n_objectives: int | None = None,
    out: str | None = None,
    **hyperparameters: Any,
) -> MOOResult:
    """Evolve ``strategy`` (a multi-objective name) on a problem; see the module docstring.

    Bad input (an unknown problem or strategy, a single-objective strategy, a bad
    hyperparameter) raises ``ValueError`` before anything is compiled or written.
    """
    task = problem(problem_name, n_var, n_objectives)
    if strategy not in strategies.names() or not strategies.multi_objective(strategy):
        valid = [n for n in strategies.names() if strategies.multi_objective(n)]
        raise ValueError(f"strategy {strategy!r} is not a multi-objective strategy; valid: {valid}")
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    if out is not None:
        check_out(out)
    m = task.info["n_objectives"]
    exact = m <= 3
    hp = dict(bounds=task.info["bounds"], n_objectives=m, **hyperparameters)
    if exact:
        hp.setdefault("ref_point", task.info["ref_point"])
    algorithm = strategies.make(strategy, popsize=popsize, **hp)
    true_front = np.asarray(task.info["pareto_front"](), np.float32)
    igd = jax.jit(lambda fitness, rank: moo.igd(fitness, true_front, rank == 0))
    distances: list[float] = []

    def record(generation, state, metrics):
        distances.append(float(igd(state.fitness, state.rank)))

    t0 = time.perf_counter()
    x0 = task.init_solution(None)
    state, history = evolve(
        jax.random.key(seed), algorithm, task, x0, generations, log_every=1, callbacks=[record]
    )
    seconds = time.perf_counter() - t0
    mask = np.asarray(state.rank == 0) & np.all(np.isfinite(np.asarray(state.fitness)), axis=1)
    front = -np.asarray(state.fitness, np.float64)[mask]
    order = np.argsort(front[:, 0], kind="stable")
    solutions = np.asarray(state.population)[mask][order]
    indicators = {"igd": np.asarray(distances, np.float32), "front_size": history["front_size"]}
    if exact:
        indicators["hypervolume"] = history["hypervolume"]
    result = MOOResult(problem_name, front[order], solutions, indicators, seconds, None)
    if out is not None:
        result = result._replace(out=write(result, out, -true_front))
    return result


OUTPUTS = ("front.csv", "history.csv", "front.png")


def check_out(out: str) -> None:
    """``out`` is a directory (or can be one) that holds none of a run's files: nothing is overwritten."""
    directory = pathlib.Path(out)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"out directory {out} is a file, not a directory")
    taken = [name for name in OUTPUTS if (directory / name).exists()]
    if taken:
        raise ValueError(
            f"out directory {out} already holds {', '.join(taken)} (another run's): "
            "pick a new or empty directory"
        )


def write(result: MOOResult, out: str, true_front: np.ndarray) -> pathlib.Path:
    """Write ``front.csv``, ``history.csv`` and ``front.png`` under ``out``; return the directory."""
    directory = pathlib.Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    m, n = result.front.shape[1], result.solutions.shape[1]
    with open(directory / "front.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{j + 1}" for j in range(m)] + [f"x{j + 1}" for j in range(n)])
        for objectives, variables in zip(result.front, result.solutions, strict=True):
            writer.writerow([f"{v:.9g}" for v in objectives] + [f"{v:.9g}" for v in variables])
    names = [k for k in ("hypervolume", "igd", "front_size") if k in result.history]
    with open(directory / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["generation", *names])
        for g in range(len(result.history["igd"])):
            writer.writerow([g + 1, *(f"{float(result.history[k][g]):.9g}" for k in names)])
    plot(result, true_front, directory / "front.png")
    return directory


def plot(result: MOOResult, true_front: np.ndarray, path: pathlib.Path) -> None:
    """The final front against the true front, and the indicators per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = result.front.shape[1]
    fig = plt.figure(figsize=(11, 4.6))
    if m == 3:
        ax = fig.add_subplot(1, 2, 1, projection="3d")
        ax.scatter(*true_front.T, s=2, c="0.7", label="true front")
        ax.scatter(*result.front.T, s=10, c="C3", label="found")
        ax.set_ylabel("f2")
        ax.set_zlabel("f3")
    else:
        ax = fig.add_subplot(1, 2, 1)
        if m == 2:
            ax.scatter(*true_front.T, s=2, c="0.6", label="true front")
            ax.scatter(*result.front.T, s=12, c="C3", label="found")
            ax.set_ylabel("f2")
        else:
            for row in result.front:
                ax.plot(np.arange(1, m + 1), row, c="C3", alpha=0.3, lw=0.8)
            ax.set_xticks(np.arange(1, m + 1))
            ax.set_ylabel("objective value")
        ax.grid(alpha=0.3)
    ax.set_xlabel("f1" if m <= 3 else "objective")
    ax.set_title(f"{result.problem}: {len(result.front)} non-dominated members")
    if m <= 3:
        ax.legend(fontsize="small")
    ax2 = fig.add_subplot(1, 2, 2)
    generations = np.arange(1, len(result.history["igd"]) + 1)
    ax2.plot(generations, result.history["igd"], c="C0", label="IGD")
    ax2.set_yscale("log")
    ax2.set_xlabel("generation")
    ax2.set_ylabel("IGD (log)")
    ax2.grid(alpha=0.3)
    if "hypervolume" in result.history:
        twin = ax2.twinx()
        twin.plot(generations, result.history["hypervolume"], c="C1", label="hypervolume")
        twin.set_ylabel("hypervolume")
        lines = ax2.get_lines() + twin.get_lines()
        ax2.legend(lines, [line.get_label() for line in lines], fontsize="small", loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

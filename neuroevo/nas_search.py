"""Architecture search runs with a run directory (``ne.nas_search.search``, ``neuroevo nas``).

A run evolves architectures of a :mod:`neuroevo.nas` space on ``ne.tasks.nas`` with
``regularized_evolution`` (validation accuracy), ``nsga2`` (accuracy and -parameters) or
random search, every generation's candidates trained at once; optionally EEEA-Net's
early-exit initial population (``max_params``). Every candidate is recorded (in the task
state, so a resumed run keeps them). At the end the best architecture (highest validation
accuracy; fewer parameters on ties) is retrained stand-alone for ``final_steps`` and its
test accuracy measured. With ``out`` the run directory holds:

- ``config.json``; ``metrics.csv`` / ``metrics.jsonl`` (one row per generation: best,
  mean accuracy, parameters, FLOPs, and NSGA-II's hypervolume and front size);
- ``checkpoints/``: an interrupted run started again with the same ``out`` and settings
  continues where it stopped (other settings raise ``ValueError``);
- ``candidates.csv``: every trained candidate (generation, genes, accuracy, parameters, FLOPs);
- ``front.png``: accuracy against parameters of every candidate, the non-dominated front
  and the best architecture;
- ``best_architecture.json`` (its genes, description, counts, validation and test accuracy)
  and ``best_params.msgpack`` (the retrained standalone network's parameters).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import nas, strategies
from neuroevo.engine.loop import run
from neuroevo.rl.rundir import _MetricsWriter, _save_params, _write_json
from neuroevo.tasks.base import Task
from neuroevo.tasks.nas import nas as nas_task

STRATEGIES = ("regularized_evolution", "nsga2", "random")
SPACES = {"cnn": nas.CNNSpace, "mlp": nas.MLPSpace}


class Archive(NamedTuple):
    """Every candidate evaluated so far (fixed capacity, filled in order)."""

    genotypes: jax.Array  # int32[capacity, n_genes]
    accuracy: jax.Array  # f32[capacity]
    params: jax.Array
    flops: jax.Array
    count: jax.Array  # int32[]: rows filled


def recording(task: Task, capacity: int, n_genes: int) -> Task:
    """``task`` whose state also keeps an :class:`Archive` of every evaluated candidate."""

    def init(key):
        rows = lambda: jnp.full((capacity,), jnp.nan, jnp.float32)
        archive = Archive(jnp.zeros((capacity, n_genes), jnp.int32), rows(), rows(), rows(), jnp.int32(0))
        return task.init(key), archive

    def evaluate(key, state, genotypes):
        inner, archive = state
        evaluation, inner = task.evaluate(key, inner, genotypes)
        at = jnp.minimum(archive.count, capacity - genotypes.shape[0])
        put = lambda table, rows: jax.lax.dynamic_update_slice_in_dim(table, rows.astype(table.dtype), at, 0)
        m = evaluation.metrics
        archive = Archive(
            put(archive.genotypes, genotypes),
            put(archive.accuracy, m["accuracy"]),
            put(archive.params, m["params"]),
            put(archive.flops, m["flops"]),
            archive.count + genotypes.shape[0],
        )
        return evaluation, (inner, archive)

    return task._replace(init=init, evaluate=evaluate)


class NASResult(NamedTuple):
    """What :func:`search` returns."""

    space: Any
    best: np.ndarray  # the best genotype
    architecture: Any  # its effective architecture
    validation_accuracy: float
    test_accuracy: float
    params: int
    flops: int
    candidates: dict  # numpy columns of every candidate: genotypes, accuracy, params, flops, generation
    front: np.ndarray  # indices of the non-dominated candidates (accuracy up, parameters down)
    history: dict
    out: str | None


def make_space(space: Any) -> Any:
    if isinstance(space, str):
        if space not in SPACES:
            raise ValueError(f"unknown space {space!r}; valid: {list(SPACES)} (or a ne.nas space object)")
        return SPACES[space]()
    return space


def make_strategy(name: str, space: Any, popsize: int, hp: dict) -> Any:
    if name not in STRATEGIES:
        raise ValueError(f"unknown NAS strategy {name!r}; valid: {list(STRATEGIES)}")
    if name == "random":
        if hp:
            raise ValueError(f"random search has no hyperparameters, got {sorted(hp)}")
        return nas.random_search(space, popsize)
    extra = dict(n_objectives=2, ref_point=(0.0, -1.0)) if name == "nsga2" else {}
    return strategies.make(name, popsize=popsize, space=space.genotype_space(), **extra, **hp)


def search(
    space: Any = "cnn",
    strategy: str = "regularized_evolution",
    *,
    data: Any = None,
    popsize: int = 16,
    generations: int = 10,
    steps: int = 100,
    batch_size: int = 32,
    learning_rate: float = 1e-2,
    max_params: int | None = None,
    final_steps: int | None = None,
    seed: int = 0,
    out: str | None = None,
    progress: bool = False,
    hp: dict | None = None,
    callbacks: tuple[Callable, ...] = (),
) -> NASResult:
    """Search an architecture (see the module docstring).

    Args:
      space: ``"cnn"``, ``"mlp"`` or a :mod:`neuroevo.nas` space.
      strategy: ``"regularized_evolution"``, ``"nsga2"`` or ``"random"``.
      data: ``None`` (digits), a :class:`neuroevo.nas.Dataset` or ``(x, y)``.
      popsize: candidates trained per generation. generations: how many.
      steps, batch_size, learning_rate: every candidate's training (Adam).
      max_params: EEEA-Net's early exit: the initial population holds only architectures
        with at most this many parameters (regularized evolution and NSGA-II).
      final_steps: the best architecture's retraining (default ``4 * steps``).
      seed: the run's seed. out: the run directory. hp: the strategy's hyperparameters.
    All bad input raises ``ValueError`` before anything is trained or written.
    """
    space = make_space(space)
    hp = dict(hp or {})
    objectives = ("accuracy", "params") if strategy == "nsga2" else ("accuracy",)
    task = nas_task(
        space, data, steps=steps, batch_size=batch_size, learning_rate=learning_rate, objectives=objectives
    )
    shape = task.info["input_shape"]
    algorithm = make_strategy(strategy, space, popsize, hp)
    if max_params is not None:
        if strategy == "random":
            raise ValueError(
                "max_params (early exit) shapes an initial population: use regularized_evolution or nsga2"
            )
        algorithm = nas.early_exit(algorithm, space, shape, max_params)
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    final_steps = 4 * steps if final_steps is None else final_steps
    nas.training.check_training(final_steps, batch_size, task.info["dataset"].x_train.shape[0])
    config = dict(
        space=repr(space),
        strategy=strategy,
        popsize=popsize,
        generations=generations,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_params=max_params,
        final_steps=final_steps,
        seed=seed,
        hp=hp,
    )
    x0 = jnp.asarray(space.smallest(), jnp.int32)
    # Probe the strategy's population size (ask's leading axis) for the archive's capacity.
    shapes = jax.eval_shape(lambda k: algorithm.ask(k, algorithm.init(k, x0))[0], jax.random.key(0))
    per_generation = shapes.shape[0]
    recorded = recording(task, per_generation * generations, space.n_genes)
    writers = list(callbacks)
    if out is not None:
        check_resumable(out, config)
        os.makedirs(out, exist_ok=True)
        _write_json(os.path.join(out, "config.json"), config)
        # A continued run keeps its rows up to the checkpoint it restores (trimmed at its first block).
        writer = _MetricsWriter(out, resume=True)
        writers.append(writer)
    result = run(
        jax.random.key(seed),
        algorithm,
        recorded,
        x0,
        generations,
        log_every=1,
        checkpoint_dir=None if out is None else os.path.abspath(os.path.join(out, "checkpoints")),
        callbacks=writers,
        progress=progress,
    )
    if out is not None:
        writer.finish(result.generations)
    archive = jax.device_get(result.task_state[1])
    n = int(archive.count)
    candidates = {
        "generation": np.repeat(np.arange(1, generations + 1), per_generation)[:n],
        "genotypes": np.asarray(archive.genotypes[:n]),
        "accuracy": np.asarray(archive.accuracy[:n]),
        "params": np.asarray(archive.params[:n]).astype(np.int64),
        "flops": np.asarray(archive.flops[:n]).astype(np.int64),
    }
    order = np.lexsort((candidates["params"], -candidates["accuracy"]))
    best = candidates["genotypes"][order[0]]
    dataset = task.info["dataset"]
    module, params = nas.train_network(
        jax.random.key(seed + 1),
        space,
        best,
        jnp.asarray(dataset.x_train),
        jnp.asarray(dataset.y_train),
        steps=final_steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    test = float(
        jnp.mean(jnp.argmax(module.apply(params, jnp.asarray(dataset.x_test)), -1) == dataset.y_test)
    )
    outcome = NASResult(
        space=space,
        best=best,
        architecture=space.architecture(best),
        validation_accuracy=float(candidates["accuracy"][order[0]]),
        test_accuracy=test,
        params=space.count_params(best, shape),
        flops=space.flops(best, shape),
        candidates=candidates,
        front=front_indices(candidates["accuracy"], candidates["params"]),
        history=result.history,
        out=out,
    )
    if out is not None:
        write(out, outcome, params)
    return outcome


def check_resumable(out: str, config: dict) -> None:
    """A run directory with checkpoints continues only with the config it was started with."""
    path = os.path.join(out, "config.json")
    if not (os.path.exists(path) and os.path.isdir(os.path.join(out, "checkpoints"))):
        return
    with open(path) as f:
        saved = json.load(f)
    changed = sorted(k for k in config if saved.get(k) != json.loads(json.dumps(config[k])))
    if changed:
        was = ", ".join(f"{k}={saved.get(k)!r}" for k in changed)
        raise ValueError(
            f"{out} holds a run started with other settings ({was}): continue it with the same settings, "
            "or use a new --out"
        )


def front_indices(accuracy: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The candidates no other has both at least the accuracy and at most the parameters of
    (strictly better in one), sorted by parameters."""
    order = np.lexsort((-accuracy, params))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, np.int64)


def write(out: str, result: NASResult, params: Any) -> None:
    """``candidates.csv``, ``front.png``, ``best_architecture.json`` and ``best_params.msgpack``."""
    c = result.candidates
    with open(os.path.join(out, "candidates.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["generation", "genes", "accuracy", "params", "flops", "architecture"])
        for i in range(len(c["accuracy"])):
            genes = c["genotypes"][i]
            w.writerow(
                [
                    int(c["generation"][i]),
                    " ".join(map(str, genes.tolist())),
                    f"{c['accuracy'][i]:.6f}",
                    int(c["params"][i]),
                    int(c["flops"][i]),
                    result.space.architecture(genes).describe(),
                ]
            )
    best = {
        "genes": result.best.tolist(),
        "architecture": result.architecture.describe(),
        "params": result.params,
        "flops": result.flops,
        "validation_accuracy": result.validation_accuracy,
        "test_accuracy": result.test_accuracy,
        "front": [
            {
                "architecture": result.space.architecture(c["genotypes"][i]).describe(),
                "accuracy": float(c["accuracy"][i]),
                "params": int(c["params"][i]),
            }
            for i in result.front
        ],
    }
    _write_json(os.path.join(out, "best_architecture.json"), best)
    _save_params(os.path.join(out, "best_params.msgpack"), params)
    with open(os.path.join(out, "summary.txt"), "w") as f:
        f.write(summary(result) + "\n")
    plot_front(result, os.path.join(out, "front.png"))


def plot_front(result: NASResult, path: str) -> None:
    """Accuracy against parameters: every candidate, the non-dominated front, the best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    c = result.candidates
    fig, ax = plt.subplots(figsize=(7, 4.5))
    scatter = ax.scatter(c["params"], c["accuracy"], c=c["generation"], s=12, cmap="viridis", alpha=0.7)
    fig.colorbar(scatter, ax=ax, label="generation")
    f = result.front
    ax.step(c["params"][f], c["accuracy"][f], where="post", color="tab:red", label="non-dominated front")
    ax.scatter(
        [result.params], [result.validation_accuracy], marker="*", s=180, color="tab:red", label="best"
    )
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{result.architecture.describe()}\ntest accuracy {result.test_accuracy:.4f}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(result: NASResult) -> str:
    """The best architecture in a few lines (printed by ``neuroevo nas``)."""
    return "\n".join(
        [
            f"best architecture: {result.architecture.describe()}",
            f"  {result.params} parameters, {result.flops} FLOPs, genes {result.best.tolist()}",
            f"  validation accuracy {result.validation_accuracy:.4f}, test accuracy after retraining "
            f"{result.test_accuracy:.4f}",
            f"  {len(result.candidates['accuracy'])} candidates trained, {len(result.front)} on the "
            "accuracy/parameters front",
        ]
    )

"""The run loop: one generation as a pure function, and ``evolve`` over blocks of them.

``evolve`` compiles a ``lax.scan`` over a block of ``log_every`` generations;
between blocks it returns to the host to log, draw progress, call callbacks and
checkpoint. Each generation's key is ``fold_in(key, generation)``, so a resumed
run continues bit-for-bit, whatever the block boundaries.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.engine import distributed
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    chunk_length,
    population,
    population_size,
    scalar_fitness,
)
from neuroevo.tasks.base import Evaluation, Task

PyTree = Any


def evaluate_population(
    strategy: Strategy,
    task: Task,
    key: jax.Array,
    state: Any,
    task_state: Any,
    genotypes: Any,
    chunk_size: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Evaluation, Any]:
    """Decode and evaluate ``genotypes`` ``chunk_size`` members at a time.

    Within a chunk members are decoded with ``vmap``; chunks follow one another
    in a ``lax.scan``, so at most one chunk of dense solutions exists at once.
    ``chunk_size`` is an upper bound: the largest divisor of the population
    size not above it is used. With a ``mesh`` each chunk's members are split
    over its devices.
    """
    n = population_size(genotypes)
    c = chunk_length(n, chunk_size)
    decode = lambda g: distributed.shard_population(population(strategy, state, g), mesh)
    if c == n:
        return task.evaluate(key, task_state, decode(genotypes))
    chunks = jax.tree_util.tree_map(lambda x: x.reshape((n // c, c) + x.shape[1:]), genotypes)
    chunks = distributed.shard_population(chunks, mesh, axis=1)

    def body(ts, g):
        evaluation, ts = task.evaluate(key, ts, decode(g))
        return ts, evaluation

    task_state, evaluation = jax.lax.scan(body, task_state, chunks)
    return jax.tree_util.tree_map(lambda x: x.reshape((n,) + x.shape[2:]), evaluation), task_state


def check_evaluation(evaluation: Evaluation, n: int) -> None:
    if not isinstance(evaluation, Evaluation):
        raise ValueError(f"task.evaluate must return (Evaluation, task_state), got {type(evaluation)}")
    fitness = evaluation.fitness  # (n,), or (n, n_objectives): the strategy's tell checks the count
    objectives = fitness.shape[1] if jnp.ndim(fitness) == 2 else None
    check_fitness(fitness, n, "task fitness", objectives)


def make_step(
    strategy: Strategy, task: Task, chunk_size: int | None = None, mesh: jax.sharding.Mesh | None = None
):
    """``step(carry, key) -> (carry, metrics)`` for one generation; carry = (state, task_state).

    With a ``mesh`` the population axis (genotypes, solutions, fitness) is split
    over its devices and the carry is replicated.
    """

    def step(carry, key):
        state, task_state = carry
        k_ask, k_eval, k_tell = jax.random.split(key, 3)
        genotypes, state = strategy.ask(k_ask, state)
        genotypes = distributed.shard_population(genotypes, mesh)
        evaluation, task_state = evaluate_population(
            strategy, task, k_eval, state, task_state, genotypes, chunk_size, mesh
        )
        check_evaluation(evaluation, population_size(genotypes))
        state = strategy.tell(k_tell, state, genotypes, evaluation.fitness, evaluation.descriptor)
        state, task_state = distributed.replicate((state, task_state), mesh)
        fitness = scalar_fitness(evaluation.fitness)  # multi-objective: each member's worst objective
        finite = jnp.isfinite(fitness)
        metrics = {
            "best": jnp.asarray(state.best_fitness, jnp.float32),
            "generation_best": jnp.max(fitness).astype(jnp.float32),
            "mean": (jnp.sum(jnp.where(finite, fitness, 0.0)) / jnp.maximum(jnp.sum(finite), 1)).astype(
                jnp.float32
            ),
        }
        strategy_metrics = getattr(state, "metrics", None)  # e.g. the GA's diversity
        if isinstance(strategy_metrics, dict):
            metrics.update({k: jnp.asarray(v, jnp.float32) for k, v in strategy_metrics.items()})
        totals = task.info.get("total_metrics", ())
        for name, value in evaluation.metrics.items():
            reduce = jnp.sum if name in totals else jnp.mean
            metrics[name] = reduce(value).astype(jnp.float32)
        return (state, task_state), metrics

    return step


class RunResult(NamedTuple):
    state: Any
    task_state: Any
    history: dict[str, np.ndarray]
    generations: int
    wall_time: float


def run(
    key: jax.Array,
    strategy: Strategy,
    task: Task,
    x0: PyTree,
    generations: int,
    *,
    chunk_size: int | None = None,
    log_every: int | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    callbacks: Sequence[Callable[[int, Any, dict], None]] = (),
    progress: bool = False,
    mesh: jax.sharding.Mesh | None = None,
) -> RunResult:
    """Like :func:`evolve`, returning the task state and timings as well."""
    from neuroevo.engine import checkpoint as ckpt

    if not isinstance(generations, int) or generations < 0:
        raise ValueError(f"generations must be a non-negative int, got {generations!r}")
    block = int(log_every) if log_every else max(1, min(generations, max(1, generations // 20)))
    if block < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    k_init, k_task, k_loop = jax.random.split(key, 3)
    init = lambda: (strategy.init(k_init, x0), task.init(k_task))
    if mesh is not None:
        check_mesh(strategy, jax.eval_shape(init)[0], mesh, chunk_size)
    # With a mesh the carry lives replicated on all its devices (of every process).
    out_whole = {} if mesh is None else dict(out_shardings=distributed.replicated(mesh))
    in_out_whole = {} if mesh is None else dict(out_whole, in_shardings=distributed.replicated(mesh))
    carry = jax.jit(init, **out_whole)()
    main = distributed.is_main_process()  # only process 0 logs (callbacks, progress bar)
    history: dict[str, list] = {}
    done = 0
    manager = None
    if checkpoint_dir is not None:
        manager = ckpt.Manager(checkpoint_dir)
        restored = manager.restore_latest(carry, jax.random.key_data(key))
        if restored is not None:
            carry, done, history = restored
    step = make_step(strategy, task, chunk_size, mesh)

    @functools.partial(jax.jit, **in_out_whole)
    def run_block(carry, start, stop):
        def body(c, i):
            g = start + i
            active = g < stop
            new_c, metrics = jax.lax.cond(
                active,
                lambda c: step(c, jax.random.fold_in(k_loop, g)),
                lambda c: (c, jax.tree_util.tree_map(jnp.zeros_like, metric_shapes)),
                c,
            )
            return new_c, metrics

        return jax.lax.scan(body, carry, jnp.arange(block))

    metric_shapes = jax.eval_shape(step, carry, k_loop)[1]
    saved = done
    bar = _Progress(generations, done) if progress and main else None
    t0 = time.perf_counter()
    # The last generation whose results every callback has seen: what Ctrl-C saves.
    safe = (carry, done, {k: len(v) for k, v in history.items()})
    try:
        with _DeferredInterrupt() as interrupt:
            while done < generations:
                n = min(block, generations - done)
                new_carry, metrics = run_block(carry, jnp.int32(done), jnp.int32(done + n))
                metrics = {k: np.asarray(v)[:n] for k, v in metrics.items()}
                carry, done = new_carry, done + n
                for name, values in metrics.items():
                    history.setdefault(name, []).extend(values.tolist())
                # Callbacks (e.g. metric files) first, checkpoint second: a run killed in
                # between resumes from the previous checkpoint and rewrites those rows.
                for callback in callbacks if main else ():
                    callback(done, carry[0], metrics)
                if manager is not None and (done - saved >= checkpoint_every or done == generations):
                    manager.save(done, carry, history, jax.random.key_data(key))
                    saved = done
                safe = (carry, done, {k: len(v) for k, v in history.items()})
                if bar is not None:
                    bar.update(done, metrics)
                if interrupt.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        if manager is not None:
            carry, done, lengths = safe
            history = {k: v[: lengths.get(k, 0)] for k, v in history.items()}
            manager.save(done, carry, history, jax.random.key_data(key))
            manager.wait()
        raise
    finally:
        if bar is not None:
            bar.close()
        if manager is not None:
            manager.wait()
    hist = {k: np.asarray(v, np.float32) for k, v in history.items()}
    return RunResult(carry[0], carry[1], hist, done, time.perf_counter() - t0)


def check_mesh(strategy: Strategy, state: Any, mesh: jax.sharding.Mesh, chunk_size: int | None) -> None:
    """Raise ``ValueError`` (before compiling) unless the population splits evenly over ``mesh``."""
    genotypes, _ = jax.eval_shape(strategy.ask, jax.random.key(0), state)
    n = population_size(genotypes)
    distributed.check_divisible(n, mesh)
    c = chunk_length(n, chunk_size)
    if c != n:
        distributed.check_divisible(c, mesh, "chunk size")


def evolve(
    key: jax.Array,
    strategy: Strategy,
    task: Task,
    x0: PyTree,
    generations: int,
    *,
    chunk_size: int | None = None,
    log_every: int | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int = 1,
    callbacks: Sequence[Callable[[int, Any, dict], None]] = (),
    progress: bool = False,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Run ``strategy`` on ``task`` from ``x0`` for ``generations``; return ``(state, history)``.

    Args:
      chunk_size: members decoded and evaluated at once (memory bound); default all.
      log_every: generations per compiled block; the host logs/checkpoints between blocks.
      checkpoint_dir: write a checkpoint (orbax, atomic) at the end of the first block
        that is at least ``checkpoint_every`` generations after the last one, and at
        the end; if the directory already holds one of this run, continue from it.
      callbacks: ``fn(generation, state, block_metrics)`` called on the host after each block.
      progress: draw a progress bar (rich).
      mesh: split the population axis (genotypes, solutions, fitness) over this
        mesh's devices (``ne.distributed.mesh()``); the strategy state stays
        replicated. The population size must be a multiple of the device count.
        With several processes only process 0 runs ``callbacks`` and the progress bar.
    ``history`` maps each metric (``best``, ``generation_best``, ``mean`` and the
    task's metrics, averaged over the population, or summed for those named in
    ``task.info["total_metrics"]``, e.g. ``env_steps``) to a per-generation array;
    a strategy state with a ``metrics`` dict of scalars (the GA's ``diversity``)
    adds those too. With multi-objective fitness (``(popsize, n_objectives)``,
    for ``nsga2``/``nsga3``) ``generation_best`` and ``mean`` are of each
    member's worst objective (:func:`~neuroevo.strategy.scalar_fitness`), and the
    state's metrics add ``front_size`` and ``hypervolume`` (given a reference point).
    """
    result = run(
        key,
        strategy,
        task,
        x0,
        generations,
        chunk_size=chunk_size,
        log_every=log_every,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        callbacks=callbacks,
        progress=progress,
        mesh=mesh,
    )
    return result.state, result.history


class _DeferredInterrupt:
    """Turns the first Ctrl-C into a request honoured at the end of the current block.

    The run then stops between blocks, where its state, callbacks and checkpoint
    agree. A second Ctrl-C interrupts at once. Only in the main thread (where
    Python delivers signals); elsewhere Ctrl-C is left alone.
    """

    def __enter__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


class _Progress:
    """A rich progress bar showing best and mean fitness."""

    def __init__(self, total: int, done: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(
            TextColumn("[bold]evolve"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._p.start()
        self._id = self._p.add_task("evolve", total=total, completed=done, info="")
        self._last = time.perf_counter()

    def update(self, done: int, metrics: dict) -> None:
        info = f"best {metrics['best'][-1]:.4g}  mean {metrics['mean'][-1]:.4g}"
        now = time.perf_counter()
        if "env_steps" in metrics:
            rate = float(np.sum(metrics["env_steps"])) / max(now - self._last, 1e-9)
            info += f"  {rate:,.0f} env-steps/s"
        self._last = now
        self._p.update(self._id, completed=done, info=info)

    def close(self) -> None:
        self._p.stop()

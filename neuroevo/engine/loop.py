"""The run loop: one generation as a pure function, and ``evolve`` over blocks of them.

``evolve`` compiles a block of ``log_every`` generations (:func:`block_runner`,
the engine's device loop); between blocks it returns to the host to log, draw
progress (:class:`neuroevo.engine.progress.Progress`), call callbacks and
checkpoint. Each generation's key is ``fold_in(key, generation)``, so a resumed
run continues bit-for-bit, whatever the block boundaries.

:func:`block_runner` also drives generations that are not one strategy on one
task: ``neuroevo.bench``'s BBOB campaign runs its step (a strategy vmapped over
every problem of a dimension) with it, in blocks, until every problem is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.engine import distributed, prng_keys
from neuroevo.engine.progress import Progress
from neuroevo.strategy import (
    DenseMembers,
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
    over its devices.    over its devices. A task with ``info["members"]`` receives each chunk as a
    :class:`~neuroevo.strategy.Members` handle (the strategy's fast path, if it
    has one) instead of decoded solutions. ``key`` may be a typed or a legacy key.
    """
    key = prng_keys.as_key(key)
    n = population_size(genotypes)
    c = chunk_length(n, chunk_size)

    def decode(g):
        if task.info.get("members") and strategy.members is not None:
            return strategy.members(state, g)
        solutions = distributed.shard_population(population(strategy, state, g), mesh)
        return DenseMembers(solutions) if task.info.get("members") else solutions

    if c == n:
        return call_evaluate(task, key, task_state, decode(genotypes))
    chunks = jax.tree_util.tree_map(lambda x: x.reshape((n // c, c) + x.shape[1:]), genotypes)
    chunks = distributed.shard_population(chunks, mesh, axis=1)

    def body(ts, g):
        evaluation, ts = call_evaluate(task, key, ts, decode(g))
        return ts, evaluation

    task_state, evaluation = jax.lax.scan(body, task_state, chunks)
    return jax.tree_util.tree_map(lambda x: x.reshape((n,) + x.shape[2:]), evaluation), task_state


def call_evaluate(task: Task, key: jax.Array, task_state: Any, solutions: PyTree) -> tuple[Evaluation, Any]:
    """``task.evaluate(...)``, checked to return ``(Evaluation, task_state)``."""
    out = task.evaluate(key, task_state, solutions)
    if isinstance(out, Evaluation) or not (isinstance(out, tuple) and len(out) == 2):
        got = "an Evaluation alone" if isinstance(out, Evaluation) else type(out).__name__
        raise ValueError(
            f"task.evaluate must return (Evaluation, task_state), got {got}: "
            f"return the task state too, e.g. `return Evaluation(fitness=f), task_state`"
        )
    return out


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
        count = jnp.sum(finite)
        mean = jnp.sum(jnp.where(finite, fitness, 0.0)) / jnp.maximum(count, 1)
        metrics = {
            "best": jnp.asarray(state.best_fitness, jnp.float32),
            "generation_best": jnp.max(fitness).astype(jnp.float32),
            # The mean of the finite members; NaN when none is finite.
            "mean": jnp.where(count > 0, mean, jnp.nan).astype(jnp.float32),
            "nonfinite": (fitness.shape[0] - count).astype(jnp.float32),
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


def block_runner(
    step: Callable[[Any, jax.Array], tuple[Any, dict]],
    key: jax.Array,
    block: int,
    metric_shapes: dict,
    until: Callable[[Any], jax.Array] | None = None,
) -> Callable[[Any, jax.Array, jax.Array], tuple[Any, dict]]:
    """The engine's device loop: ``run_block(carry, start, stop) -> (carry, metrics)``.

    It runs ``step(carry, fold_in(key, g)) -> (carry, metrics)`` for generations
    ``g = start .. stop - 1`` (at most ``block`` of them), so the block boundaries
    never change a result. ``metrics`` (shapes ``metric_shapes``) come back stacked
    over the ``block`` iterations of a ``lax.scan``, zeros for those not run. With
    ``until(carry)`` (a traced bool), a generation runs only while it is False. A
    step without metrics (``metric_shapes == {}``) runs in a ``lax.while_loop``,
    which ends the block as soon as ``until`` holds.
    """

    def active(carry, g, stop):
        return (g < stop) if until is None else (g < stop) & ~until(carry)

    if not metric_shapes:

        def run_while(carry, start, stop):
            def body(gc):
                g, c = gc
                return g + 1, step(c, jax.random.fold_in(key, g))[0]

            stop = jnp.minimum(stop, start + block)
            _, carry = jax.lax.while_loop(lambda gc: active(gc[1], gc[0], stop), body, (start, carry))
            return carry, {}

        return run_while

    def run_scan(carry, start, stop):
        def body(c, i):
            g = start + i
            return jax.lax.cond(
                active(c, g, stop),
                lambda c: step(c, jax.random.fold_in(key, g)),
                lambda c: (c, jax.tree_util.tree_map(jnp.zeros_like, metric_shapes)),
                c,
            )

        return jax.lax.scan(body, carry, jnp.arange(block))

    return run_scan


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
    from neuroevo.engine import fingerprint

    key = prng_keys.as_key(key)
    if not isinstance(generations, int) or isinstance(generations, bool) or generations < 0:
        raise ValueError(f"generations must be a non-negative int, got {generations!r}")
    if log_every is not None and (
        not isinstance(log_every, int) or isinstance(log_every, bool) or log_every < 1
    ):
        raise ValueError(f"log_every must be a positive int (or None: about 20 blocks), got {log_every!r}")
    if not isinstance(checkpoint_every, int) or isinstance(checkpoint_every, bool) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive int, got {checkpoint_every!r}")
    block = log_every or max(1, min(generations, max(1, generations // 20)))
    k_init, k_task, k_loop = jax.random.split(key, 3)
    init = lambda: (strategy.init(k_init, x0), task.init(k_task))
    abstract = jax.eval_shape(init)
    if mesh is not None:
        check_mesh(strategy, abstract[0], mesh, chunk_size)
    step = make_step(strategy, task, chunk_size, mesh)
    manager = None
    if checkpoint_dir is not None:
        # What produced the run, compared with a checkpoint's before anything is restored.
        run_fingerprint = fingerprint.fingerprint(
            jax.random.key_data(key), strategy, task, x0, abstract, make_step(strategy, task), k_loop
        )
        manager = ckpt.Manager(checkpoint_dir, fingerprint=run_fingerprint)
    # With a mesh the carry lives replicated on all its devices (of every process).
    out_whole = {} if mesh is None else dict(out_shardings=distributed.replicated(mesh))
    in_out_whole = {} if mesh is None else dict(out_whole, in_shardings=distributed.replicated(mesh))
    carry = jax.jit(init, **out_whole)()
    main = distributed.is_main_process()  # only process 0 logs (callbacks, progress bar)
    history: dict[str, list] = {}
    done = 0
    if manager is not None:
        try:
            restored = manager.restore_latest(carry, jax.random.key_data(key))
        except BaseException:
            manager.close()
            raise
        if restored is not None:
            carry, done, history = restored
    step = make_step(strategy, task, chunk_size, mesh)
    metric_shapes = jax.eval_shape(step, carry, k_loop)[1]
    run_block = jax.jit(block_runner(step, k_loop, block, metric_shapes), **in_out_whole)
    saved = done
    bar = None
    if progress and main:
        bar = Progress()
        bar.add("evolve", generations, done)
    t0 = time.perf_counter()
    # The last generation whose results every callback has seen: what Ctrl-C saves.
    safe = (carry, done, {k: len(v) for k, v in history.items()})
    with _DeferredInterrupt() as interrupt:
        try:
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
                    with interrupt.deferred():  # Ctrl-C never cuts a checkpoint short
                        manager.save(done, carry, history, jax.random.key_data(key))
                    saved = done
                safe = (carry, done, {k: len(v) for k, v in history.items()})
                if bar is not None:
                    bar.update("evolve", done, _progress_info(metrics, time.perf_counter() - bar.last_update))
                if interrupt.requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if manager is not None:
                with interrupt.deferred():
                    carry, done, lengths = safe
                    history = {k: v[: lengths.get(k, 0)] for k, v in history.items()}
                    manager.save(done, carry, history, jax.random.key_data(key))
                    manager.wait()
            raise
        finally:
            if bar is not None:
                bar.close()
            if manager is not None:
                with interrupt.deferred():
                    manager.close()
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
      key: a typed key (``jax.random.key``) or a legacy one (``jax.random.PRNGKey``).
      chunk_size: members decoded and evaluated at once (memory bound); default all.
      log_every: generations per compiled block (a positive int; None: about 20 blocks);
        the host logs/checkpoints between blocks.
      checkpoint_dir: write a checkpoint (orbax, atomic, checksummed) at the end of the
        first block that is at least ``checkpoint_every`` generations after the last
        one, and at the end; if the directory already holds one of this run, continue
        from it. A checkpoint records the run's fingerprint (key, strategy name and
        hyperparameters when built by ``ne.strategies.make``, population size, x0's
        and the state's leaves, the task's identity and a digest of the traced
        generation) and one written by another run is refused with a ``ValueError``
        naming what differs. A strategy built without ``make`` has no recorded
        hyperparameters: a changed value is caught only through the traced program
        (where it is a constant). A corrupt newest checkpoint is skipped with a
        warning, resuming from the previous one.
      callbacks: ``fn(generation, state, block_metrics)`` called on the host after each block.
      progress: draw a progress bar (rich).
      mesh: split the population axis (genotypes, solutions, fitness) over this
        mesh's devices (``ne.distributed.mesh()``); the strategy state stays
        replicated. The population size must be a multiple of the device count.
        With several processes only process 0 runs ``callbacks`` and the progress bar.
    ``history`` maps each metric (``best``, ``generation_best``, ``mean`` of the
    finite members (NaN when none is), ``nonfinite`` (members whose fitness is NaN
    or infinite) and the
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
    agree. A second Ctrl-C interrupts at once, except while a checkpoint is
    being written (:meth:`deferred`). Only in the main thread (where
    Python delivers signals); elsewhere Ctrl-C is left alone.
    """

    def __enter__(self):
        self.requested = False
        self._critical = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and not self._critical:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def deferred(self):
        """Within this block every Ctrl-C is only recorded (a checkpoint is being written)."""
        critical, self._critical = self._critical, True
        try:
            yield
        finally:
            self._critical = critical

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _progress_info(metrics: dict, seconds: float) -> str:
    """Best and mean fitness of a block's last generation (and env-steps/s when counted)."""
    info = f"best {metrics['best'][-1]:.4g}  mean {metrics['mean'][-1]:.4g}"
    if "env_steps" in metrics:
        info += f"  {float(np.sum(metrics['env_steps'])) / max(seconds, 1e-9):,.0f} env-steps/s"
    return info

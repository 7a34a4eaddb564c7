"""The compiled program of one dimension of a BBOB campaign.

ONE float64 program per dimension: the strategy is vmapped over all (function,
instance) problems of the dimension; the population of the problems of function
``f`` is evaluated by ``f``'s evaluator vmapped over its instances (instance data
stacked as arguments), so all functions share the program without evaluating one
another. The problems are a :class:`~neuroevo.tasks.base.Task` (:func:`coco_task`,
its state the COCO :class:`~neuroevo.bench.record.Record`); the generations run on
the device in blocks of the engine's loop (:func:`neuroevo.engine.loop.block_runner`)
until every problem is done, and the host sees only the progress and the stop test
between blocks.

The fast path is the strategy's optional ``live`` capability
(:class:`neuroevo.strategy.Live`, IPOP CMA-ES's): a generation samples, evaluates
and recombines only the chunks that some unfinished problem has live, and draws
normals for the live members of unfinished problems only (:func:`live_normals`).
A strategy without it has every member live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import rng
from neuroevo.bbob import NoisyBBOBFunction, function
from neuroevo.bbob import noisy as noise_models
from neuroevo.bench import record as coco_record
from neuroevo.bench.results import LEVELS, DimensionResult, tdat_evaluations
from neuroevo.engine.loop import block_runner
from neuroevo.strategy import Strategy, population_size
from neuroevo.tasks.base import Evaluation, Task


class Job(NamedTuple):
    """One dimension of a campaign, as a worker process receives it (picklable)."""

    strategy: str
    dimension: int
    functions: list[int]
    instances: list[int]
    budget: int
    seed: int
    hyperparameters: dict  # complete: the campaign's defaults filled in
    block: int  # generations per compiled block


class Members(NamedTuple):
    """The solutions a campaign's task evaluates: ``x`` (P, capacity, d), of which the first
    ``live[p]`` members of problem ``p`` are live (0 for a problem that is done)."""

    x: jax.Array
    live: jax.Array


class Carry(NamedTuple):
    """What a generation carries: the P strategy states (one pytree, a leading P axis) and the
    COCO record."""

    state: Any
    record: coco_record.Record


def live_normals(key, counts, capacity, dim, dtype, block=2048):
    """(P, capacity, dim) standard normals: the first ``counts[p]`` rows of each problem drawn,
    the others zero.

    Only ``sum(counts)`` rows are drawn (in blocks of ``block`` rows, laid end to end
    and handed out by offset), not ``P * capacity``: a vmapped ``ask`` would draw the
    largest live population for every problem, finished ones included. The words come
    from ``rng.hash_bits`` and the normals from ``rng.normal_from_words`` (float32,
    2**-23 resolution), computed on flat arrays: XLA's CPU loops vectorise a flat array,
    not rows of ``dim`` (about three times slower for d = 10).
    """
    P = counts.shape[0]
    rows = -(-P * capacity // block) * block
    n_blocks = (jnp.sum(counts) + block - 1) // block
    size = block * dim

    def body(i, pool):
        z = rng.normal_from_words(rng.hash_bits(key, size, offset=i * size))
        return jax.lax.dynamic_update_slice_in_dim(pool, z, i * size, axis=0)

    pool = jax.lax.fori_loop(0, n_blocks, body, jnp.zeros((rows * dim,), jnp.float32)).reshape(rows, dim)
    j = jnp.arange(capacity)
    live = j[None, :] < counts[:, None]
    idx = jnp.where(live, (jnp.cumsum(counts) - counts)[:, None] + j[None, :], 0)
    return jnp.where(live[..., None], pool[idx].astype(dtype), 0.0)


def evaluator(group: list):
    """``measure(key, xs, data)`` of one function's instances (``xs`` (n_inst, m, d), ``data``
    the instances' :meth:`~neuroevo.bbob.BBOBFunction.data` stacked): ``(f - fopt,)`` for a
    noiseless function, ``(measured, noise-free)`` for a noisy one (the noise model's draws
    from ``key`` and the boundary penalty added; COCO records the noise-free value)."""
    f0 = group[0]
    core = f0.core if isinstance(f0, NoisyBBOBFunction) else f0

    def noise_free(xs, data):
        return jax.vmap(core.delta_with)(xs, data)

    if core is f0:
        return lambda key, xs, data: (noise_free(xs, data),)

    def measure(key, xs, data):
        g = noise_free(xs, data)
        draws = noise_models.sample_draws(key, f0.model, g.shape, g.dtype)
        pen = noise_models.penalty(xs)
        return noise_models.apply_model(g, f0.model, f0.params, draws) + pen, g + pen

    return measure


def coco_task(groups: list, data: list, chunk: int, budget: int, tdat_evals: np.ndarray) -> Task:
    """The problems of a dimension as a task: solutions are :class:`Members`, the state is the
    COCO :class:`~neuroevo.bench.record.Record`, fitness ``-(measured f - fopt)`` (P, capacity),
    -inf where not computed (members beyond the live ones may be computed: their chunk
    holds live members of another instance; the strategy ignores them).

    Each function's instances evaluate only the chunks of ``chunk`` members that one of
    them has live (a restart strategy's capacity is mostly dead, and the functions are in
    different restart regimes). ``data``: per function, its instances' data stacked.
    """
    n_inst = len(groups[0])
    noisy = isinstance(groups[0][0], NoisyBBOBFunction)
    measures = [evaluator(group) for group in groups]

    def deltas(key, x, need):
        """(measured, noise-free) f - fopt (P, capacity), inf where not computed."""
        cap = x.shape[1]
        c = chunk if cap % chunk == 0 else cap
        parts = []
        for g, measure in enumerate(measures):
            xs = x[g * n_inst : (g + 1) * n_inst]

            def body(i, out, xs=xs, measure=measure, g=g):
                k = jax.random.fold_in(jax.random.fold_in(key, g), i) if noisy else None
                part = measure(k, jax.lax.dynamic_slice_in_dim(xs, i * c, c, axis=1), data[g])
                return tuple(
                    jax.lax.dynamic_update_slice_in_dim(d, p, i * c, axis=1)
                    for d, p in zip(out, part, strict=True)
                )

            chunks = (jnp.max(need[g * n_inst : (g + 1) * n_inst]) + c - 1) // c
            empty = jnp.full(xs.shape[:2], jnp.inf, x.dtype)
            parts.append(jax.lax.fori_loop(0, chunks, body, (empty, empty) if noisy else (empty,)))
        measured = jnp.concatenate([p[0] for p in parts], axis=0)
        return measured, (jnp.concatenate([p[1] for p in parts], axis=0) if noisy else measured)

    def evaluate(key, record: coco_record.Record, members: Members):
        measured, delta = deltas(key, members.x, members.live)
        record = coco_record.update(record, delta, measured, members.live, budget, LEVELS, tdat_evals)
        return Evaluation(fitness=-measured), record

    P = len(groups) * n_inst
    return Task(
        init=lambda key: coco_record.start(P, len(LEVELS), len(tdat_evals), noisy),
        evaluate=evaluate,
        info={"name": "bbob campaign", "problems": P},
    )


def batched(strategy: Strategy, problems: int, capacity: int, dim: int, chunk: int):
    """``(ask, tell)`` of ``strategy`` vmapped over ``problems`` states, each given the live
    members per problem (0 when done). With the ``live`` capability they sample and read
    only the chunks of ``chunk`` members some unfinished problem has live (an unbatched
    bound, so that the chunk loop is not vmapped), and the normals are drawn for the live
    members of unfinished problems only (one pool: :func:`live_normals`)."""
    live = strategy.live
    keys = lambda key: jax.random.split(key, problems)

    if live is None:

        def ask(key, state, counts):
            return jax.vmap(strategy.ask)(keys(key), state)

        def tell(key, state, genotypes, fitness, counts):
            return jax.vmap(strategy.tell)(keys(key), state, genotypes, fitness)

        return ask, tell

    def ask(key, state, counts):
        n = jnp.max((counts + chunk - 1) // chunk)
        z = live_normals(key, counts, capacity, dim, jnp.float64)
        return jax.vmap(lambda k, s, z: live.ask(k, s, n, z))(keys(key), state, z)

    def tell(key, state, genotypes, fitness, counts):
        n = jnp.max((counts + chunk - 1) // chunk)
        return jax.vmap(lambda k, s, g, f: live.tell(k, s, g, f, n))(keys(key), state, genotypes, fitness)

    return ask, tell


def prepare(job: Job, compile_options: dict) -> Callable[[Callable | None], DimensionResult]:
    """Build and compile the program of ``job``'s dimension (in float64: call it with
    ``jax_enable_x64``); returns ``run(progress) -> DimensionResult``.

    ``compile_options``: XLA compiler options (:func:`neuroevo.bench.parallel.compile_options`).
    ``progress(dim, generation, done, problems, evaluations)`` is called between blocks.
    """
    from neuroevo import strategies

    dim, budget, n_inst = job.dimension, job.budget, len(job.instances)
    groups = [[function(f, dim, i) for i in job.instances] for f in job.functions]
    P = len(job.functions) * n_inst
    strategy = strategies.make(job.strategy, **job.hyperparameters)
    cores = [[getattr(g, "core", g) for g in group] for group in groups]
    data = [
        jax.tree_util.tree_map(lambda *a: jnp.asarray(np.stack(a)), *[g.data(np.float64) for g in group])
        for group in cores
    ]
    fopt = np.array([g.fopt for group in groups for g in group])
    tdat_e = tdat_evaluations(dim, budget)

    def init_states(key):
        k0, k1 = jax.random.split(key)
        x0 = jax.random.uniform(k0, (P, dim), jnp.float64, -4.0, 4.0)
        return jax.vmap(strategy.init)(jax.random.split(k1, P), x0)

    one = jax.eval_shape(lambda: strategy.init(jax.random.key(0), jnp.zeros((dim,), jnp.float64)))
    capacity = population_size(jax.eval_shape(lambda s: strategy.ask(jax.random.key(0), s)[0], one))
    chunk = strategy.live.chunk(one) if strategy.live is not None else capacity
    count = strategy.live.count if strategy.live is not None else lambda s: jnp.int32(capacity)
    ask, tell = batched(strategy, P, capacity, dim, chunk)
    # a strategy that stops (CMA-ES with no restart left) begins again while budget is left
    # (cycle=True restarts never stop, and need no such merge: 0.3 s less compilation)
    restartable = hasattr(one, "stop") and not job.hyperparameters.get("cycle")

    def step(task):
        def generation(carry: Carry, key) -> tuple[Carry, dict]:
            k_ask, k_tell = jax.random.split(key)
            lam = jax.vmap(count)(carry.state)
            counts = jnp.where(carry.record.done, 0, lam)
            genotypes, state = ask(k_ask, carry.state, counts)
            x = jax.vmap(lambda s, g: jax.vmap(strategy.decode, in_axes=(None, 0))(s, g))(state, genotypes)
            evaluation, record = task.evaluate(
                jax.random.fold_in(k_tell, 2), carry.record, Members(x, counts)
            )
            dead = jnp.arange(capacity)[None, :] >= lam[:, None]  # the strategy ignores them
            state = tell(k_tell, state, genotypes, jnp.where(dead, -jnp.inf, evaluation.fitness), counts)
            if restartable:
                again = state.stop & ~record.done

                def begin_again(state):
                    fresh = init_states(jax.random.fold_in(k_tell, 1))
                    where = lambda a, b: jnp.where(again.reshape(again.shape + (1,) * (a.ndim - 1)), a, b)
                    return jax.tree_util.tree_map(where, fresh, state)

                # rare (a few problems, a few times a run): not merged into every generation
                state = jax.lax.cond(jnp.any(again), begin_again, lambda state: state, state)
            return Carry(state, record), {}

        return generation

    def program(carry: Carry, data, fresh, start):
        task = coco_task(groups, data, chunk, budget, tdat_e)
        key = jax.random.fold_in(jax.random.key(job.seed), dim)
        # the first call builds the initial carry (``carry`` is then zeros of its shapes): in
        # this program, not in a second compiled one (about 0.6 s of compilation saved)
        initial = lambda _: Carry(init_states(key), task.init(key))
        carry = jax.lax.cond(fresh, initial, lambda c: c, carry)
        all_done = lambda c: jnp.all(c.record.done)
        run_block = block_runner(step(task), jax.random.fold_in(key, 1), job.block, {}, until=all_done)
        return run_block(carry, start, start + job.block)[0]

    t0 = time.perf_counter()
    task = coco_task(groups, data, chunk, budget, tdat_e)
    shapes = jax.eval_shape(lambda: Carry(init_states(jax.random.key(0)), task.init(None)))
    carry0 = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, a.dtype), shapes)
    compiled = (
        jax.jit(program).lower(carry0, data, True, np.int32(0)).compile(compiler_options=compile_options)
    )
    compile_seconds = time.perf_counter() - t0

    def run(progress) -> DimensionResult:
        t0 = time.perf_counter()
        carry, fresh, start = carry0, True, 0
        while True:
            carry, fresh = compiled(carry, data, fresh, np.int32(start)), False
            start += job.block
            done = np.asarray(carry.record.done)
            if progress is not None:
                evaluations = int(np.asarray(carry.record.evaluations).sum())
                progress(dim, int(carry.record.generations), int(done.sum()), P, evaluations)
            if done.all():
                break
        seconds = time.perf_counter() - t0 + compile_seconds
        r = jax.device_get(carry.record)
        measured = {}
        if r.measured:
            m = r.measured
            measured = dict(
                first_measured=np.asarray(m.first, float),
                hit_measured=np.asarray(m.hit, float),
                hit_best_measured=np.asarray(m.hit_best, float),
                tdat_best_measured=np.asarray(m.tdat_best, float),
                best_measured=np.asarray(m.best, float),
            )
        return DimensionResult(
            dimension=dim,
            fids=np.repeat(np.asarray(job.functions), n_inst),
            instances=np.tile(np.asarray(job.instances), len(job.functions)),
            fopt=fopt,
            budget=budget,
            hit_evals=np.asarray(r.hit_evals, float),
            hit_delta=np.asarray(r.hit_delta, float),
            first_delta=np.asarray(r.first, float),
            final_evals=np.asarray(r.evaluations, np.int64),
            best_delta=np.asarray(r.best, float),
            tdat_evals=tdat_e,
            tdat_best=np.asarray(r.tdat_best, float),
            seconds=seconds,
            generations=int(r.generations),
            compile_seconds=compile_seconds,
            **measured,
        )

    return run

"""EGGROLL's population forward against the physical limit: one shared set of weights.

For each workload, in one process, alternating, best of N:

- ``shared``: the flax module applied once with shared weights to the batch
  (one input per member): the throughput of plain inference, the limit;
- ``eggroll forward``: ``Members.apply`` of an ``eggroll`` population (rank 1)
  on the same batch, its factors drawn beforehand (what a rollout step costs);
- ``eggroll draw+forward``: the same with the factors drawn in the call
  (``ne.population_apply``);
- ``eggroll generation``: ask, draw, forward, fitness, tell;
- ``openai_es forward`` (dense members decoded beforehand) and ``openai_es
  generation`` (ask, decode, forward, tell) on the MLP workload.

Workloads: MLP 400-256-256-6 at population 1024; the MinAtar CNN policy body
(10x10x4 input, 16 3x3 filters, 256-256 hidden, 6 outputs) at population
1024; the ``text`` task's default model (a GRU of width 256) and its loss at
population 256, one 64-character window per member. Before timing, ``population_apply`` is checked against
``vmap`` over ``decode`` + ``apply`` (max relative error <= 1e-4).

Then, in a subprocess (its own peak RSS): one ``eggroll`` generation of a
10,000,000-parameter MLP at population 4096, evaluated ``--memory-chunk``
(default 1024) members at a time as ``chunk_size`` does (target < 2 GiB;
without a chunk the 4096 members' inputs, activations and low-rank terms are
all alive at once: 2.44 GiB on 2026-12-08).

Targets (exit 1 on a miss): forward >= 0.5x the shared-weight throughput on
each workload (goal 0.9x); eggroll >= 10x faster than openai_es per generation
on the MLP; peak RSS < 2 GiB.

    python -m benchmarks.lowrank [--repeats 10] [--skip-memory] [--workloads mlp,cnn,text]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import neuroevo as ne
from benchmarks.common import machine, timed_pair

FORWARD_TARGET, FORWARD_GOAL, ES_TARGET, MEMORY_LIMIT_GIB = 0.5, 0.9, 10.0, 2.0


def workload(name: str):
    """``(module apply, params, per-member inputs, population size)``."""
    key = jax.random.key(0)
    if name == "mlp":
        module = ne.nn.MLP(hidden=(256, 256), out=6)
        x = jax.random.normal(key, (1024, 400))
        return module.apply, module.init(key, x[0]), (x,), 1024
    if name == "cnn":
        module = ne.nn.CNN(channels=(16,), hidden=(256, 256), out=6)
        x = (jax.random.uniform(key, (1024, 10, 10, 4)) < 0.1).astype(jnp.float32)
        return module.apply, module.init(key, x[0]), (x,), 1024
    if name == "text":
        task = ne.tasks.text()
        seq = task.info["sample"](key, 256)  # one 64-character window (+ its next character) per member
        return task.info["loss"], task.init_solution(key), (seq,), 256
    raise ValueError(f"unknown workload {name!r}; valid: mlp, cnn, text")


def max_rel_error(apply, strategy, state, genotypes, args) -> float:
    """``population_apply`` against ``vmap(decode)`` + ``apply`` on the first 64 members."""
    take = lambda t: jax.tree_util.tree_map(lambda x: x[:64], t)  # noqa: E731
    genotypes, args = take(genotypes), take(args)
    fast = jax.jit(lambda s, g, *a: ne.population_apply(strategy, s, g, apply, *a))(state, genotypes, *args)
    slow = jax.jit(lambda s, g, *a: jax.vmap(lambda g, *a: apply(strategy.decode(s, g), *a))(g, *a))(
        state, genotypes, *args
    )
    return float(jnp.max(jnp.abs(fast - slow)) / jnp.max(jnp.abs(slow)))


def generation_fn(strategy, apply):
    """ask, evaluate (fitness: minus the mean square output), tell: one generation."""

    def generation(state, key, *args):
        k_ask, k_tell = jax.random.split(key)
        genotypes, state = strategy.ask(k_ask, state)
        out = ne.population_apply(strategy, state, genotypes, apply, *args)
        fitness = -jnp.mean(jnp.square(out.reshape(out.shape[0], -1)), axis=1)
        return strategy.tell(k_tell, state, genotypes, fitness)

    return jax.jit(generation)


def measure(name: str, repeats: int) -> dict:
    apply, params, args, n = workload(name)
    strategy = ne.strategies.make("eggroll", popsize=n, rank=1, sigma=0.05)
    state = strategy.init(jax.random.key(1), params)
    genotypes, state = strategy.ask(jax.random.key(2), state)
    error = max_rel_error(apply, strategy, state, genotypes, args)
    row = {"workload": name, "popsize": n, "max_rel_error": error}
    if not error <= 1e-4:
        row["exact"] = False
        return row
    members = jax.jit(lambda s, g: ne.strategy.members(strategy, s, g))(state, genotypes)
    shared = jax.jit(lambda p, *a: jax.vmap(apply, in_axes=(None,) + (0,) * len(a))(p, *a))
    forward = jax.jit(lambda m, *a: m.apply(apply, *a))
    drawn = jax.jit(lambda s, g, *a: ne.population_apply(strategy, s, g, apply, *a))
    _, t_shared, _, t_forward = timed_pair(
        lambda: shared(params, *args), lambda: forward(members, *args), repeats=repeats
    )
    _, t_shared2, _, t_drawn = timed_pair(
        lambda: shared(params, *args), lambda: drawn(state, genotypes, *args), repeats=repeats
    )
    gen = generation_fn(strategy, apply)
    _, t_shared3, _, t_gen = timed_pair(
        lambda: shared(params, *args), lambda: gen(state, jax.random.key(3), *args), repeats=repeats
    )
    row.update(
        shared_ms=1e3 * min(t_shared, t_shared2, t_shared3),
        forward_ms=1e3 * t_forward,
        draw_forward_ms=1e3 * t_drawn,
        generation_ms=1e3 * t_gen,
        forward_ratio=t_shared / t_forward,
        draw_forward_ratio=t_shared2 / t_drawn,
        generation_ratio=t_shared3 / t_gen,
    )
    if name == "mlp":
        es = ne.strategies.make("openai_es", popsize=n, sigma=0.05)
        es_state = es.init(jax.random.key(1), params)
        es_genotypes, es_state = es.ask(jax.random.key(2), es_state)
        decoded = jax.jit(lambda s, g: ne.population(es, s, g))(es_state, es_genotypes)
        dense_forward = jax.jit(lambda d, *a: jax.vmap(apply)(d, *a))
        _, t_shared4, _, t_dense = timed_pair(
            lambda: shared(params, *args), lambda: dense_forward(decoded, *args), repeats=repeats
        )
        del decoded
        es_gen = generation_fn(es, apply)
        _, t_egg, _, t_es = timed_pair(
            lambda: gen(state, jax.random.key(3), *args),
            lambda: es_gen(es_state, jax.random.key(3), *args),
            repeats=max(3, repeats // 3),
        )
        row.update(
            openai_es_forward_ms=1e3 * t_dense,
            openai_es_forward_ratio=t_shared4 / t_dense,
            openai_es_generation_ms=1e3 * t_es,
            eggroll_generation_ms_vs_es=1e3 * t_egg,
            speedup_vs_openai_es=t_es / t_egg,
        )
    return row


# --------------------------------------------------------------------------- #
# Memory: one generation of a 10M-parameter MLP at population 4096, in a subprocess.
# --------------------------------------------------------------------------- #

MEMORY_MLP = dict(inputs=784, hidden=(2048, 2048, 2048), out=10)


def memory_child(popsize: int, chunk: int | None) -> None:
    module = ne.nn.MLP(hidden=MEMORY_MLP["hidden"], out=MEMORY_MLP["out"], activation=jax.nn.relu)
    x = jnp.ones((MEMORY_MLP["inputs"],), jnp.float32)
    params = module.init(jax.random.key(0), x)
    count = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))

    def evaluate(key, task_state, solutions):
        members = ne.strategy.as_members(solutions)
        inputs = jnp.broadcast_to(x, (members.size,) + x.shape)
        out = members.apply(module.apply, inputs)
        return ne.tasks.Evaluation(fitness=-jnp.mean(out * out, axis=1)), task_state

    task = ne.tasks.Task(init=lambda key: (), evaluate=evaluate, info={"members": True})
    strategy = ne.strategies.make("eggroll", popsize=popsize, rank=1, sigma=0.01)
    t = time.perf_counter()
    state, history = ne.evolve(jax.random.key(0), strategy, task, params, 1, chunk_size=chunk)
    jax.block_until_ready(state.mean)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(json.dumps({"params": count, "popsize": popsize, "chunk": chunk, "peak_gib": peak, "s": seconds}))


def memory(popsize: int, chunk: int | None) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.lowrank", "--child-memory", "--memory-popsize", str(popsize)]
    if chunk:
        cmd += ["--memory-chunk", str(chunk)]
    env = dict(os.environ)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-3:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--workloads", default="mlp,cnn,text")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--memory-popsize", type=int, default=4096)
    p.add_argument("--memory-chunk", type=int, default=1024, help="chunk_size of the memory run (0: none)")
    p.add_argument("--child-memory", action="store_true")
    a = p.parse_args(argv)
    if a.child_memory:
        memory_child(a.memory_popsize, a.memory_chunk)
        return 0
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    rows = []
    for name in a.workloads.split(","):
        row = measure(name, a.repeats)
        print(json.dumps(row))
        rows.append(row)
    ok = True
    parts = []
    for row in rows:
        if "forward_ratio" not in row:
            ok = False
            parts.append(f"{row['workload']} NOT EXACT (max rel error {row['max_rel_error']:.2e})")
            continue
        ok &= row["forward_ratio"] >= FORWARD_TARGET
        parts.append(f"{row['workload']} {row['forward_ratio']:.2f}x")
        if "speedup_vs_openai_es" in row:
            ok &= row["speedup_vs_openai_es"] >= ES_TARGET
            parts.append(f"openai_es dense {row['openai_es_forward_ratio']:.3f}x")
    mem = ""
    if not a.skip_memory:
        r = memory(a.memory_popsize, a.memory_chunk)
        print(f"memory: {json.dumps(r)}")
        ok &= r.get("peak_gib", float("inf")) < MEMORY_LIMIT_GIB
        chunk = a.memory_chunk or "none"
        peak = r.get("peak_gib", float("nan"))
        mem = f"; 10M-param MLP x {a.memory_popsize} (chunk {chunk}): peak {peak:.2f} GiB (< 2)"
    speed = [f"{r['speedup_vs_openai_es']:.0f}x" for r in rows if "speedup_vs_openai_es" in r]
    vs_es = f"; eggroll vs openai_es per generation (MLP): {speed[0]} (>= 10x)" if speed else ""
    print(
        f"lowrank: forward throughput vs shared weights: {', '.join(parts)} "
        f"(target >= {FORWARD_TARGET}x, goal >= {FORWARD_GOAL}x){vs_es}{mem}; "
        f"load {os.getloadavg()[0]:.2f}; {'all targets met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of one OpenAI-ES generation on a large flat parameter vector.

Headline: neuroevo ``openai_es``, population 4096, 1,000,000 parameters (sphere),
one full generation (ask, chunked decode + evaluation, chunked tell). The dense
population alone would be 16 GiB; the target is a peak RSS under 2 GiB, and at
most ``base + 1.3 x`` one chunk of dense members (``base``: the process's peak RSS
before the run, with JAX, neuroevo and x0 loaded), so that only one dense copy of
a chunk is alive at a time.
Side by side, at a population evosax can hold (256), neuroevo and evosax
``Open_ES`` on the same workload. Each configuration runs in its own process so
that its peak RSS is its own.

    python benchmarks/memory.py [--popsize 4096] [--dim 1000000] [--chunk 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

LIMIT_GIB = 2.0
CHUNK_FACTOR = 1.3  # peak - base <= 1.3 x one chunk's dense members


def child(which: str, popsize: int, dim: int, chunk: int) -> None:
    import jax
    import jax.numpy as jnp

    if which == "neuroevo":
        import neuroevo as ne
    x0 = jax.block_until_ready(jnp.zeros((dim,), jnp.float32) + 0.5)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    t = time.perf_counter()
    if which == "neuroevo":
        strategy = ne.strategies.openai_es(popsize, sigma=0.02)  # dense=None: compact here
        task = ne.tasks.function(ne.tasks.sphere)
        state, history = ne.evolve(jax.random.key(0), strategy, task, x0, 1, chunk_size=chunk)
        best = float(history["best"][-1])
    else:
        import optax
        from evosax.algorithms import Open_ES

        es = Open_ES(popsize, x0, optimizer=optax.adam(0.01), std_schedule=optax.constant_schedule(0.02))
        params = es.default_params

        @jax.jit
        def one_generation(key):
            state = es.init(key, x0, params)
            pop, state = es.ask(key, state, params)
            fit = jnp.sum(pop * pop, axis=1)
            state, _ = es.tell(key, pop, fit, state, params)
            return -state.best_fitness

        best = float(one_generation(jax.random.key(0)))
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    row = {"which": which, "popsize": popsize, "dim": dim, "chunk": chunk, "base_gib": base, "peak_gib": peak}
    row.update(s=seconds, best=best)
    print(json.dumps(row))


def measure(which: str, popsize: int, dim: int, chunk: int) -> dict:
    cmd = [sys.executable, __file__, "--child", which, "--popsize", str(popsize), "--dim", str(dim)]
    cmd += ["--chunk", str(chunk)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"which": which, "popsize": popsize, "dim": dim, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--popsize", type=int, default=4096)
    p.add_argument("--dim", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=32)
    p.add_argument("--side-popsize", type=int, default=256)
    p.add_argument("--child", choices=["neuroevo", "evosax"])
    a = p.parse_args(argv)
    if a.child:
        child(a.child, a.popsize, a.dim, a.chunk)
        return 0
    dense_gib = a.popsize * a.dim * 4 / 2**30
    print(f"workload: openai_es, one generation, {a.dim:,} parameters, sphere")
    for which in ("neuroevo", "evosax"):
        r = measure(which, a.side_popsize, a.dim, a.chunk)
        print(f"side by side, popsize {a.side_popsize}: {which:8s} {json.dumps(r)}")
    r = measure("neuroevo", a.popsize, a.dim, a.chunk)
    print(f"headline, popsize {a.popsize}: {json.dumps(r)} (dense population would be {dense_gib:.1f} GiB)")
    chunk_gib = a.chunk * a.dim * 4 / 2**30
    peak, base = r.get("peak_gib", float("nan")), r.get("base_gib", float("nan"))
    over = (peak - base) / chunk_gib
    ok = peak < LIMIT_GIB and over <= CHUNK_FACTOR
    print(
        f"peak RSS for popsize {a.popsize} x {a.dim:,} params, chunk {a.chunk}: {peak:.2f} GiB "
        f"= base {base:.2f} + {over:.2f} x the chunk's dense members ({chunk_gib:.2f} GiB) "
        f"(targets: < {LIMIT_GIB} GiB and <= base + {CHUNK_FACTOR} x chunk)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""How large a population one accelerator runs per generation, and how fast (issue 8's GPU check).

Run on a GPU (``pip install -e '.[cuda]'``)::

    python -m benchmarks.gpu_scale [--generations 5] [--max-elements 1e12]

Three workloads, each as one compiled block of ``--generations`` generations:

1. ``openai_es`` (compact genotypes: noise regenerated from seeds, chunked
   evaluation) on a sphere of ``dim`` parameters: population x parameters
   doubles (population 4096 -> 65536, parameters 1e5 -> 1e8) until the device
   runs out of memory or the population's elements pass ``--max-elements``. It
   reports, for each size, generations/s and member-parameters/s, and the
   largest size that ran.
2. ``neat`` on XOR at populations 5000 to 320000: generations/s (the NEAT goal
   on a GPU is 500x neat-python's ~4 s per generation at 5000).
3. ``openai_es`` on CartPole-v1 with population 4096 to 65536: env-steps/s.

Without a GPU it refuses, unless ``--allow-cpu`` is given for a smoke run at
small sizes. The last line is the headline: the largest population x parameters
that ran, with its generations/s.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import neuroevo as ne
from benchmarks.common import machine


def timed_block(strategy, task, x0, generations: int, chunk_size=None) -> tuple[float, float, dict]:
    """(compile + first block seconds, steady block seconds, metrics summed over the block)."""
    step = ne.engine.make_step(strategy, task, chunk_size)

    @jax.jit
    def block(key):
        k_init, k_task, k_loop = jax.random.split(key, 3)
        carry = (strategy.init(k_init, x0), task.init(k_task))
        return jax.lax.scan(step, carry, jax.random.split(k_loop, generations))[1]

    t = time.perf_counter()
    jax.block_until_ready(block(jax.random.key(0)))
    first = time.perf_counter() - t
    t = time.perf_counter()
    metrics = jax.block_until_ready(block(jax.random.key(1)))
    steady = time.perf_counter() - t
    return first, steady, {k: float(np.sum(np.asarray(v))) for k, v in metrics.items()}


def too_big(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower() or "Out of memory" in text


def es_scale(popsizes, dims, generations: int, max_elements: float) -> tuple[int, int, float]:
    print("== openai_es, compact genotypes, sphere")
    largest = (0, 0, 0.0)
    for popsize in popsizes:
        for dim in dims:
            if popsize * dim > max_elements:
                continue
            strategy = ne.strategies.openai_es(popsize=popsize, sigma=0.02, dense=False)
            chunk = max(1, min(popsize, int(2e9 // (dim * 4))))  # ~2 GB of members decoded at once
            try:
                first, steady, _ = timed_block(
                    strategy, ne.tasks.function(ne.tasks.sphere), jnp.zeros(dim), generations, chunk
                )
            except Exception as e:  # noqa: BLE001
                if too_big(e):
                    print(f"popsize {popsize:7d} x {dim:10d} parameters: out of memory")
                    break
                raise
            gps = generations / steady
            print(
                f"popsize {popsize:7d} x {dim:10d} parameters: {gps:8.2f} generations/s, "
                f"{gps * popsize * dim:.3e} member-parameters/s (compile + first block {first:.1f} s)"
            )
            if popsize * dim > largest[0] * largest[1]:
                largest = (popsize, dim, gps)
    return largest


def neat_scale(popsizes, generations: int) -> None:
    print("== neat on XOR")
    task = ne.tasks.xor()
    for popsize in popsizes:
        strategy = ne.strategies.neat(popsize=popsize, max_nodes=24, max_conns=48, max_species=16)
        try:
            first, steady, _ = timed_block(strategy, task, task.init_solution(None), generations)
        except Exception as e:  # noqa: BLE001
            if too_big(e):
                print(f"popsize {popsize:7d}: out of memory")
                break
            raise
        ms = steady / generations * 1e3
        print(f"popsize {popsize:7d}: {ms:8.2f} ms/generation (compile + first block {first:.1f} s)")


def rl_scale(popsizes, generations: int) -> None:
    print("== openai_es on CartPole-v1")
    task = ne.tasks.gymnax("CartPole-v1")
    x0 = task.init_solution(jax.random.key(0))
    for popsize in popsizes:
        strategy = ne.strategies.openai_es(popsize=popsize, sigma=0.1)
        first, steady, metrics = timed_block(strategy, task, x0, generations)
        print(
            f"popsize {popsize:7d}: {generations / steady:7.2f} generations/s, "
            f"{metrics['env_steps'] / steady:.3e} env-steps/s (compile + first block {first:.1f} s)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--max-elements", type=float, default=1e12)
    parser.add_argument("--allow-cpu", action="store_true", help="smoke run at small sizes without a GPU")
    args = parser.parse_args(argv)
    gpu = jax.default_backend() == "gpu"
    print(f"machine: {machine()}; jax {jax.__version__}")
    if not gpu and not args.allow_cpu:
        print("gpu_scale: no GPU (run with --allow-cpu for a smoke run at small sizes)")
        return 2
    if gpu:
        popsizes, dims = [4096, 16384, 65536], [100_000, 1_000_000, 10_000_000, 100_000_000]
        neat_pops, rl_pops = [5000, 20000, 80000, 320000], [4096, 16384, 65536]
    else:
        popsizes, dims, neat_pops, rl_pops = [64, 256], [1000, 10_000], [500], [64]
    popsize, dim, gps = es_scale(popsizes, dims, args.generations, args.max_elements)
    neat_scale(neat_pops, args.generations)
    rl_scale(rl_pops, args.generations)
    print(f"gpu_scale: largest openai_es generation {popsize} x {dim} parameters at {gps:.2f} generations/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

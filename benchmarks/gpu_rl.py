"""RL throughput on one accelerator: population 4096 on MinAtar and on a Playground env.

Run on a GPU (``pip install -e '.[cuda,mujoco]'``)::

    python -m benchmarks.gpu_rl [--popsize 4096] [--generations 3]

For each environment it builds the task exactly as ``neuroevo train`` does
(``ne.rl.make_task``), runs ``openai_es`` generations in one compiled block,
and reports env-steps/s (steps that count toward returns: the sum of all
members' episode lengths; a Playground step is one policy step, i.e.
``action_repeat`` physics steps). Without a GPU it refuses, unless
``--allow-cpu`` is given for a smoke run at a small population. The last line
is the headline: env-steps/s of each environment.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

import neuroevo as ne
from benchmarks.common import machine

ENVS = {
    "Breakout-MinAtar": {"max_steps": 1000},
    "playground:CartpoleSwingup": {"max_steps": 1000},
}


def measure(env_id: str, popsize: int, generations: int, **config) -> dict:
    cfg = ne.rl.resolve(None, env=env_id, popsize=popsize, generations=generations, **config)
    task = ne.rl.make_task(cfg)
    strategy = ne.rl.make_strategy(cfg)
    x0 = task.init_solution(jax.random.key(0))
    step = ne.engine.loop.make_step(strategy, task, cfg["chunk_size"])

    @jax.jit
    def block(carry, key):
        return jax.lax.scan(step, carry, jax.random.split(key, generations))

    carry = jax.jit(lambda: (strategy.init(jax.random.key(1), x0), task.init(jax.random.key(2))))()
    t = time.perf_counter()
    carry, metrics = jax.block_until_ready(block(carry, jax.random.key(3)))
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    carry, metrics = jax.block_until_ready(block(carry, jax.random.key(4)))
    wall = time.perf_counter() - t
    steps = float(np.sum(metrics["env_steps"]))
    return {
        "env": env_id,
        "env_steps_per_s": steps / wall,
        "gen_per_s": generations / wall,
        "mean_episode_length": float(np.mean(metrics["episode_length"])),
        "compile_s": compile_s,
        "mean_return": float(np.mean(metrics["return"])),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--popsize", type=int, default=4096)
    p.add_argument("--generations", type=int, default=3)
    p.add_argument("--envs", nargs="*", default=list(ENVS))
    p.add_argument("--allow-cpu", action="store_true", help="smoke-run without a GPU")
    a = p.parse_args()
    if jax.default_backend() != "gpu" and not a.allow_cpu:
        print(f"no GPU found (backend {jax.default_backend()!r}); use --allow-cpu for a smoke run")
        return 2
    print(f"machine: {machine()}  popsize {a.popsize}, {a.generations} generations per timed block")
    results = []
    for env_id in a.envs:
        r = measure(env_id, a.popsize, a.generations, **ENVS.get(env_id, {}))
        results.append(r)
        print(
            f"{env_id:28s} {r['env_steps_per_s']:>14,.0f} env-steps/s  {r['gen_per_s']:7.3f} gen/s  "
            f"mean ep len {r['mean_episode_length']:7.1f}  compile {r['compile_s']:6.1f}s",
            flush=True,
        )
    print("gpu_rl: " + ", ".join(f"{r['env']} {r['env_steps_per_s']:,.0f} env-steps/s" for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Regularized evolution vs random search at equal evaluations on discrete problems (issue 20).

Problems (bit strings, fitness in [0, 1], maximised; ``neuroevo.tasks.discrete``):

- an NK landscape (Kauffman), N = 32 genes, K = 4 (each gene's contribution
  depends on itself and its 4 cyclic right neighbours), instance 0;
- concatenated deceptive traps, 10 blocks of 4 bits (optimum 1, and a deceptive
  local optimum of 0.75 at all zeros).

Regularized evolution (Real et al. 2019): a queue of P = 100 members, tournaments
of S = 25, B = 10 children per step (one-gene mutation), 200 steps: 2,000
evaluations. Random search: 2,000 uniform bit strings. 10 seeds each; both
sides' runs are one compiled, vmapped program. Reported per problem: the mean
(and sd) of the final best fitness, Cohen's d (mean difference over the pooled
sd), the Vargha-Delaney A (the probability that a run of regularized evolution
beats a run of random search), and how many seeds it wins (paired by seed).

Target (exit 1 if missed): regularized evolution's mean is higher on both
problems with a large effect, d >= 0.8.

    python -m benchmarks.regularized_evolution [--seeds 10] [--evaluations 2000]
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
from neuroevo.engine.loop import make_step

BATCH, QUEUE, TOURNAMENT = 10, 100, 25


def regularized_evolution(task, keys, generations):
    space = task.info["space"]
    strategy = ne.strategies.regularized_evolution(
        BATCH, population_size=QUEUE, tournament_size=TOURNAMENT, space=space
    )
    step = make_step(strategy, task)

    def run(key):
        k_init, k_loop = jax.random.split(key)
        carry = (strategy.init(k_init, None), ())
        (state, _), _ = jax.lax.scan(step, carry, jax.random.split(k_loop, generations))
        return state.best_fitness

    return np.asarray(jax.jit(jax.vmap(run))(keys))


def random_search(task, keys, evaluations):
    space = task.info["space"]

    def run(key):
        genes = ne.space.sample(key, space, evaluations)
        return jnp.max(task.evaluate(None, (), genes)[0].fitness)

    return np.asarray(jax.jit(jax.vmap(run))(keys))


def effect(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float, int]:
    """Cohen's d (pooled sd), Vargha-Delaney A (ties count half), seeds won."""
    pooled = np.sqrt((np.var(ours, ddof=1) + np.var(theirs, ddof=1)) / 2)
    d = (np.mean(ours) - np.mean(theirs)) / max(pooled, 1e-12)
    a = np.mean((ours[:, None] > theirs[None]) + 0.5 * (ours[:, None] == theirs[None]))
    return float(d), float(a), int(np.sum(ours > theirs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evaluations", type=int, default=2000)
    args = ap.parse_args(argv)
    if args.evaluations % BATCH or args.evaluations < QUEUE:
        raise SystemExit(f"--evaluations must be a multiple of {BATCH} and at least {QUEUE}")
    print(machine(), flush=True)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    problems = {"nk(N=32,K=4)": ne.tasks.nk_landscape(32, 4, seed=0), "trap(10x4)": ne.tasks.trap(10, 4)}
    worst = np.inf
    for name, task in problems.items():
        t = time.perf_counter()
        ours = regularized_evolution(task, keys, args.evaluations // BATCH)
        theirs = random_search(task, jax.random.split(jax.random.key(1), args.seeds), args.evaluations)
        d, a, wins = effect(ours, theirs)
        worst = min(worst, d if np.mean(ours) > np.mean(theirs) else -np.inf)
        print(
            f"{name}: {args.evaluations} evaluations, {args.seeds} seeds: regularized evolution "
            f"{np.mean(ours):.4f} +- {np.std(ours, ddof=1):.4f}, random search {np.mean(theirs):.4f} "
            f"+- {np.std(theirs, ddof=1):.4f}; Cohen's d {d:.2f}, A {a:.2f}, wins {wins}/{args.seeds} "
            f"({time.perf_counter() - t:.1f} s)",
            flush=True,
        )
    ok = worst >= 0.8
    print(
        f"regularized_evolution: beats random search at equal evaluations on NK and trap with Cohen's d "
        f">= {worst:.2f} (target 0.8): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Population diversity: mate choice (PIMP ideal mates) vs plain tournament selection, on Rastrigin.

Side by side in one process, on the same seeds: ``ne.strategies.ga`` with
tournament selection and uniform crossover (both parents by tournament), and
the same GA with ``mate_choice=True`` (the first parent by tournament, its
partner the candidate closest to its evolving ideal mate; Simoes, Lourenco &
Machado, "All You Need Is Sex for Diversity", EuroGP 2023). Diversity is the
GA's per-generation ``diversity`` metric (mean Euclidean distance of the parents
to their centroid), averaged over the run. Exits non-zero if mate choice's mean
diversity is not higher; the last line is the headline ratio.

    python -m benchmarks.mate_choice [--dim 20] [--popsize 100] [--generations 300] [--seeds 8]
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

import neuroevo as ne
from benchmarks.common import machine


def runs(strategy, dim: int, generations: int, seeds: int):
    """(diversity[seeds, generations], best raw Rastrigin value[seeds]) for ``seeds`` vmapped runs."""
    step = ne.engine.make_step(strategy, ne.tasks.function(ne.tasks.rastrigin))

    @jax.jit
    def run(key):
        k_x0, k_init, k_loop = jax.random.split(key, 3)
        x0 = jax.random.uniform(k_x0, (dim,), minval=-5.12, maxval=5.12)
        carry = (strategy.init(k_init, x0), ())
        _, metrics = jax.lax.scan(step, carry, jax.random.split(k_loop, generations))
        return metrics["diversity"], -metrics["best"][-1]

    diversity, best = jax.vmap(run)(jax.random.split(jax.random.key(0), seeds))
    return np.asarray(diversity), np.asarray(best)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dim", type=int, default=20)
    p.add_argument("--popsize", type=int, default=100)
    p.add_argument("--generations", type=int, default=300)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--sigma", type=float, default=0.1)
    p.add_argument("--tournament-size", type=int, default=3)
    p.add_argument("--crossover-rate", type=float, default=0.9)
    a = p.parse_args(argv)
    common = dict(
        sigma=a.sigma,
        selection="tournament",
        tournament_size=a.tournament_size,
        crossover="uniform",
        crossover_rate=a.crossover_rate,
    )
    print(f"machine: {machine()}")
    print(
        f"workload: {a.dim}-d Rastrigin, x0 ~ U[-5.12, 5.12], popsize {a.popsize}, "
        f"{a.generations} generations, {a.seeds} seeds; ga {common}"
    )
    results = {}
    for name, extra in (("tournament", {}), ("mate choice", {"mate_choice": True})):
        t = time.perf_counter()
        diversity, best = runs(ne.strategies.ga(a.popsize, **common, **extra), a.dim, a.generations, a.seeds)
        seconds = time.perf_counter() - t
        per_seed = diversity.mean(axis=1)
        results[name] = per_seed
        seeds_text = " ".join(f"{v:.3f}" for v in per_seed)
        print(
            f"{name:12s} mean diversity {per_seed.mean():.4f} (per seed {seeds_text}), "
            f"final diversity {diversity[:, -1].mean():.4f}, final best f {best.mean():.2f} "
            f"(median {np.median(best):.2f}), {seconds:.1f} s"
        )
    ratio = results["mate choice"].mean() / results["tournament"].mean()
    wins = int(np.sum(results["mate choice"] > results["tournament"]))
    print(f"mate choice more diverse on {wins}/{a.seeds} seeds")
    print(f"mate choice / tournament mean diversity: {ratio:.2f}x")
    return 0 if ratio > 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""A vmapped sweep against the separate runs a user would otherwise launch (issue 8).

16 configs (4 sigmas x 4 learning rates of ``openai_es``) x 4 seeds on
CartPole-v1 (popsize 64, 20 generations, MLP 16 tanh, one episode per member,
cap 500 steps): ``ne.sweep`` runs all 64 as one ``jit(vmap(...))`` program; the
baseline calls ``ne.evolve`` 64 times, each compiling its own program (a new
strategy per config, as a loop over configs does). Both times include
compilation. Counts the sweep's compilations (must be 1). The last line is the
headline ratio; exits non-zero if it is below 5.

    python -m benchmarks.sweep [--generations 20] [--separate 64]

``--separate N`` times only the first N separate runs and scales their time to
64 (printed as an estimate).
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np

import neuroevo as ne
from benchmarks.common import machine
from neuroevo.engine import sweep as engine_sweep

SIGMAS = [0.03, 0.05, 0.1, 0.2]
LEARNING_RATES = [0.01, 0.03, 0.05, 0.1]
SEEDS, POPSIZE, HIDDEN = 4, 64, (16,)
TARGET = 5.0


def make_strategy(sigma, learning_rate):
    return ne.strategies.openai_es(POPSIZE, sigma=sigma, learning_rate=learning_rate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--separate", type=int, default=SEEDS * len(SIGMAS) * len(LEARNING_RATES))
    args = parser.parse_args(argv)
    task = ne.tasks.gymnax("CartPole-v1", hidden=HIDDEN)
    x0 = task.init_solution(jax.random.key(0))
    grid = {"sigma": SIGMAS, "learning_rate": LEARNING_RATES}
    print(f"machine: {machine()}")
    configs = len(SIGMAS) * len(LEARNING_RATES)
    print(f"{configs} configs x {SEEDS} seeds, popsize {POPSIZE}, {args.generations} generations")

    t = time.perf_counter()
    key = jax.random.key(1)
    result = ne.sweep(key, make_strategy, task, x0, grid=grid, seeds=SEEDS, generations=args.generations)
    sweep_s = time.perf_counter() - t
    print(f"sweep: {sweep_s:.1f} s including compilation, {result.compilations} compilation(s)")

    runs = [(config, s) for config in result.configs for s in range(SEEDS)]
    count = min(args.separate, len(runs))
    finals = []
    t = time.perf_counter()
    for config, s in runs[:count]:
        state, history = ne.evolve(result.keys[s], make_strategy(**config), task, x0, args.generations)
        finals.append(history["best"][-1])
    separate_s = (time.perf_counter() - t) * len(runs) / count
    estimate = "" if count == len(runs) else f" (estimated from {count} runs)"
    print(f"separate: {separate_s:.1f} s for {len(runs)} ne.evolve calls, compilation included{estimate}")
    swept = result.curves[:, :, -1].reshape(-1)[:count]
    agree = bool(np.allclose(swept, finals, rtol=1e-4))
    print(f"final best fitness of the swept and separate runs agree: {agree}")
    best = engine_sweep.best_config(result)
    print(f"best config: {engine_sweep.label(best[0])}, final best fitness {best[1]:.1f} (mean of seeds)")
    ratio = separate_s / sweep_s
    print(f"sweep speed-up over separate runs: {ratio:.1f}x (target >= {TARGET:g}x)")
    return 0 if ratio >= TARGET and result.compilations == 1 and agree else 1


if __name__ == "__main__":
    sys.exit(main())

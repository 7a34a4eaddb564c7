"""Our NSGA-II and NSGA-III side by side with pymoo 0.6 (issue 20).

Quality: NSGA-II, population 100, 250 generations, on ZDT1/ZDT2/ZDT3 (30
variables) and DTLZ2 (3 objectives, 12 variables); NSGA-III, population 92 with
the 91 Das-Dennis directions of 12 partitions, on DTLZ1 (7 variables, 400
generations) and DTLZ2 (12 variables, 250 generations). 10 seeds per side. The
same operators' parameters on both sides: SBX eta 15 (NSGA-III: 30),
probability 0.9 per pair (NSGA-III: 1.0) and 0.5 per variable; polynomial
mutation eta 20, every child, probability 1/n per variable (pymoo's
``PM(prob=1.0)``). Both final non-dominated sets are scored by pymoo's own
``HV`` with the same reference point (ZDT: (1.1, 1.1); DTLZ1: (1, 1, 1);
DTLZ2: (1.1, 1.1, 1.1)). Our 10 seeds run as one compiled program (``ne.sweep``).

Speed: at population 100, the wall time including compilation of the NSGA-II
workload above (4 problems x 10 seeds: our one program per problem, pymoo's 10
runs), and of one ZDT1 run of 250 generations (a fresh ``ne.evolve``, compiled
again each time; medians of 3 runs alternating with pymoo's ``minimize``); and
at population 10,000 the time per generation on ZDT1 (ours compiled; pymoo's
``algorithm.next()``, whose non-dominated sort dominates).

Targets (exit 1 if one is missed): mean HV >= 0.99x pymoo's on each problem;
>= 1x pymoo's wall time at population 100 (both measures); >= 50x per
generation at 10,000.

    python -m benchmarks.moo_vs_pymoo [--seeds 10] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import numpy as np

import neuroevo as ne
from benchmarks.common import machine
from neuroevo.engine.loop import make_step

NSGA2_PROBLEMS = [("zdt1", 30), ("zdt2", 30), ("zdt3", 30), ("dtlz2", 12)]
NSGA3_PROBLEMS = [("dtlz1", 7, 400), ("dtlz2", 12, 250)]


def task_of(name: str, n_var: int):
    if name.startswith("zdt"):
        return ne.tasks.zdt(int(name[3:]), n_var)
    return ne.tasks.dtlz(int(name[4:]), 3, n_var)


def pymoo_problem(name: str, n_var: int):
    from pymoo.problems import get_problem

    if name.startswith("zdt"):
        return get_problem(name, n_var=n_var)
    return get_problem(name, n_var=n_var, n_obj=3)


def pymoo_algorithm(kind: str, popsize: int):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.algorithms.moo.nsga3 import NSGA3
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.util.ref_dirs import get_reference_directions

    if kind == "nsga2":
        return NSGA2(
            pop_size=popsize, crossover=SBX(eta=15, prob=0.9, prob_var=0.5), mutation=PM(eta=20, prob=1.0)
        )
    ref_dirs = get_reference_directions("das-dennis", 3, n_partitions=12)
    return NSGA3(
        ref_dirs,
        pop_size=popsize,
        crossover=SBX(eta=30, prob=1.0, prob_var=0.5),
        mutation=PM(eta=20, prob=1.0),
    )


def ours_strategy(kind: str, popsize: int, task, **hp):
    bounds, m = task.info["bounds"], task.info["n_objectives"]
    if kind == "nsga2":
        return ne.strategies.nsga2(popsize, bounds=bounds, n_objectives=m, crossover_eta=15.0, **hp)
    return ne.strategies.nsga3(
        popsize, bounds=bounds, n_objectives=m, n_partitions=12, crossover_eta=30.0, **hp
    )


def hv(front_minimised: np.ndarray, reference: np.ndarray) -> float:
    from pymoo.indicators.hv import HV

    return float(HV(ref_point=reference)(front_minimised))


def pymoo_fronts(kind, name, n_var, popsize, generations, seeds):
    from pymoo.optimize import minimize

    fronts, seconds = [], []
    for seed in range(seeds):
        t = time.perf_counter()
        res = minimize(
            pymoo_problem(name, n_var), pymoo_algorithm(kind, popsize), ("n_gen", generations), seed=seed
        )
        seconds.append(time.perf_counter() - t)
        fronts.append(np.asarray(res.F))
    return fronts, seconds


def ours_fronts(kind, name, n_var, popsize, generations, seeds):
    task = task_of(name, n_var)
    x0 = task.init_solution(None)
    make = lambda mutation_eta: ours_strategy(kind, popsize, task, mutation_eta=mutation_eta)
    t = time.perf_counter()
    result = ne.sweep(
        jax.random.key(0), make, task, x0, grid={"mutation_eta": [20.0]}, seeds=seeds, generations=generations
    )
    seconds = time.perf_counter() - t
    fitness, rank = np.asarray(result.states.fitness[0]), np.asarray(result.states.rank[0])
    return [-fitness[s][rank[s] == 0] for s in range(seeds)], seconds


def quality(kind, problems, popsize, seeds, generations_override=None):
    rows = []
    for problem in problems:
        name, n_var = problem[0], problem[1]
        generations = generations_override or (problem[2] if len(problem) > 2 else 250)
        reference = -task_of(name, n_var).info["ref_point"]
        theirs, their_seconds = pymoo_fronts(kind, name, n_var, popsize, generations, seeds)
        ours, our_seconds = ours_fronts(kind, name, n_var, popsize, generations, seeds)
        ours_hv = [hv(f, reference) for f in ours]
        theirs_hv = [hv(f, reference) for f in theirs]
        ratio = np.mean(ours_hv) / np.mean(theirs_hv)
        rows.append((kind, name, ratio, our_seconds, sum(their_seconds)))
        print(
            f"{kind} {name:6s} {generations} gens: HV ours {np.mean(ours_hv):.4f} +- {np.std(ours_hv):.4f}, "
            f"pymoo {np.mean(theirs_hv):.4f} +- {np.std(theirs_hv):.4f}, ratio {ratio:.4f}; "
            f"{seeds} seeds: ours {our_seconds:.1f} s (one program, with compilation), "
            f"pymoo {sum(their_seconds):.1f} s",
            flush=True,
        )
    return rows


def speed_small(generations: int, repeats: int) -> float:
    """ZDT1, population 100: wall time of one run including compilation, medians of alternating runs."""
    from pymoo.optimize import minimize

    task = ne.tasks.zdt1()
    x0 = task.init_solution(None)
    ours, theirs = [], []
    for r in range(repeats):
        t = time.perf_counter()
        minimize(pymoo_problem("zdt1", 30), pymoo_algorithm("nsga2", 100), ("n_gen", generations), seed=r)
        theirs.append(time.perf_counter() - t)
        t = time.perf_counter()
        strategy = ours_strategy("nsga2", 100, task)  # a fresh program: compiled again
        state, _ = ne.evolve(jax.random.key(r), strategy, task, x0, generations, log_every=generations)
        jax.block_until_ready(state)
        ours.append(time.perf_counter() - t)
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(
        f"speed, ZDT1 population 100 x {generations} generations, one run including compilation: "
        f"ours {statistics.median(ours):.2f} s (runs {', '.join(f'{s:.2f}' for s in ours)}), "
        f"pymoo {statistics.median(theirs):.2f} s (runs {', '.join(f'{s:.2f}' for s in theirs)}): "
        f"{ratio:.2f}x",
        flush=True,
    )
    return ratio


def speed_large(popsize: int, pymoo_generations: int) -> float:
    """ZDT1 at a large population: seconds per generation, ours compiled vs pymoo's ``next()``."""
    task = ne.tasks.zdt1()
    strategy = ours_strategy("nsga2", popsize, task)
    step = jax.jit(make_step(strategy, task))
    carry = (strategy.init(jax.random.key(0), task.init_solution(None)), ())
    t = time.perf_counter()
    carry, _ = step(carry, jax.random.key(1))  # the initial population
    jax.block_until_ready(carry)
    compile_seconds = time.perf_counter() - t
    times = []
    for g in range(2, 12):
        t = time.perf_counter()
        carry, _ = step(carry, jax.random.key(g))
        jax.block_until_ready(carry)
        times.append(time.perf_counter() - t)
    ours = statistics.median(times)

    algorithm = pymoo_algorithm("nsga2", popsize)
    algorithm.setup(pymoo_problem("zdt1", 30), termination=("n_gen", pymoo_generations + 1), seed=0)
    algorithm.next()  # the initial population
    theirs = []
    for _ in range(pymoo_generations):
        t = time.perf_counter()
        algorithm.next()
        theirs.append(time.perf_counter() - t)
    ratio = statistics.median(theirs) / ours
    print(
        f"speed, ZDT1 population {popsize:,} per generation: ours {ours * 1e3:.1f} ms (median of 10; "
        f"compiled in {compile_seconds:.1f} s), pymoo {statistics.median(theirs):.2f} s "
        f"(median of {pymoo_generations}): {ratio:.0f}x",
        flush=True,
    )
    return ratio


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="3 seeds, 50 generations, smaller large population")
    ap.add_argument("--large", type=int, default=10_000, help="the large population size")
    args = ap.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    gens = 50 if args.quick else None
    print(machine(), flush=True)
    rows = quality("nsga2", NSGA2_PROBLEMS, 100, seeds, gens)
    ours_total, theirs_total = sum(r[3] for r in rows), sum(r[4] for r in rows)
    workload = theirs_total / ours_total
    print(
        f"speed, NSGA-II population 100, the 4 problems x {seeds} seeds above, including compilation: "
        f"ours {ours_total:.1f} s, pymoo {theirs_total:.1f} s: {workload:.2f}x",
        flush=True,
    )
    rows += quality("nsga3", NSGA3_PROBLEMS, 92, seeds, gens)
    single = speed_small(gens or 250, 3)
    large = speed_large(2_000 if args.quick else args.large, 2)
    worst = min(rows, key=lambda r: r[2])
    ok = worst[2] >= 0.99 and min(workload, single) >= 1.0 and large >= 50.0
    print(
        f"moo_vs_pymoo: HV ratio >= {worst[2]:.4f} (worst: {worst[0]} {worst[1]}; target 0.99); population "
        f"100 wall time incl. compilation {workload:.2f}x pymoo's ({seeds} seeds x 4 problems) and "
        f"{single:.2f}x (one run) (target 1x); population {(2_000 if args.quick else args.large):,} "
        f"{large:.0f}x per generation (target 50x): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

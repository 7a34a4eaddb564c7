"""A whole BBOB campaign, neuroevo vs pycma + cocoex, side by side (issue 4).

The same campaign both ways: CMA-ES with IPOP restarts on COCO's bbob suite,
functions 1-24, instances 1-15, dimensions 2, 5, 10, budget 1000 * d, target
f - fopt <= 1e-8, x0 uniform in [-4, 4]^d, sigma0 = 2, restarts from a uniform
point of [-4, 4]^d until the budget is spent. Both sides use the same restart
scheme: IPOP with k = ``campaign.default_max_restarts(budget, popsize, d)`` doublings
(the largest k whose population popsize * 2**k can run 10 d generations
within the budget: k = 4, 3, 3 in d = 2, 5, 10), and then, if budget is left,
IPOP again from popsize. neuroevo caps its population at popsize * 2**k;
pycma calls ``cma.fmin2(..., restarts=k, incpopsize=2)`` again with the
remaining budget until the target is hit or the budget is spent.

- neuroevo: ``ne.bench.bbob_campaign`` (one compiled, vmapped float64 program per
  dimension; writes COCO data, ERT tables and ECDF plots). Wall time includes
  compilation and writing.
- pycma: ``cma.fmin2`` on each ``cocoex.Suite("bbob")`` problem observed by
  ``cocoex.Observer("bbob")`` (the usual COCO experiment, writing the same files),
  twice: in one process, as COCO's example experiment runs, and over a
  ``multiprocessing`` pool of as many processes as neuroevo has cores (the problems
  dealt out one at a time, largest dimension first; each process observes into a
  folder of its own), the peer given the same cores.

Prints the wall times, solved counts and both ratios. The headline (last line) is
the per-core ratio, against the pool; the exit status is the issue's target, at
least 10x against one pycma process (``--quick``: dimensions 2, 5 and instances
1-5; ``--skip-pool``: only the one-process peer).
``--compilation-cache DIR``: JAX's persistent compilation cache in DIR (a second
run with the same DIR is "warm": it loads the compiled programs instead of
compiling them); the headline figure is the cold one, without this option.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from benchmarks.common import machine
from neuroevo.bbob import function
from neuroevo.bench import bbob as campaign
from neuroevo.strategies.cma_steps import default_popsize


def solve(problem, j, budget_multiplier, seed):
    """COCO's experiment on one problem (suite index ``j``): capped IPOP pycma, again with the
    remaining budget until the target is hit or the budget is spent. Returns (d, solved)."""
    import cma

    d = problem.dimension
    budget = int(budget_multiplier * d)
    k = campaign.default_max_restarts(budget, default_popsize(d), d)
    rng = np.random.default_rng(seed + j)
    fopt = function(problem.id_function, d, problem.id_instance).fopt  # COCO's, as cocoex's
    calls = 0
    while not problem.final_target_hit and problem.evaluations < budget:
        opts = {
            "maxfevals": budget - problem.evaluations,
            "ftarget": fopt + campaign.PRECISION,
            "verbose": -9,
            "seed": seed + j + 1000 * calls,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x0 = lambda rng=rng, d=d: rng.uniform(-4, 4, d)
            cma.fmin2(problem, x0, 2.0, opts, restarts=k, incpopsize=2)
        calls += 1
    return d, bool(problem.final_target_hit)


def suite(dims, functions, instances):
    import cocoex

    return cocoex.Suite(
        "bbob",
        f"instances: {','.join(map(str, instances))}",
        f"dimensions: {','.join(map(str, dims))} function_indices: {','.join(map(str, functions))}",
    )


def run_pycma(dims, functions, instances, budget_multiplier, out, seed=1):
    """The whole campaign in this process; returns ({d: solved}, seconds)."""
    import cocoex

    t0 = time.perf_counter()
    observer = cocoex.Observer("bbob", f"result_folder: {out} algorithm_name: pycma")
    solved = {d: 0 for d in dims}
    for j, problem in enumerate(suite(dims, functions, instances)):
        problem.observe_with(observer)
        d, hit = solve(problem, j, budget_multiplier, seed)
        solved[d] += hit
        problem.free()
    return solved, time.perf_counter() - t0


_WORKER: dict = {}


def _pool_start(dims, functions, instances, budget_multiplier, out, seed):
    import cocoex

    _WORKER.update(
        suite=suite(dims, functions, instances),
        observer=cocoex.Observer("bbob", f"result_folder: {out}-{os.getpid()} algorithm_name: pycma"),
        budget_multiplier=budget_multiplier,
        seed=seed,
    )


def _pool_solve(j):
    problem = _WORKER["suite"].get_problem(j)
    problem.observe_with(_WORKER["observer"])
    result = solve(problem, j, _WORKER["budget_multiplier"], _WORKER["seed"])
    problem.free()
    return result


def run_pycma_pool(processes, dims, functions, instances, budget_multiplier, out, seed=1):
    """The same campaign over a pool of ``processes`` (forked: call it before this process
    starts a JAX backend); returns ({d: solved}, seconds, pool start seconds)."""
    import multiprocessing

    t0 = time.perf_counter()
    n = len(dims) * len(functions) * len(instances)
    args = (dims, functions, instances, budget_multiplier, out, seed)
    solved = {d: 0 for d in dims}
    with multiprocessing.get_context("fork").Pool(processes, _pool_start, args) as pool:
        started = time.perf_counter() - t0
        # largest dimension first (the suite lists it last): the longest problems start first
        for d, hit in pool.imap_unordered(_pool_solve, reversed(range(n)), chunksize=1):
            solved[d] += hit
    return solved, time.perf_counter() - t0, started


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="dimensions 2, 5; instances 1-5")
    ap.add_argument("--budget-multiplier", type=float, default=1000)
    ap.add_argument("--skip-pycma", action="store_true", help="time neuroevo only (no ratio)")
    ap.add_argument("--skip-pool", action="store_true", help="pycma in one process only (no per-core ratio)")
    ap.add_argument("--compilation-cache", metavar="DIR", help="JAX's persistent compilation cache")
    args = ap.parse_args(argv)
    if args.compilation_cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", args.compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    dims = (2, 5) if args.quick else (2, 5, 10)
    instances = list(range(1, 6 if args.quick else 16))
    functions = list(range(1, 25))
    n = len(functions) * len(instances)
    cores = len(os.sched_getaffinity(0))
    # (the machine line comes after neuroevo's run and the pycma pool: asking JAX for its
    # devices starts a backend, and a process that has started one can fork neither the
    # campaign's worker (see ne.bench.parallel) nor the pool's processes)
    print(
        f"campaign: cma_es IPOP, f1-24, instances "
        f"{instances[0]}-{instances[-1]}, dimensions {dims}, budget {args.budget_multiplier:g}*d"
        + (f"; compilation cache {args.compilation_cache}" if args.compilation_cache else "; cold compile")
        + f"; load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = campaign.bbob_campaign(
            "cma_es",
            dims,
            instances,
            functions,
            args.budget_multiplier,
            out=os.path.join(tmp, "ne"),
            progress=False,
        )
        t_ne = time.perf_counter() - t0
        ne_line = f"neuroevo: {t_ne:.1f} s on {cores} cores, {result.solved()}/{n * len(dims)} solved"
        print(f"{ne_line}; load average {os.getloadavg()[0]:.1f}")
        if args.skip_pycma:
            print(f"machine: {machine()}")
            return 0
        cwd = os.getcwd()
        os.chdir(tmp)  # cocoex writes to ./exdata
        try:
            pool = None
            if not args.skip_pool:
                pool = run_pycma_pool(cores, dims, functions, instances, args.budget_multiplier, "pool")
                print(
                    f"pycma+cocoex, {cores} processes: {pool[1]:.1f} s (pool start {pool[2]:.2f} s), "
                    f"{sum(pool[0].values())}/{n * len(dims)} solved; load average {os.getloadavg()[0]:.1f}"
                )
            print(f"machine: {machine()}")
            for d in dims:
                r = result.dimensions[d]
                print(
                    f"  neuroevo d={d}: {result.solved(d)}/{n} solved, {r.seconds:.1f} s"
                    f" (compile {r.compile_seconds:.1f} s), {r.generations} gens"
                )
            solved, t_py = run_pycma(dims, functions, instances, args.budget_multiplier, "pycma")
        finally:
            os.chdir(cwd)
    for d in dims:
        print(f"  pycma d={d}: {solved[d]}/{n} solved" + (f" ({pool[0][d]} in the pool)" if pool else ""))
    print(f"pycma+cocoex, 1 process: {t_py:.1f} s, {sum(solved.values())}/{n * len(dims)} solved; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    ratio = t_py / t_ne
    target = f"{ratio:.1f}x against one pycma process (target 10x: {'met' if ratio >= 10 else 'MISSED'})"
    name = f"bbob campaign{' (quick)' if args.quick else ''}"
    if pool is None:
        line = f"neuroevo {t_ne:.1f} s ({result.solved()} solved) vs pycma+cocoex {t_py:.1f} s"
        print(f"{name}: {line}: {target}")
    else:
        per_core = pool[1] / t_ne
        print(
            f"{name}: neuroevo {t_ne:.1f} s on {cores} cores ({result.solved()} solved) vs pycma+cocoex "
            f"on {cores} processes {pool[1]:.1f} s ({sum(pool[0].values())} solved): {per_core:.1f}x "
            f"per core; {target}"
        )
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())

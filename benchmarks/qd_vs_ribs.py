"""MAP-Elites and CMA-ME against pyribs: final QD-score and wall time (issue 22).

Workloads: the linear-projection sphere and Rastrigin in 100-D (Fontaine et al.
2020; descriptors in [-256, 256]^2, fitness in [0, 100] on the box, QD offset
0) and the planar arm with ``--arm-dof`` joints (20 by default; descriptors in
[-1, 1]^2, fitness -variance of the angles, QD offset -pi^2): ``ne.tasks`` on
our side, their NumPy twins below on pyribs' side (a test checks they agree).

Same settings on both sides: a 100 x 100 grid archive; MAP-Elites is 15
pyribs ``IsoLineEmitter`` s (batch 64, pyribs' default) against our
``map_elites`` with popsize 15 x 64 (pyribs' emitters all sample the same
archive, so they are one population); CMA-ME is 15 pyribs
``EvolutionStrategyEmitter`` s (``cma_es``, ``ranker="2imp"``,
``restart_rule="no_improvement"``, ``selection_rule="mu"``: our CMA-ES
selects the better half, so pyribs' default ``"filter"`` is not used; batch
``4 + floor(3 ln d)``, pyribs' default) against our ``cma_me`` with 15
emitters. x0 = 0, the same number of iterations, ``--seeds`` seeds each.

Wall time includes compilation: one ``jax.jit`` program per workload (init and
a ``lax.scan`` over the iterations). MAP-Elites vmaps the seeds into that
program; CMA-ME runs it seed by seed (the seed's key an argument, compiled
once), as under ``vmap`` every emitter would decompose its covariance every
generation. pyribs' time includes building its objects (and numba's
compilation). The sides run in this process one after the other. BLAS runs
single-threaded on both sides (``OPENBLAS_NUM_THREADS=1``; pyribs limits its
CMA-ES to one BLAS thread itself): on a shared 2-core machine a multi-threaded
100 x 100 eigendecomposition is 20x slower.

Targets: our mean final QD-score >= 0.95x pyribs' and wall time >= 10x faster
on every workload; ``--scale 10`` adds the figure at 10x larger batches
(``--scale-seeds`` seeds, ``--scale-iterations`` iterations; reported, not a
target). The headline is the last line; non-zero exit on a miss.

    python -m benchmarks.qd_vs_ribs [--seeds 5] [--iterations-me 1000] [--iterations-cma 1000]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy/JAX load BLAS

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import neuroevo as ne  # noqa: E402
from benchmarks.common import machine  # noqa: E402

EMITTERS = 15
ME_BATCH = 64  # pyribs' IsoLineEmitter default
CELLS = (100, 100)


# --------------------------------------------------------------------------- #
# pyribs' side of the tasks (NumPy, float64), the twins of ne.tasks.qd.
# --------------------------------------------------------------------------- #


def numpy_projection(function: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(objective in [0, 100], descriptors) of the linear-projection benchmark, in NumPy."""
    shift, d = 0.4 * 5.12, x.shape[1]

    def raw(v):
        z = v - shift
        if function == "sphere":
            return np.sum(z * z, axis=-1)
        return 10.0 * v.shape[-1] + np.sum(z * z - 10.0 * np.cos(2 * np.pi * z), axis=-1)

    worst = raw(np.full((1, d), -5.12))[0]
    objective = (raw(x) - worst) / (0.0 - worst) * 100.0
    clipped = x.copy()
    out = np.abs(clipped) > 5.12
    clipped[out] = 5.12 / clipped[out]
    half = d // 2
    return objective, np.stack([clipped[:, :half].sum(1), clipped[:, half:].sum(1)], axis=1)


def numpy_arm(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(-variance of the clipped angles, end effector) of the planar arm, in NumPy."""
    a = np.clip(angles, -np.pi, np.pi)
    cumulative = np.cumsum(a, axis=1)
    dof = a.shape[1]
    effector = np.stack([np.cos(cumulative).sum(1), np.sin(cumulative).sum(1)], axis=1) / dof
    return -np.var(a, axis=1), effector


def workloads(arm_dof: int) -> dict[str, dict]:
    """Task, NumPy twin, solution dimension, archive bounds and offset, step sizes."""
    lp = dict(dim=100, bounds=((-256.0, 256.0),) * 2, offset=0.0, iso_sigma=0.5, line_sigma=0.2, sigma0=0.5)
    return {
        "sphere": dict(
            lp, task=ne.tasks.linear_projection("sphere", 100), numpy=lambda x: numpy_projection("sphere", x)
        ),
        "rastrigin": dict(
            lp,
            task=ne.tasks.linear_projection("rastrigin", 100),
            numpy=lambda x: numpy_projection("rastrigin", x),
        ),
        "arm": dict(
            dim=arm_dof,
            bounds=((-1.0, 1.0),) * 2,
            offset=-(math.pi**2),
            iso_sigma=0.05,
            line_sigma=0.2,
            sigma0=0.1,
            task=ne.tasks.arm(arm_dof),
            numpy=numpy_arm,
        ),
    }


def cma_batch(dim: int) -> int:
    return 4 + int(3 * math.log(dim))  # pyribs' (and CMA-ES's) default


# --------------------------------------------------------------------------- #
# The two sides.
# --------------------------------------------------------------------------- #


def ribs_run(algorithm: str, w: dict, iterations: int, seed: int, scale: int) -> float:
    """pyribs' final QD-score after ``iterations`` (objects built inside the timed region)."""
    from ribs.archives import GridArchive
    from ribs.emitters import EvolutionStrategyEmitter, IsoLineEmitter
    from ribs.schedulers import Scheduler

    archive = GridArchive(
        solution_dim=w["dim"], dims=CELLS, ranges=w["bounds"], qd_score_offset=w["offset"], seed=seed
    )
    x0 = np.zeros(w["dim"])
    seeds = np.random.SeedSequence(seed).spawn(EMITTERS)
    if algorithm == "map_elites":
        emitters = [
            IsoLineEmitter(
                archive,
                x0=x0,
                iso_sigma=w["iso_sigma"],
                line_sigma=w["line_sigma"],
                batch_size=ME_BATCH * scale,
                seed=int(s.generate_state(1)[0]),
            )
            for s in seeds
        ]
    else:
        emitters = [
            EvolutionStrategyEmitter(
                archive,
                x0=x0,
                sigma0=w["sigma0"],
                ranker="2imp",
                selection_rule="mu",
                restart_rule="no_improvement",
                batch_size=cma_batch(w["dim"]) * scale,
                seed=int(s.generate_state(1)[0]),
            )
            for s in seeds
        ]
    scheduler = Scheduler(archive, emitters)
    for _ in range(iterations):
        solutions = scheduler.ask()
        objective, descriptors = w["numpy"](solutions)
        scheduler.tell(objective, descriptors)
    return float(archive.stats.qd_score)


def our_program(algorithm: str, w: dict, iterations: int, scale: int):
    """``key -> final QD-score`` (the whole run: init, then a scan of generations), to jit."""
    archive = ne.qd.GridArchive(cells=CELLS, bounds=w["bounds"], qd_offset=w["offset"])
    if algorithm == "map_elites":
        strategy = ne.strategies.make(
            "map_elites",
            popsize=EMITTERS * ME_BATCH * scale,
            archive=archive,
            iso_sigma=w["iso_sigma"],
            line_sigma=w["line_sigma"],
        )
    else:
        strategy = ne.strategies.make(
            "cma_me",
            popsize=EMITTERS * cma_batch(w["dim"]) * scale,
            emitters=EMITTERS,
            archive=archive,
            sigma=w["sigma0"],
        )
    task = w["task"]
    step = ne.engine.make_step(strategy, task)
    x0 = jnp.zeros((w["dim"],), jnp.float32)

    def run(key):
        k_init, k_loop = jax.random.split(key)
        carry = (strategy.init(k_init, x0), task.init(k_init))
        (state, _), _ = jax.lax.scan(step, carry, jax.random.split(k_loop, iterations))
        return state.metrics["qd_score"]

    return run


def compare(algorithm: str, name: str, w: dict, iterations: int, seeds: int, scale: int = 1) -> dict:
    """Both sides on one workload: QD-scores per seed and total wall times.

    MAP-Elites runs all seeds at once (``vmap``: one program, one compilation). CMA-ME runs
    them one after the other: under ``vmap`` each emitter's lazy eigendecomposition (a
    ``lax.cond``) would run for every emitter at every generation. Sides alternate.
    """
    ours, theirs, t_ours, t_theirs, t_compile = [], [], 0.0, 0.0, 0.0
    if algorithm == "map_elites":
        t = time.perf_counter()
        keys = jax.random.split(jax.random.key(0), seeds)
        program = jax.jit(jax.vmap(our_program(algorithm, w, iterations, scale))).lower(keys).compile()
        t_compile = time.perf_counter() - t
        ours = np.asarray(jax.block_until_ready(program(keys))).tolist()
        t_ours = time.perf_counter() - t
    program = None
    for seed in range(seeds):
        if algorithm != "map_elites":
            t = time.perf_counter()
            key = jax.random.key(seed)
            if program is None:
                program = jax.jit(our_program(algorithm, w, iterations, scale)).lower(key).compile()
                t_compile = time.perf_counter() - t
            ours.append(float(jax.block_until_ready(program(key))))
            t_ours += time.perf_counter() - t
        t = time.perf_counter()
        theirs.append(ribs_run(algorithm, w, iterations, seed, scale))
        t_theirs += time.perf_counter() - t
    return dict(
        ours=np.array(ours), theirs=np.array(theirs), t_ours=t_ours, t_theirs=t_theirs, t_compile=t_compile
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--iterations-me", type=int, default=1000, help="MAP-Elites iterations (15 x 64 per)")
    p.add_argument("--iterations-cma", type=int, default=1000, help="CMA-ME iterations (15 emitters)")
    p.add_argument("--workloads", default="sphere,rastrigin,arm")
    p.add_argument("--algorithms", default="map_elites,cma_me")
    p.add_argument("--arm-dof", type=int, default=20)
    p.add_argument("--scale", type=int, default=10, help="batch multiplier of the scaling figure (0: skip)")
    p.add_argument("--scale-seeds", type=int, default=1)
    p.add_argument("--scale-iterations", type=int, default=200)
    a = p.parse_args(argv)
    import ribs

    print(f"machine: {machine()}; pyribs {ribs.__version__}, jax {jax.__version__}; load {os.getloadavg()}")
    ws = workloads(a.arm_dof)
    quality_ok = speed_ok = True
    rows = []
    for algorithm in a.algorithms.split(","):
        iterations = a.iterations_me if algorithm == "map_elites" else a.iterations_cma
        for name in a.workloads.split(","):
            w = ws[name]
            batch = ME_BATCH if algorithm == "map_elites" else cma_batch(w["dim"])
            r = compare(algorithm, name, w, iterations, a.seeds)
            q = r["ours"].mean() / r["theirs"].mean()
            s = r["t_theirs"] / r["t_ours"]
            quality_ok &= q >= 0.95
            speed_ok &= s >= 10.0
            rows.append((algorithm, name, q, s))
            ours, theirs = r["ours"], r["theirs"]
            print(
                f"{algorithm} {name} (d={w['dim']}, {EMITTERS} x {batch} per iteration, "
                f"{iterations} iterations, {a.seeds} seeds): QD-score ours {ours.mean():.6g} "
                f"(sd {ours.std():.3g}) vs pyribs {theirs.mean():.6g} (sd {theirs.std():.3g}) = {q:.3f}x; "
                f"wall ours {r['t_ours']:.1f} s (compilation {r['t_compile']:.1f} s) vs pyribs "
                f"{r['t_theirs']:.1f} s = {s:.1f}x faster; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if a.scale > 1:
                r = compare(algorithm, name, w, a.scale_iterations, a.scale_seeds, a.scale)
                print(
                    f"  scaling: {EMITTERS} x {batch * a.scale} per iteration, {a.scale_iterations} "
                    f"iterations, {a.scale_seeds} seed(s): wall ours {r['t_ours']:.1f} s "
                    f"(compilation {r['t_compile']:.1f} s) vs pyribs "
                    f"{r['t_theirs']:.1f} s = {r['t_theirs'] / r['t_ours']:.1f}x faster; QD-score ratio "
                    f"{r['ours'].mean() / r['theirs'].mean():.3f}",
                    flush=True,
                )
    worst_q = min(q for *_, q, _ in rows)
    worst_s = min(s for *_, s in rows)
    verdict = "targets met" if quality_ok and speed_ok else "TARGET MISSED"
    print(
        f"QD vs pyribs over {len(rows)} workloads: worst QD-score ratio {worst_q:.3f}x (target >= 0.95), "
        f"worst speed-up {worst_s:.1f}x incl. compilation (target >= 10)  -- {verdict}"
    )
    return 0 if quality_ok and speed_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Architecture search on scikit-learn's digits: population-parallel speed, search quality, one-shot.

**speed**: 256 CNNs of different architectures (``ne.nas.CNNSpace()``, drawn uniformly),
each trained for the same ``--steps`` Adam steps on the same minibatches and scored on the
validation split: all in one vmapped program (``ne.nas.train_population``, the masked
supernet) vs one after another, each architecture its own flax network in its own compiled
program (as PyTorch NAS code trains candidates). Both sides include compilation; wall time
and process CPU time are printed. Target: the vmapped program >= 10x faster (wall).

**quality**: regularized evolution, NSGA-II (accuracy and -parameters) and random search
on ``ne.tasks.nas`` (the CNN space, ``--train-steps`` per candidate), each for ``--seeds``
seeds and the same number of trained candidates (``--candidates``), every method's seeds
as one vmapped program. Targets: regularized evolution's best validation accuracy >=
random search's (mean over seeds; the difference and its spread are printed), and
NSGA-II's front of all its candidates (accuracy, -parameters / the largest architecture's,
reference point (0, -1)) has a larger mean hypervolume than random search's. The best
architecture found is retrained (``--final-steps``, 3 seeds) and its test accuracy printed
next to a hand-designed CNN of similar size trained the same way.

**oneshot**: a shared supernet trained once (``ne.nas.train_supernet``), 64 random
architectures scored with inherited weights, vs the same 64 trained stand-alone: the rank
correlation of the two scores and the time of each. No target: it says when to use which.

    python -m benchmarks.nas [--skip speed,quality,oneshot] [--members 256] [--seeds 10]

The last line is the headline; the exit status is non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import neuroevo as ne
from benchmarks.common import machine
from neuroevo.nas import training

SPACE = ne.nas.CNNSpace()  # <= 3 conv blocks of 4/8/16 channels, kernels 1/3/5, a pool after the first


class Clock:
    """Wall and process CPU seconds since construction."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def digits_arrays():
    d = ne.nas.digits()
    return d, [jnp.asarray(a) for a in d]


# --------------------------------------------------------------------------- speed


def standalone_program(space, genotype, steps, batch, lr, x, y, xv, yv):
    """One candidate trained alone: its own flax network, its own compiled program."""
    module = space.build(genotype)
    opt = optax.adam(lr)

    def program(key):
        k_init, k_batches = jax.random.split(key)
        params = module.init(k_init, x[:1])
        state = opt.init(params)
        loss = lambda p, xb, yb: training.cross_entropy(module.apply(p, xb), yb)

        def step(carry, k):
            params, state = carry
            index = jax.random.randint(k, (batch,), 0, x.shape[0])
            updates, state = opt.update(jax.grad(loss)(params, x[index], y[index]), state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, state), jax.random.split(k_batches, steps))
        return jnp.mean(jnp.argmax(module.apply(params, xv), -1) == yv)

    return jax.jit(program)


def trained_accuracy(x, y, xv, yv, steps, args):
    """``(key, genotypes) -> validation accuracy`` of every member trained ``steps`` at once (jitted)."""

    def program(key, genotypes):
        params = training.train_population(
            key, SPACE, genotypes, x, y, steps=steps, batch_size=args.batch, learning_rate=args.lr
        )
        return training.score(SPACE, params, genotypes, xv, yv)[0]

    return jax.jit(program)


def speed(args) -> bool:
    _, (x, y, xv, yv, _, _) = digits_arrays()
    genotypes = SPACE.sample(jax.random.key(0), args.members)
    kinds = {SPACE.architecture(g).describe() for g in np.asarray(genotypes)}
    print(
        f"[speed] {args.members} CNNs ({len(kinds)} distinct architectures), {args.steps} Adam steps of "
        f"batch {args.batch} each, then validation accuracy"
    )
    key = jax.random.key(1)

    clock = Clock()
    parallel = trained_accuracy(x, y, xv, yv, args.steps, args)
    accuracy_parallel = np.asarray(parallel(key, genotypes))
    wall_parallel, cpu_parallel = clock.read()
    print(
        f"  vmapped, one program:    {wall_parallel:7.1f} s wall, {cpu_parallel:7.1f} s CPU "
        f"(incl. compilation), mean accuracy {accuracy_parallel.mean():.3f}"
    )

    clock = Clock()
    accuracy_alone = []
    alone = np.asarray(genotypes)[: args.sequential or args.members]
    for i, genotype in enumerate(alone):
        program = standalone_program(SPACE, genotype, args.steps, args.batch, args.lr, x, y, xv, yv)
        accuracy_alone.append(float(program(key)))
        if (i + 1) % 32 == 0:
            wall, _ = clock.read()
            print(f"    ... {i + 1} trained one after another, {wall:.0f} s", flush=True)
    wall_alone, cpu_alone = clock.read()
    scale = args.members / len(alone)  # 1 unless --sequential timed a subset
    note = "" if scale == 1 else f" for {len(alone)}, x{scale:.0f} extrapolated to {args.members}"
    wall_alone, cpu_alone = wall_alone * scale, cpu_alone * scale
    print(
        f"  one after another:       {wall_alone:7.1f} s wall, {cpu_alone:7.1f} s CPU "
        f"(incl. compilation{note}), mean accuracy {np.mean(accuracy_alone):.3f}"
    )
    ratio, cpu_ratio = wall_alone / wall_parallel, cpu_alone / cpu_parallel
    print(f"  speed-up: {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU time")
    args.headlines.append(
        f"population-parallel NAS training: {ratio:.1f}x faster than one after another{note} "
        f"({args.members} CNNs, wall incl. compilation; CPU time {cpu_ratio:.1f}x; target 10x)"
    )
    return ratio >= 10.0


# --------------------------------------------------------------------------- quality


def hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """The area dominated by ``points`` (both objectives maximised) above ``reference``."""
    p = points[np.all(points > reference, axis=1)]
    if not len(p):
        return 0.0
    p = p[np.argsort(-p[:, 0])]
    area, best_y = 0.0, reference[1]
    for a, b in p:
        if b > best_y:
            area += (a - reference[0]) * (b - best_y)
            best_y = b
    return float(area)


def search_program(strategy, task, generations, x0):
    """One seed's whole search (init, then ask/evaluate/tell per generation), every candidate kept."""

    def search(key):
        k_init, k_loop = jax.random.split(key)
        state = strategy.init(k_init, x0)

        def step(state, k):
            k_ask, k_eval, k_tell = jax.random.split(k, 3)
            genotypes, state = strategy.ask(k_ask, state)
            solutions = ne.population(strategy, state, genotypes)
            evaluation, _ = task.evaluate(k_eval, (), solutions)
            state = strategy.tell(k_tell, state, genotypes, evaluation.fitness)
            return state, (solutions, evaluation.metrics["accuracy"], evaluation.metrics["params"])

        return jax.lax.scan(step, state, jax.random.split(k_loop, generations))[1]

    return jax.jit(jax.vmap(search))


def strategies_for(args):
    """(name, strategy, task, generations) with the same number of trained candidates each."""
    common = dict(steps=args.train_steps, batch_size=args.batch, learning_rate=args.lr)
    one = ne.tasks.nas(SPACE, **common)
    two = ne.tasks.nas(SPACE, objectives=("accuracy", "params"), **common)
    genes = SPACE.genotype_space()
    n = args.candidates
    re = ne.strategies.make(
        "regularized_evolution", popsize=8, population_size=32, tournament_size=8, space=genes
    )
    nsga2 = ne.strategies.make("nsga2", popsize=16, space=genes, n_objectives=2)
    return [
        ("random", ne.nas.random_search(SPACE, 8), one, n // 8),
        ("regularized_evolution", re, one, n // 8),
        ("nsga2", nsga2, two, n // 16),
    ]


def quality(args) -> bool:
    dataset, _ = digits_arrays()
    shape = dataset.input_shape
    largest = SPACE.max_params(shape)
    keys = jax.random.split(jax.random.key(2), args.seeds)
    x0 = jnp.asarray(SPACE.smallest())
    results = {}
    print(
        f"[quality] {args.seeds} seeds x {args.candidates} trained candidates per method, {args.train_steps} "
        f"steps each; {len(SPACE.genes)} genes, {np.prod(SPACE.cardinalities.astype(float)):.3g} genotypes"
    )
    for name, strategy, task, generations in strategies_for(args):
        clock = Clock()
        genotypes, accuracy, params = search_program(strategy, task, generations, x0)(keys)
        wall, cpu = clock.read()
        genotypes = np.asarray(genotypes).reshape(args.seeds, -1, SPACE.n_genes)
        accuracy = np.asarray(accuracy).reshape(args.seeds, -1)
        params = np.asarray(params).reshape(args.seeds, -1)
        points = np.stack([accuracy, -params / largest], axis=-1)
        hv = np.array([hypervolume_2d(p, np.array([0.0, -1.0])) for p in points])
        results[name] = dict(
            best=accuracy.max(1), hv=hv, genotypes=genotypes, accuracy=accuracy, params=params
        )
        print(
            f"  {name:22s} best val accuracy {accuracy.max(1).mean():.4f} +- {accuracy.max(1).std():.4f}, "
            f"front hypervolume {hv.mean():.4f} +- {hv.std():.4f} ({accuracy.shape[1]} candidates/seed; "
            f"{wall:.0f} s wall, {cpu:.0f} s CPU)"
        )
    diff = results["regularized_evolution"]["best"] - results["random"]["best"]
    hv_diff = results["nsga2"]["hv"] - results["random"]["hv"]
    print(
        f"  regularized evolution - random search, best val accuracy: {diff.mean():+.4f} "
        f"(sd {diff.std(ddof=1):.4f}, per seed {np.round(diff, 3).tolist()})"
    )
    print(f"  NSGA-II - random search, hypervolume: {hv_diff.mean():+.4f} (sd {hv_diff.std(ddof=1):.4f})")
    final_ok = final_test(args, results, dataset)
    ok = diff.mean() >= 0 and hv_diff.mean() > 0
    args.headlines.append(
        f"search quality: RE - random best val acc {diff.mean():+.4f} (sd {diff.std(ddof=1):.4f}); "
        f"NSGA-II - random HV {hv_diff.mean():+.4f} (sd {hv_diff.std(ddof=1):.4f})"
    )
    return ok and final_ok


BASELINES = [(4, 8), (8, 8), (8, 16), (16, 16)]  # conv3x3(c1) -> pool -> conv3x3(c2) -> flatten -> dense


def baseline(c1: int, c2: int):
    space = ne.nas.CNNSpace(
        max_blocks=2,
        min_blocks=2,
        widths=tuple(sorted({c1, c2})),
        kernels=(3,),
        activations=("relu",),
        skips=(False,),
        reductions=(0,),
    )
    index = space.widths.index
    return space, np.array([index(c1), index(c2)], np.int32) if len(space.widths) > 1 else np.zeros(
        0, np.int32
    )


def final_test(args, results, dataset) -> bool:
    shape = dataset.input_shape
    r = results["regularized_evolution"]
    seed, member = np.unravel_index(np.argmax(r["accuracy"]), r["accuracy"].shape)
    best = r["genotypes"][seed, member]
    count = SPACE.count_params(best, shape)
    candidates = [baseline(*c) for c in BASELINES]
    space_b, genotype_b = min(candidates, key=lambda sg: abs(sg[0].count_params(sg[1], shape) - count))
    x, y = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    xt, yt = jnp.asarray(dataset.x_test), jnp.asarray(dataset.y_test)

    def test_accuracy(space, genotype):
        scores = []
        for s in range(3):
            module, params = training.train_network(
                jax.random.key(100 + s),
                space,
                genotype,
                x,
                y,
                steps=args.final_steps,
                batch_size=args.batch,
                learning_rate=args.lr,
            )
            scores.append(float(jnp.mean(jnp.argmax(module.apply(params, xt), -1) == yt)))
        return np.mean(scores), np.std(scores)

    found, found_sd = test_accuracy(SPACE, best)
    hand, hand_sd = test_accuracy(space_b, genotype_b)
    print(
        f"  best found (regularized evolution, val {r['accuracy'].max():.4f}): "
        f"{SPACE.architecture(best).describe()}, {count} parameters"
    )
    print(f"    test accuracy {found:.4f} +- {found_sd:.4f} ({args.final_steps} steps, 3 seeds)")
    print(
        f"  hand-designed: {space_b.architecture(genotype_b).describe()}, "
        f"{space_b.count_params(genotype_b, shape)} parameters: test accuracy {hand:.4f} +- {hand_sd:.4f}"
    )
    args.extra.append(f"best found test accuracy {found:.4f} vs hand-designed {hand:.4f}")
    return True


# --------------------------------------------------------------------------- one-shot


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties)."""

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def oneshot(args) -> bool:
    _, (x, y, xv, yv, _, _) = digits_arrays()
    genotypes = SPACE.sample(jax.random.key(3), 64)
    clock = Clock()
    shared = jax.jit(
        lambda k: training.train_supernet(
            k, SPACE, x, y, steps=args.supernet_steps, batch_size=args.batch, paths=4, learning_rate=args.lr
        )
    )(jax.random.key(4))
    inherited = np.asarray(
        jax.jit(lambda p, g: training.score(SPACE, p, g, xv, yv, shared=True)[0])(shared, genotypes)
    )
    wall_shot, cpu_shot = clock.read()
    clock = Clock()
    alone = np.asarray(trained_accuracy(x, y, xv, yv, args.train_steps, args)(jax.random.key(5), genotypes))
    wall_alone, cpu_alone = clock.read()
    rho = rank_correlation(inherited, alone)
    print(
        f"[oneshot] supernet trained {args.supernet_steps} steps x 4 paths, 64 architectures scored with "
        f"inherited weights: {wall_shot:.0f} s wall ({cpu_shot:.0f} s CPU), "
        f"mean accuracy {inherited.mean():.3f}"
    )
    print(
        f"  the same 64 trained stand-alone ({args.train_steps} steps): {wall_alone:.0f} s wall "
        f"({cpu_alone:.0f} s CPU), mean accuracy {alone.mean():.3f}"
    )
    print(f"  Spearman rank correlation, inherited vs stand-alone accuracy: {rho:.3f}")
    args.extra.append(f"one-shot rank correlation {rho:.2f}")
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip", default="", help="comma-separated sections to skip: speed, quality, oneshot"
    )
    parser.add_argument("--members", type=int, default=256, help="speed: candidate CNNs")
    parser.add_argument("--steps", type=int, default=50, help="speed: training steps per candidate")
    parser.add_argument(
        "--sequential",
        type=int,
        default=None,
        help="speed: time only the first N one after another and extrapolate",
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seeds", type=int, default=10, help="quality: seeds per method")
    parser.add_argument("--candidates", type=int, default=96, help="quality: trained candidates per seed")
    parser.add_argument("--train-steps", type=int, default=50, help="quality/oneshot: steps per candidate")
    parser.add_argument("--final-steps", type=int, default=400, help="quality: retraining of the best found")
    parser.add_argument("--supernet-steps", type=int, default=1500, help="oneshot: shared supernet steps")
    args = parser.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    args.headlines, args.extra = [], []
    print(machine())
    ok = True
    for name, section in (("speed", speed), ("oneshot", oneshot), ("quality", quality)):
        if name not in skip:
            ok = section(args) and ok
    for line in args.extra:
        print(line)
    print(("PASS " if ok else "MISS ") + "; ".join(args.headlines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

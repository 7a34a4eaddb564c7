"""EvoPress on two trained models: the evolved per-layer sparsity profile against uniform sparsity
and against the profile that minimises the sum of per-layer errors.

Models (trained here with Adam, then compressed by magnitude pruning at per-layer levels):

- **digits CNN**: conv3x3(16) -> 2x2 pool -> conv3x3(32) -> conv3x3(32) -> flatten -> dense(10)
  on scikit-learn's digits (``ne.nas.digits``); calibration = the training split, validation =
  the validation split; loss = cross-entropy.
- **text**: the character-level model of ``ne.tasks.text`` (issue 18: width 64, 2 layers, the
  standard library's sources), trained ``--text-steps`` steps; calibration = random training windows,
  validation = fixed held-out windows; loss = cross-entropy per character.

For each model, mean sparsity 50% and 70% (exact: every profile prunes ``round(s * N)`` of
the ``N`` prunable weights, the kernels), ``--seeds`` search seeds: ``ne.compress.evopress``
from the uniform profile. Target: on each model and sparsity, the evolved profile's mean
validation loss is below uniform sparsity's and below the additive profile's. The search's
evaluations (candidates scored, calibration samples) are printed next to the additive
baseline's.

    python -m benchmarks.evopress [--seeds 5] [--generations 100] [--skip text]

The last line is the headline; the exit status is non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import neuroevo as ne
from benchmarks.common import machine
from neuroevo.nas import training


def digits_model(args):
    """(name, loss_fn, params, calibration, validation, selection) of the trained digits CNN."""
    d = ne.nas.digits()
    space = ne.nas.CNNSpace(
        max_blocks=3,
        min_blocks=3,
        widths=(16, 32),
        kernels=(3,),
        activations=("relu",),
        skips=(False,),
        reductions=(0,),
    )
    genotype = np.array([0, 1, 1], np.int32)
    module, params = training.train_network(
        jax.random.key(0),
        space,
        genotype,
        jnp.asarray(d.x_train),
        jnp.asarray(d.y_train),
        steps=args.digits_steps,
        batch_size=64,
        learning_rate=3e-3,
    )
    loss_fn = lambda p, batch: training.cross_entropy(module.apply(p, batch[0]), batch[1])
    accuracy = float(jnp.mean(jnp.argmax(module.apply(params, d.x_val), -1) == d.y_val))
    description = f"{space.architecture(genotype).describe()}, validation accuracy {accuracy:.4f}"
    return (
        "digits CNN",
        description,
        loss_fn,
        params,
        (d.x_train, d.y_train),
        (d.x_val, d.y_val),
        ((32, 4), (128, 2), (512, 1)),
    )


def text_model(args):
    """The same for ``ne.tasks.text``'s model (None when that task is not installed)."""
    if importlib.util.find_spec("neuroevo.tasks.text") is None:
        return None
    task = ne.tasks.text(seq_len=32, width=64, layers=2, max_mib=1.0)
    info = task.info
    loss, sample = info["loss"], info["sample"]
    params = task.init_solution(jax.random.key(0))
    opt = optax.adam(3e-3)

    @jax.jit
    def train(params):
        def step(carry, key):
            params, state = carry
            grads = jax.grad(loss)(params, sample(key, 32))
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        keys = jax.random.split(jax.random.key(1), args.text_steps)
        return jax.lax.scan(step, (params, opt.init(params)), keys)[0][0]

    params = train(params)
    calibration = np.asarray(sample(jax.random.key(2), 2048))
    validation = np.asarray(info["validation_windows"](256))
    val = float(loss(params, jnp.asarray(validation)))
    description = (
        f"{type(info.get('model')).__name__} width 64, 2 layers, {args.text_steps} Adam steps: validation "
        f"{val / np.log(2):.3f} bits/char (unigram {info['unigram_entropy_bits']:.3f})"
    )
    return "text model", description, loss, params, calibration, validation, ((4, 4), (16, 2), (64, 1))


def compare(model, args) -> tuple[bool, list[str]]:
    name, description, loss_fn, params, calibration, validation, selection = model
    print(f"[{name}] {description}")
    ok, lines = True, []
    for sparsity in args.sparsities:
        rows, t = [], time.perf_counter()
        for seed in range(args.seeds):
            result = ne.compress.evopress(
                jax.random.key(seed),
                loss_fn,
                params,
                calibration,
                validation=validation,
                sparsity=sparsity,
                generations=args.generations,
                offspring=args.offspring,
                selection=selection,
                levels=args.levels,
                max_switches=args.max_switches,
            )
            rows.append(result)
        losses = {
            k: np.array([r.losses[k] for r in rows]) for k in ("dense", "uniform", "additive", "evolved")
        }
        grid, ev = rows[0].grid, rows[0].evaluations
        evolved = losses["evolved"]
        wins = int(np.sum((evolved < losses["uniform"]) & (evolved < losses["additive"])))
        met = evolved.mean() < losses["uniform"].mean() and evolved.mean() < losses["additive"].mean()
        ok = ok and met
        print(
            f"  sparsity {grid.sparsity:.4f} ({grid.target} of {int(grid.sizes.sum())} weights, "
            f"{len(grid.paths)} layers, steps of {grid.quantum}), {args.seeds} seeds, "
            f"{time.perf_counter() - t:.0f} s"
        )
        print(
            f"    validation loss: dense {losses['dense'][0]:.4f}, uniform {losses['uniform'][0]:.4f}, "
            f"additive {losses['additive'][0]:.4f}, evolved {evolved.mean():.4f} +- {evolved.std():.4f} "
            f"(per seed {np.round(evolved, 4).tolist()}; below both in {wins}/{args.seeds})"
        )
        print(f"    per-layer sparsity, evolved (seed 0): {np.round(rows[0].layer_sparsity, 2).tolist()}")
        print(
            f"    evaluations: search {ev['search_candidate_evaluations']} candidates on "
            f"{ev['search_samples']} calibration samples per seed; additive {ev['additive_evaluations']} "
            f"single-layer evaluations on {ev['additive_samples']} samples"
        )
        lines.append(
            f"{name} {int(round(sparsity * 100))}%: evolved {evolved.mean():.4f} vs uniform "
            f"{losses['uniform'][0]:.4f}, additive {losses['additive'][0]:.4f}"
        )
    return ok, lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--offspring", type=int, default=16)
    parser.add_argument("--levels", type=int, default=40, help="average levels per layer")
    parser.add_argument("--max-switches", type=int, default=2)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.7])
    parser.add_argument("--digits-steps", type=int, default=800)
    parser.add_argument("--text-steps", type=int, default=600)
    parser.add_argument("--skip", default="", help="comma-separated: digits, text")
    args = parser.parse_args(argv)
    skip = set(args.skip.split(","))
    print(machine())
    ok, headlines = True, []
    for key, build in (("digits", digits_model), ("text", text_model)):
        if key in skip:
            continue
        model = build(args)
        if model is None:
            print(f"[{key}] ne.tasks.text is not installed here (issue 18's low-rank branch): not measured")
            ok = False
            headlines.append("text model missing")
            continue
        met, lines = compare(model, args)
        ok = ok and met
        headlines.extend(lines)
    print(("PASS " if ok else "MISS ") + "EvoPress validation loss: " + "; ".join(headlines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

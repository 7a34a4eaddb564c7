"""EvoPress on a trained model (``ne.compress.evopress``): per-layer sparsity under a global budget.

Give any model as ``loss_fn(params, batch) -> mean loss`` (a flax model's ``apply`` and a
loss), its trained ``params``, calibration data and a target ``sparsity``:

    result = ne.compress.evopress(key, loss_fn, params, calibration, sparsity=0.7,
                                  validation=validation, out="compressed/")

The search is :func:`neuroevo.strategies.evopress` on :func:`neuroevo.tasks.compression`,
run by :func:`neuroevo.run` (progress, checkpoints) from the uniform profile. The result
holds the evolved per-layer profile and the compressed parameters, and the validation loss
of the dense model, of **uniform** sparsity (every layer at the target), of the
**additive** profile (the one minimising the sum of per-layer errors, each measured with
only that layer pruned: EvoPress's point is that this sum does not predict the
end-to-end loss) and of the **evolved** profile. With ``out`` it writes
``compressed_params.msgpack`` (flax serialisation, the pruned weights as zeros) and
``profile.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.engine.loop import run
from neuroevo.nas import pruning
from neuroevo.strategies.evopress import evopress as evopress_strategy
from neuroevo.tasks.compression import check_selection, compression, examples

PyTree = Any


class CompressionResult(NamedTuple):
    levels: np.ndarray  # the evolved profile: level per layer
    counts: np.ndarray  # weights pruned per layer
    layer_sparsity: np.ndarray  # per layer
    params: PyTree  # the compressed parameters
    losses: dict  # validation loss: dense, uniform, additive, evolved
    evaluations: dict  # candidate evaluations and calibration samples of the search and the baseline
    grid: pruning.LevelGrid
    history: dict


def mean_loss(loss_fn: Callable, params: PyTree, data: PyTree, chunk: int = 1024) -> float:
    """``loss_fn``'s mean over all of ``data``, ``chunk`` examples at a time (weighted by size)."""
    n = examples(data)
    total = 0.0
    for start in range(0, n, chunk):
        part = jax.tree_util.tree_map(lambda a, s=start: a[s : s + chunk], data)
        total += float(loss_fn(params, part)) * min(chunk, n - start)
    return total / n


def layer_errors(
    loss_fn: Callable, params: PyTree, grid: pruning.LevelGrid, data: PyTree, chunk: int = 8
) -> tuple[list[np.ndarray], int]:
    """Each layer's loss increase on ``data`` at each of its levels, the other layers dense;
    and the number of evaluations it took (``chunk`` of them at once)."""
    ranks = pruning.magnitude_ranks(params, grid)
    n_layers = len(grid.paths)
    rows = [
        (i, level) for i in range(n_layers) for level in range(int(grid.max_levels[i]) + 1)
    ]  # every (layer, level)
    counts = np.zeros((len(rows), n_layers), np.int64)
    for r, (i, level) in enumerate(rows):
        counts[r, i] = level * grid.quantum + grid.offset[i]
    one = lambda c: loss_fn(pruning.prune(params, grid, ranks, c), data)
    losses = jax.jit(lambda c: jax.lax.map(one, c, batch_size=chunk))(jnp.asarray(counts, jnp.int32))
    dense = float(loss_fn(params, data))
    errors = [np.zeros(int(m) + 1) for m in grid.max_levels]
    for (i, level), value in zip(rows, np.asarray(losses), strict=True):
        errors[i][level] = value - dense
    return errors, len(rows)


def evopress(
    key: jax.Array,
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    calibration: PyTree,
    *,
    sparsity: float,
    validation: PyTree | None = None,
    generations: int = 100,
    offspring: int = 16,
    selection: Sequence[Sequence[int]] = ((16, 4), (64, 2), (256, 1)),
    max_switches: int = 1,
    levels: int = 20,
    max_sparsity: float = 0.95,
    select: Callable = pruning.kernel_layers,
    error_samples: int = 512,
    out: str | None = None,
    progress: bool = False,
) -> CompressionResult:
    """Search a per-layer sparsity profile with EvoPress (see the module docstring).

    Args:
      key: PRNG key. loss_fn: ``loss_fn(params, batch) -> mean loss``. params: trained weights.
      calibration: the search's data (pytree, leading example axis).
      sparsity: the global fraction of prunable weights removed (exact to one weight).
      validation: held-out data for the reported losses (default: ``calibration``).
      generations, offspring, selection, max_switches: the search (:func:`neuroevo.strategies.evopress`,
        :func:`neuroevo.tasks.compression`).
      levels, max_sparsity, select: the levels (:func:`neuroevo.nas.pruning.level_grid`).
      error_samples: calibration samples for the additive baseline's per-layer errors.
      out: a directory for ``compressed_params.msgpack`` and ``profile.json``.
    Bad input (a budget no assignment reaches, selection sizes the data cannot give) raises
    ``ValueError`` before anything runs or is written.
    """
    grid = pruning.level_grid(params, sparsity, levels=levels, max_sparsity=max_sparsity, select=select)
    n = examples(calibration)
    check_selection(selection, n)
    validation = calibration if validation is None else validation
    examples(validation)
    if isinstance(generations, bool) or not isinstance(generations, int) or generations < 1:
        raise ValueError(f"generations must be a positive int, got {generations!r}")
    strategy = evopress_strategy(offspring=offspring, max_levels=grid.max_levels, max_switches=max_switches)
    task = compression(loss_fn, params, calibration, grid, selection=selection)
    start = pruning.uniform_levels(grid)
    result = run(key, strategy, task, jnp.asarray(start, jnp.int32), generations, progress=progress)
    evolved = np.asarray(result.state.best_solution, np.int64)

    subset = jax.tree_util.tree_map(lambda a: jnp.asarray(a)[: min(error_samples, n)], calibration)
    errors, error_evaluations = layer_errors(loss_fn, params, grid, subset)
    additive = pruning.additive_levels(grid, errors)
    ranks = pruning.magnitude_ranks(params, grid)
    pruned = lambda counts: pruning.prune(params, grid, ranks, jnp.asarray(counts, jnp.int32))
    profiles = {
        "uniform": pruning.uniform_counts(grid),
        "additive": grid.counts(additive),
        "evolved": grid.counts(evolved),
    }
    losses = {"dense": mean_loss(loss_fn, params, validation)}
    losses.update({name: mean_loss(loss_fn, pruned(c), validation) for name, c in profiles.items()})
    steps = check_selection(selection, n)
    members = [offspring + 1] + [k for _, k in steps[:-1]]
    evaluations = {
        "search_candidate_evaluations": generations * sum(members),
        "search_samples": int(np.sum(result.history.get("samples", 0))),
        "additive_evaluations": error_evaluations,
        "additive_samples": error_evaluations * min(error_samples, n),
    }
    counts = profiles["evolved"]
    compressed = pruned(counts)
    outcome = CompressionResult(
        levels=evolved,
        counts=counts,
        layer_sparsity=counts / grid.sizes,
        params=compressed,
        losses=losses,
        evaluations=evaluations,
        grid=grid,
        history=result.history,
    )
    if out is not None:
        write(out, outcome, profiles)
    return outcome


def write(out: str, result: CompressionResult, profiles: dict) -> None:
    """``compressed_params.msgpack`` and ``profile.json`` in ``out``."""
    from flax import serialization

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "compressed_params.msgpack"), "wb") as f:
        f.write(serialization.msgpack_serialize(serialization.to_state_dict(jax.device_get(result.params))))
    grid = result.grid
    layers = [jax.tree_util.keystr(p) for p in grid.paths]
    profile = {
        "sparsity": grid.sparsity,
        "pruned": grid.target,
        "weights": int(grid.sizes.sum()),
        "quantum": grid.quantum,
        "layers": [
            {
                "layer": name,
                "weights": int(size),
                **{f"{k}_pruned": int(c[i]) for k, c in profiles.items()},
                "evolved_sparsity": float(result.layer_sparsity[i]),
            }
            for i, (name, size) in enumerate(zip(layers, grid.sizes, strict=True))
        ],
        "validation_loss": result.losses,
        "evaluations": result.evaluations,
    }
    with open(os.path.join(out, "profile.json"), "w") as f:
        json.dump(profile, f, indent=2)

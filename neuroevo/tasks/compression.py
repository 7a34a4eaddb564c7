"""Compression as a task: per-layer pruning levels scored by the pruned model's loss, with
EvoPress's multi-step selection (:mod:`neuroevo.strategies.evopress`).

``ne.tasks.compression(loss_fn, params, data, grid)`` evaluates level assignments
(``int32[P, L]``, one level per prunable layer of ``grid``, a
:class:`neuroevo.nas.pruning.LevelGrid`): member ``m`` is ``params`` with each layer's
``grid.counts(levels_m)[i]`` smallest-magnitude weights zeroed, and its loss is
``loss_fn(pruned, batch)`` on calibration samples drawn from ``data`` (a pytree of arrays
with a leading example axis, e.g. ``(x, y)``; ``loss_fn`` returns the batch's mean loss).

**Multi-step selection** (``selection = ((n_1, k_1), (n_2, k_2), ...)``): all members are
scored on ``n_1`` fresh samples and the ``k_1`` best survive; those are scored on ``n_2``
fresh samples and the ``k_2`` best survive; and so on. Few samples weed out the bad
candidates cheaply; many samples decide between the good ones. The survivors of the last
step get fitness ``-loss`` on its samples, every other member ``-inf``. Samples are drawn
without replacement from the generation's key, fresh each generation. Metrics per member:
``loss`` (on the last step it took part in), ``survived`` (how many steps it passed) and
``samples`` (calibration samples it was evaluated on; summed over the population in the
run's history: the search's cost).

The selection ranks the whole population, so do not split it into chunks
(``chunk_size``): a chunk smaller than ``k_1`` raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from neuroevo.nas import pruning
from neuroevo.tasks.base import Evaluation, Task

PyTree = Any


def check_selection(selection: Sequence[Sequence[int]], n: int) -> tuple[tuple[int, int], ...]:
    """``selection`` as ``((samples, survivors), ...)`` with ``1 <= samples <= n`` and survivors
    non-increasing and at least 1; else ``ValueError``."""
    try:
        steps = tuple((int(a), int(b)) for a, b in selection)
    except (TypeError, ValueError):
        raise ValueError(f"selection must be pairs (samples, survivors), got {selection!r}") from None
    if not steps:
        raise ValueError("selection needs at least one step (samples, survivors)")
    previous = None
    for samples, survivors in steps:
        if not 1 <= samples <= n:
            raise ValueError(
                f"selection asks for {samples} samples, but the calibration data has {n} (1..{n})"
            )
        if survivors < 1 or (previous is not None and survivors > previous):
            raise ValueError(f"survivors must be >= 1 and non-increasing from step to step, got {steps}")
        previous = survivors
    return steps


def examples(data: PyTree) -> int:
    """The common leading (example) axis of ``data``'s leaves; else ``ValueError``."""
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree_util.tree_leaves(data)}
    if not sizes or None in sizes or len(sizes) != 1:
        raise ValueError(
            f"data must be arrays with one common leading example axis, got leading sizes {sizes}"
        )
    return sizes.pop()


def compression(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    params: PyTree,
    data: PyTree,
    grid: pruning.LevelGrid,
    *,
    selection: Sequence[Sequence[int]] = ((16, 4), (64, 2), (256, 1)),
) -> Task:
    """The compression task (see the module docstring).

    Args:
      loss_fn: ``loss_fn(params, batch) -> mean loss`` of the model (any flax model's apply inside).
      params: the trained, dense parameters.
      data: calibration examples, a pytree with a leading example axis.
      grid: the levels and budget (:func:`neuroevo.nas.pruning.level_grid` of ``params``).
      selection: the multi-step selection's ``(samples, survivors)`` per step.
    """
    n = examples(data)
    steps = check_selection(selection, n)
    ranks = pruning.magnitude_ranks(params, grid)
    data = jax.tree_util.tree_map(jnp.asarray, data)

    def member_loss(counts, batch):
        return loss_fn(pruning.prune(params, grid, ranks, counts), batch)

    def evaluate(key, task_state, levels):
        size = levels.shape[0]
        if steps[0][1] > size:
            raise ValueError(
                f"the first selection step keeps {steps[0][1]} survivors of only {size} members "
                "(do not chunk the population: the selection ranks it whole)"
            )
        counts = grid.counts(jnp.asarray(levels, jnp.int32))
        alive = jnp.arange(size)
        loss = jnp.full((size,), jnp.nan, jnp.float32)
        survived = jnp.zeros((size,), jnp.float32)
        samples = jnp.zeros((size,), jnp.float32)
        for j, (n_samples, survivors) in enumerate(steps):
            index = jax.random.choice(jax.random.fold_in(key, j), n, (n_samples,), replace=False)
            batch = jax.tree_util.tree_map(lambda a, index=index: a[index], data)
            step_loss = jax.vmap(member_loss, in_axes=(0, None))(counts[alive], batch).astype(jnp.float32)
            ranked = jnp.argsort(jnp.where(jnp.isnan(step_loss), jnp.inf, step_loss), stable=True)[:survivors]
            loss = loss.at[alive].set(step_loss)
            samples = samples.at[alive].add(n_samples)
            survived = survived.at[alive[ranked]].add(1.0)
            alive, final = alive[ranked], step_loss[ranked]
        fitness = jnp.full((size,), -jnp.inf, jnp.float32).at[alive].set(-final)
        metrics = {"loss": loss, "survived": survived, "samples": samples}
        return Evaluation(fitness=fitness, metrics=metrics), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.asarray(pruning.uniform_levels(grid), jnp.int32),
        info={"name": "compression", "total_metrics": ("samples",), "grid": grid},
    )

"""Magnitude pruning at per-layer levels under a global sparsity budget (EvoPress's search space).

A trained model's prunable **layers** are its weight matrices (by default every leaf named
``kernel`` with two or more axes: dense and convolution kernels; biases and norms stay
dense). Layer ``i`` has ``n_i`` weights; pruning it at ``c`` zeroes its ``c`` weights of
smallest magnitude (ties broken by position, so exactly ``c``).

**Levels.** To make "mean sparsity exactly s" a constraint that a level-switch mutation
(one layer up a level, another down one) keeps, every level step prunes the same number
of weights ``q`` (the quantum) in every layer, as in EvoPress: layer ``i`` at level
``l_i`` prunes ``q * l_i + offset_i`` weights. The target is ``K = round(s * N)`` pruned
weights of ``N``; with ``B = K // q`` level steps, the remainder ``K - q * B`` (< q) is a
fixed ``offset`` in the largest layer. Every assignment with ``sum(l) = B`` then prunes
exactly ``K`` weights: the global sparsity is ``K / N``, within half a weight of ``s``.
Layer ``i``'s level is at most ``(floor(max_sparsity * n_i) - offset_i) // q``.

:func:`uniform_counts` (every layer at ``s``, rounded to sum to ``K``) and
:func:`additive_levels` (the assignment minimising the *sum* of per-layer errors, solved
exactly by dynamic programming) are EvoPress's two baselines; :func:`uniform_levels` is
its starting point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
PyTree = Any


class LevelGrid(NamedTuple):
    """The per-layer levels of a global budget (see the module docstring); numpy, static."""

    paths: tuple  # the prunable leaves' key paths
    sizes: np.ndarray  # n_i
    quantum: int  # q: weights per level step
    max_levels: np.ndarray  # per-layer cap
    offset: np.ndarray  # fixed extra weights pruned (the remainder, in one layer)
    budget: int  # B = sum of levels
    target: int  # K: weights pruned in total

    @property
    def sparsity(self) -> float:
        """The exact global sparsity every assignment reaches: ``K / N``."""
        return self.target / int(self.sizes.sum())

    def counts(self, levels: Any) -> Any:
        """Weights pruned per layer at ``levels`` (numpy or traced)."""
        if isinstance(levels, jax.Array):
            return levels * self.quantum + jnp.asarray(self.offset, levels.dtype)
        return np.asarray(levels, np.int64) * self.quantum + self.offset


def kernel_layers(path: tuple, leaf: Any) -> bool:
    """The default choice of prunable layers: leaves named ``kernel`` with two or more axes."""
    last = path[-1]
    name = getattr(last, "key", getattr(last, "name", None))
    return name == "kernel" and np.ndim(leaf) >= 2


def prunable(params: PyTree, select: Callable[[tuple, Any], bool] = kernel_layers) -> tuple:
    """The key paths of ``params``' prunable leaves (``select(path, leaf)``), in tree order."""
    paths = tuple(p for p, leaf in jax.tree_util.tree_leaves_with_path(params) if select(p, leaf))
    if not paths:
        raise ValueError(
            "no prunable layers: params has no leaf that select() accepts (default: 'kernel' matrices)"
        )
    return paths


def _leaf(params: PyTree, path: tuple) -> Any:
    for entry in path:
        params = params[getattr(entry, "key", getattr(entry, "idx", None))]
    return params


def level_grid(
    params: PyTree,
    sparsity: float,
    *,
    levels: int = 20,
    max_sparsity: float = 0.95,
    quantum: int | None = None,
    select: Callable[[tuple, Any], bool] = kernel_layers,
) -> LevelGrid:
    """The levels of a global ``sparsity`` over ``params``' prunable layers.

    Args:
      sparsity: the fraction of all prunable weights to remove, in (0, 1).
      levels: the default quantum gives the *average* layer this many levels from 0 to full.
      max_sparsity: no layer is pruned beyond this fraction.
      quantum: weights per level step (overrides ``levels``).
    Raises ``ValueError`` for a budget no assignment reaches (``sparsity > max_sparsity``, or
    the layers' caps too small), naming the numbers.
    """
    if not 0.0 < float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in (0, 1), got {sparsity}")
    if not 0.0 < float(max_sparsity) <= 1.0:
        raise ValueError(f"max_sparsity must be in (0, 1], got {max_sparsity}")
    paths = prunable(params, select)
    sizes = np.array([np.size(_leaf(params, p)) for p in paths], np.int64)
    total = int(sizes.sum())
    if quantum is None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
            raise ValueError(f"levels must be a positive int, got {levels!r}")
        quantum = max(1, int(round(total / (len(paths) * levels))))
    elif isinstance(quantum, bool) or not isinstance(quantum, int) or quantum < 1:
        raise ValueError(f"quantum must be a positive int, got {quantum!r}")
    target = int(round(sparsity * total))
    budget, remainder = divmod(target, quantum)
    offset = np.zeros_like(sizes)
    offset[int(np.argmax(sizes))] = remainder
    caps = np.floor(max_sparsity * sizes).astype(np.int64) - offset
    max_levels = np.maximum(caps, 0) // quantum
    reachable = int((max_levels * quantum).sum() + remainder)
    if caps.min() < 0 or int(max_levels.sum()) < budget:
        raise ValueError(
            f"no per-layer assignment reaches sparsity {sparsity} ({target} of {total} weights): "
            f"with at most max_sparsity={max_sparsity} of each layer (layer sizes {sizes.tolist()}) "
            f"and steps of {quantum} weights, at most {reachable} can be pruned"
        )
    return LevelGrid(paths, sizes, quantum, max_levels, offset, budget, target)


def magnitude_ranks(params: PyTree, grid: LevelGrid) -> tuple[Array, ...]:
    """Each prunable weight's rank by magnitude within its layer (0 = smallest), ``int32`` like the leaf."""
    ranks = []
    for path in grid.paths:
        w = np.abs(np.asarray(_leaf(params, path), np.float64)).ravel()
        order = np.argsort(w, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        ranks.append(jnp.asarray(rank.reshape(np.shape(_leaf(params, path))), jnp.int32))
    return tuple(ranks)


def prune(params: PyTree, grid: LevelGrid, ranks: tuple[Array, ...], counts: Array) -> PyTree:
    """``params`` with ``counts[i]`` weights of smallest magnitude zeroed in layer ``i`` (traceable)."""
    position = {path: i for i, path in enumerate(grid.paths)}

    def cut(path, leaf):
        i = position.get(path)
        return leaf if i is None else jnp.where(ranks[i] >= counts[i], leaf, jnp.zeros_like(leaf))

    return jax.tree_util.tree_map_with_path(cut, params)


def uniform_counts(grid: LevelGrid) -> np.ndarray:
    """Every layer at the global sparsity (``K * n_i / N``, rounded by largest remainder to sum to ``K``)."""
    share = grid.target * grid.sizes / grid.sizes.sum()
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: grid.target - int(counts.sum())]] += 1
    return counts


def uniform_levels(grid: LevelGrid) -> np.ndarray:
    """The level assignment nearest uniform sparsity that sums to the budget (EvoPress's start)."""
    share = np.minimum((uniform_counts(grid) - grid.offset) / grid.quantum, grid.max_levels)
    levels = np.clip(np.floor(share), 0, grid.max_levels).astype(np.int64)
    while int(levels.sum()) < grid.budget:  # raise the layers furthest below their share
        room = np.where(levels < grid.max_levels, share - levels, -np.inf)
        levels[int(np.argmax(room))] += 1
    return levels


def additive_levels(grid: LevelGrid, errors: Any) -> np.ndarray:
    """The assignment with ``sum(levels) = budget`` minimising ``sum_i errors[i][levels[i]]``.

    ``errors[i]`` holds layer ``i``'s error at levels ``0 .. max_levels[i]`` (e.g. the loss
    increase when only that layer is pruned). Exact dynamic programming over layers and budget.
    """
    budget, n = grid.budget, len(grid.paths)
    cost = np.full((n + 1, budget + 1), np.inf)
    cost[0, 0] = 0.0
    choice = np.zeros((n, budget + 1), np.int64)
    for i in range(n):
        e = np.asarray(errors[i], np.float64)
        if e.shape != (int(grid.max_levels[i]) + 1,):
            raise ValueError(
                f"errors[{i}] must hold {int(grid.max_levels[i]) + 1} values, got shape {e.shape}"
            )
        for b in range(budget + 1):
            top = min(b, int(grid.max_levels[i]))
            options = cost[i, b - np.arange(top + 1)] + e[: top + 1]
            choice[i, b] = int(np.argmin(options))
            cost[i + 1, b] = options[choice[i, b]]
    levels, b = np.zeros(n, np.int64), budget
    for i in range(n - 1, -1, -1):
        levels[i] = choice[i, b]
        b -= levels[i]
    return levels

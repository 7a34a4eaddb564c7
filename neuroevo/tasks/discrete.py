"""Discrete benchmark tasks on bit strings: NK landscapes and deceptive traps.

Solutions are ``int32`` vectors of 0/1 genes (``info["space"]`` is the matching
:func:`neuroevo.space.categorical` space); fitness is maximised, in [0, 1].

- :func:`nk_landscape`: Kauffman's NK model (Kauffman & Weinberger 1989, "The NK
  model of rugged fitness landscapes and its application to maturation of the
  immune response"): gene ``i`` contributes ``table_i[x_i, x_{i+1}, .., x_{i+K}]``
  (its K cyclic right neighbours), a value drawn uniformly from [0, 1) for each
  of the ``2^(K+1)`` patterns; fitness is the mean contribution. K tunes the
  ruggedness (K = 0: one optimum; K = N - 1: random). The tables come from
  ``seed`` (numpy, on the host), so an instance is reproducible.
- :func:`trap`: concatenated deceptive traps (Deb & Goldberg 1993, "Analyzing
  deception in trap functions"): each block of ``k`` bits with ``u`` ones scores
  ``k`` if ``u = k`` and ``k - 1 - u`` otherwise, so every block's slope leads
  away from its optimum (all ones) towards all zeros. Fitness is the total over
  ``n_blocks * k``; the optimum is 1.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from neuroevo import space as discrete
from neuroevo.strategy import static_int
from neuroevo.tasks.base import Evaluation, Task


def _task(name: str, n: int, fitness_fn, info: dict) -> Task:
    def evaluate(key, task_state, solutions):
        del key
        return Evaluation(fitness=fitness_fn(jnp.asarray(solutions, jnp.int32))), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.zeros((n,), jnp.int32),
        info={"name": name, "space": discrete.categorical([2] * n), **info},
    )


def nk_landscape(n: int = 32, k: int = 4, seed: int = 0) -> Task:
    """An NK landscape of ``n`` bits, each interacting with its ``k`` cyclic right neighbours.

    ``info`` holds the ``tables`` (``(n, 2^(k+1))`` numpy) and ``neighbours``.
    """
    n = static_int("n", n, 1)
    k = static_int("k", k, 0, n - 1, f"n - 1 = {n - 1}")
    tables = np.random.default_rng(seed).random((n, 2 ** (k + 1))).astype(np.float32)
    neighbours = (np.arange(n)[:, None] + np.arange(k + 1)[None, :]) % n  # gene i and its k neighbours
    weights = (2 ** np.arange(k, -1, -1)).astype(np.int32)

    def fitness(x):
        pattern = jnp.sum(x[:, neighbours] * weights, axis=-1)  # (popsize, n): each gene's table row
        return jnp.mean(
            jnp.take_along_axis(jnp.asarray(tables)[None], pattern[..., None], axis=-1)[..., 0], -1
        )

    info = {"n": n, "k": k, "seed": seed, "tables": tables, "neighbours": neighbours}
    return _task(f"nk_n{n}_k{k}_s{seed}", n, fitness, info)


def trap(n_blocks: int = 10, k: int = 5) -> Task:
    """``n_blocks`` concatenated deceptive traps of ``k >= 2`` bits (optimum 1: all ones)."""
    n_blocks = static_int("n_blocks", n_blocks, 1)
    k = static_int("k", k, 2)

    def fitness(x):
        ones = jnp.sum(x.reshape(x.shape[0], n_blocks, k), axis=-1)
        score = jnp.where(ones == k, k, k - 1 - ones)
        return jnp.sum(score, axis=-1).astype(jnp.float32) / (n_blocks * k)

    return _task(f"trap_{n_blocks}x{k}", n_blocks * k, fitness, {"n_blocks": n_blocks, "k": k})

"""The DTLZ problems as tasks, in any number of variables and objectives: Deb, Thiele,
Laumanns & Zitzler (2005), "Scalable test problems for evolutionary multiobjective
optimization", in Evolutionary Multiobjective Optimization, Springer.

Each minimises ``M`` objectives of ``n = M + k - 1`` variables in ``[0, 1]``: the
first ``M - 1`` place a point on the front's manifold, the last ``k`` set its
distance ``g`` (0 on the front). The task's fitness is ``-f`` (shape
``(popsize, M)``, maximised). ``info`` holds ``bounds``, ``n_objectives``,
``pareto_front(n)`` (about ``n`` points of the true front, maximisation
convention, for IGD) and ``ref_point`` (a hypervolume reference point a little
worse than the front's nadir).

- DTLZ1: linear front ``sum f = 0.5``; ``g`` is Rastrigin-like (11^k - 1 local fronts). k = 5.
- DTLZ2: spherical front ``sum f^2 = 1``; ``g = sum (x - 0.5)^2``. k = 10.
- DTLZ3: DTLZ2's front with DTLZ1's multimodal ``g``. k = 10.
- DTLZ4: DTLZ2 with ``x^100`` for the position: a biased density. k = 10.
- DTLZ5, DTLZ6: degenerate (a curve), ``g = sum (x - 0.5)^2`` resp. ``sum x^0.1``. k = 10.
- DTLZ7: ``2^(M-1)`` disconnected regions; ``f_M = (1 + g) h``. k = 20.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.moo.reference import das_dennis, partitions_for
from neuroevo.tasks.base import Evaluation, Task

_DEFAULT_K = {1: 5, 2: 10, 3: 10, 4: 10, 5: 10, 6: 10, 7: 20}


def _rastrigin_g(rest: jax.Array) -> jax.Array:
    k = rest.shape[0]
    return 100.0 * (k + jnp.sum((rest - 0.5) ** 2 - jnp.cos(20.0 * jnp.pi * (rest - 0.5))))


def _sphere(position: jax.Array, g: jax.Array) -> jax.Array:
    """``(1 + g)`` times the point on the unit sphere at angles ``position * pi / 2``."""
    # In float32 cos(pi / 2) is -4.4e-8: clipped at 0, else members at the bound x = 1 would gain
    # in that objective from a larger distance g (and never be dominated).
    c = jnp.maximum(jnp.cos(position * jnp.pi / 2), 0.0)
    s = jnp.maximum(jnp.sin(position * jnp.pi / 2), 0.0)
    m = position.shape[0] + 1
    cos_products = jnp.concatenate([jnp.ones((1,)), jnp.cumprod(c)])  # prod of the first i cosines
    f = [cos_products[m - 1 - i] * (s[m - 1 - i] if i > 0 else 1.0) for i in range(m)]
    return (1.0 + g) * jnp.stack(f)


def _objectives(number: int, m: int, x: jax.Array) -> jax.Array:
    """The ``m`` minimised objectives of DTLZ``number`` at ``x``."""
    position, rest = x[: m - 1], x[m - 1 :]
    if number == 1:
        g = _rastrigin_g(rest)
        products = jnp.concatenate([jnp.ones((1,)), jnp.cumprod(position)])
        f = [products[m - 1 - i] * ((1.0 - position[m - 1 - i]) if i > 0 else 1.0) for i in range(m)]
        return 0.5 * (1.0 + g) * jnp.stack(f)
    if number in (2, 3, 4):
        g = _rastrigin_g(rest) if number == 3 else jnp.sum((rest - 0.5) ** 2)
        return _sphere(position**100 if number == 4 else position, g)
    if number in (5, 6):
        g = jnp.sum((rest - 0.5) ** 2) if number == 5 else jnp.sum(rest**0.1)
        theta = (1.0 + 2.0 * g * position[1:]) / (2.0 * (1.0 + g))  # as a fraction of pi / 2
        return _sphere(jnp.concatenate([position[:1], theta]), g)
    g = 1.0 + 9.0 * jnp.mean(rest)
    h = m - jnp.sum(position / (1.0 + g) * (1.0 + jnp.sin(3.0 * jnp.pi * position)))
    return jnp.concatenate([position, ((1.0 + g) * h)[None]])


def pareto_front(number: int, n_objectives: int, n_points: int = 500) -> np.ndarray:
    """About ``n_points`` of DTLZ``number``'s true front, minimised ``f`` (float64 numpy)."""
    m = n_objectives
    if number in (1, 2, 3, 4):
        directions = das_dennis(m, partitions_for(m, n_points))
        if number == 1:
            return 0.5 * directions
        return directions / np.linalg.norm(directions, axis=1, keepdims=True)
    if number in (5, 6):  # g = 0: the first angle sweeps [0, pi/2], the others are pi/4
        angles = np.concatenate(
            [np.linspace(0.0, np.pi / 2, n_points)[:, None], np.full((n_points, m - 2), np.pi / 4)], axis=1
        )
        cos = np.concatenate([np.ones((n_points, 1)), np.cumprod(np.cos(angles), axis=1)], axis=1)
        sin = np.sin(angles)
        return np.stack([cos[:, m - 1 - i] * (sin[:, m - 1 - i] if i else 1.0) for i in range(m)], axis=1)
    # DTLZ7: g = 1 on the front; a grid of positions, of which the non-dominated points.
    per_axis = max(2, math.ceil((4 * n_points) ** (1.0 / (m - 1))))
    axes = np.meshgrid(*[np.linspace(0.0, 1.0, per_axis)] * (m - 1), indexing="ij")
    grid = np.stack(axes, -1).reshape(-1, m - 1)
    last = 2.0 * (m - np.sum(grid / 2.0 * (1.0 + np.sin(3.0 * np.pi * grid)), axis=1))
    f = np.concatenate([grid, last[:, None]], axis=1)
    dominated = np.zeros(len(f), bool)
    for start in range(0, len(f), 256):
        rows = f[start : start + 256, None, :]
        dominated |= np.any(np.all(rows <= f, axis=2) & np.any(rows < f, axis=2), axis=0)
    return f[~dominated]


def dtlz(number: int, n_objectives: int = 3, n_var: int | None = None) -> Task:
    """DTLZ``number`` (1-7) with ``n_objectives`` objectives and ``n_var`` variables.

    ``n_var`` defaults to ``n_objectives + k - 1`` with the paper's k (5 for DTLZ1,
    20 for DTLZ7, 10 otherwise) and must be at least ``n_objectives``.
    """
    if number not in _DEFAULT_K:
        raise ValueError(f"unknown DTLZ problem {number!r}; valid: {sorted(_DEFAULT_K)}")
    m = n_objectives
    if isinstance(m, bool) or not isinstance(m, int) or m < 2:
        raise ValueError(f"DTLZ{number} needs n_objectives >= 2 (an int), got {n_objectives!r}")
    n = m + _DEFAULT_K[number] - 1 if n_var is None else n_var
    if isinstance(n, bool) or not isinstance(n, int) or n < m:
        raise ValueError(
            f"DTLZ{number} with {m} objectives needs n_var >= n_objectives = {m} (an int), got {n_var!r}"
        )

    def evaluate(key, task_state, solutions):
        del key
        f = jax.vmap(lambda x: _objectives(number, m, x))(jnp.asarray(solutions))
        return Evaluation(fitness=-f), task_state

    if number == 7:  # positions in [0, 1], the last objective up to about 2 M
        reference = np.concatenate([np.full(m - 1, 1.1), [2.0 * m + 1.0]])
    else:  # DTLZ1's front lies in [0, 0.5]^M, the others' in [0, 1]^M
        reference = np.full(m, 1.0 if number == 1 else 1.1)
    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.full((n,), 0.5, jnp.float32),
        info={
            "name": f"dtlz{number}",
            "n_var": n,
            "n_objectives": m,
            "bounds": (np.zeros(n), np.ones(n)),
            "pareto_front": lambda n_points=500: -pareto_front(number, m, n_points),
            "ref_point": -reference,
        },
    )

"""The ZDT problems as tasks: Zitzler, Deb & Thiele (2000), "Comparison of multiobjective
evolutionary algorithms: empirical results", Evolutionary Computation 8(2).

Each is stated as minimisation of two objectives ``(f1, f2)`` over a box; the
task's fitness is ``-(f1, f2)`` (shape ``(popsize, 2)``, maximised), and
``metrics`` holds ``f1`` and ``f2`` themselves. ``info`` carries what a
multi-objective run needs: ``bounds`` (numpy ``(low, high)``), ``n_objectives``,
``pareto_front(n)`` (``n`` points of the true front, in the fitness's
maximisation convention, for IGD) and ``ref_point`` (``-(1.1, 1.1)``, the usual
hypervolume reference point of the normalised fronts).

- ZDT1: ``g = 1 + 9 mean(x_2..n)``, ``f2 = g (1 - sqrt(f1 / g))``; convex front.
- ZDT2: ``f2 = g (1 - (f1 / g)^2)``; concave front.
- ZDT3: ``f2 = g (1 - sqrt(f1 / g) - f1 / g sin(10 pi f1))``; five disconnected pieces.
- ZDT4: ``x_2..n`` in [-5, 5], ``g = 1 + 10 (n - 1) + sum(x_i^2 - 10 cos(4 pi x_i))``; 21^9 local fronts.
- ZDT6: ``f1 = 1 - exp(-4 x1) sin^6(6 pi x1)``, ``g = 1 + 9 mean(x_2..n)^0.25``, ``f2 = g (1 - (f1 / g)^2)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.tasks.base import Evaluation, Task

# The f1-intervals of ZDT3's Pareto front (pymoo's, from the problem's analysis).
_ZDT3_PIECES = np.array(
    [
        [0.0, 0.0830015349],
        [0.182228780, 0.2577623634],
        [0.4093136748, 0.4538821041],
        [0.6183967944, 0.6525117038],
        [0.8233317983, 0.8518328654],
    ]
)
_DEFAULT_VARIABLES = {1: 30, 2: 30, 3: 30, 4: 10, 6: 10}


def _objectives(number: int, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f1, f2)`` of ZDT``number`` for one solution ``x``."""
    rest = x[1:]
    if number == 6:
        f1 = 1.0 - jnp.exp(-4.0 * x[0]) * jnp.sin(6.0 * jnp.pi * x[0]) ** 6
        g = 1.0 + 9.0 * jnp.mean(rest) ** 0.25
    elif number == 4:
        f1 = x[0]
        g = 1.0 + 10.0 * rest.shape[0] + jnp.sum(rest * rest - 10.0 * jnp.cos(4.0 * jnp.pi * rest))
    else:
        f1 = x[0]
        g = 1.0 + 9.0 * jnp.mean(rest)
    ratio = f1 / g
    if number in (1, 4):
        h = 1.0 - jnp.sqrt(ratio)
    elif number in (2, 6):
        h = 1.0 - ratio**2
    else:
        h = 1.0 - jnp.sqrt(ratio) - ratio * jnp.sin(10.0 * jnp.pi * f1)
    return f1, g * h


def pareto_front(number: int, n_points: int = 500) -> np.ndarray:
    """``n_points`` of ZDT``number``'s true front as minimised ``(f1, f2)`` (float64 numpy)."""
    if number == 3:
        lengths = _ZDT3_PIECES[:, 1] - _ZDT3_PIECES[:, 0]
        counts = np.maximum(2, np.round(n_points * lengths / lengths.sum()).astype(int))
        f1 = np.concatenate([np.linspace(a, b, c) for (a, b), c in zip(_ZDT3_PIECES, counts, strict=True)])
        return np.stack([f1, 1.0 - np.sqrt(f1) - f1 * np.sin(10.0 * np.pi * f1)], axis=1)
    low = 0.2807753191 if number == 6 else 0.0
    f1 = np.linspace(low, 1.0, n_points)
    f2 = 1.0 - np.sqrt(f1) if number in (1, 4) else 1.0 - f1**2
    return np.stack([f1, f2], axis=1)


def zdt(number: int, n_var: int | None = None) -> Task:
    """ZDT``number`` (1, 2, 3, 4 or 6) in ``n_var`` variables (default 30, or 10 for ZDT4 and ZDT6).

    Solutions are vectors of shape ``(n_var,)``; fitness is ``-(f1, f2)``.
    """
    if number not in _DEFAULT_VARIABLES:
        raise ValueError(f"unknown ZDT problem {number!r}; valid: {sorted(_DEFAULT_VARIABLES)}")
    n = _DEFAULT_VARIABLES[number] if n_var is None else n_var
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"ZDT{number} needs n_var >= 2 (an int), got {n_var!r}")
    low, high = np.zeros(n), np.ones(n)
    if number == 4:
        low[1:], high[1:] = -5.0, 5.0

    def evaluate(key, task_state, solutions):
        del key
        f1, f2 = jax.vmap(lambda x: _objectives(number, x))(jnp.asarray(solutions))
        return Evaluation(fitness=-jnp.stack([f1, f2], axis=1), metrics={"f1": f1, "f2": f2}), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.asarray((low + high) / 2, jnp.float32),
        info={
            "name": f"zdt{number}",
            "n_var": n,
            "n_objectives": 2,
            "bounds": (low, high),
            "pareto_front": lambda n_points=500: -pareto_front(number, n_points),
            "ref_point": np.array([-1.1, -1.1]),
        },
    )


def zdt1(n_var: int = 30) -> Task:
    """ZDT1 (convex front): :func:`zdt` ``(1, n_var)``."""
    return zdt(1, n_var)


def zdt2(n_var: int = 30) -> Task:
    """ZDT2 (concave front): :func:`zdt` ``(2, n_var)``."""
    return zdt(2, n_var)


def zdt3(n_var: int = 30) -> Task:
    """ZDT3 (disconnected front): :func:`zdt` ``(3, n_var)``."""
    return zdt(3, n_var)


def zdt4(n_var: int = 10) -> Task:
    """ZDT4 (multimodal): :func:`zdt` ``(4, n_var)``."""
    return zdt(4, n_var)


def zdt6(n_var: int = 10) -> Task:
    """ZDT6 (non-uniform): :func:`zdt` ``(6, n_var)``."""
    return zdt(6, n_var)

"""Quality-diversity benchmark tasks: the linear-projection functions and the planar arm.

**Linear projection** (Fontaine et al., "Covariance Matrix Adaptation for the
Rapid Illumination of Behavior Space", GECCO 2020, section 5.1): a function of
``x`` in ``R^d`` (sphere or Rastrigin), shifted so that its optimum is at
``x_i = 0.4 * 5.12 = 2.048``, and two descriptors, the sums of the first and the
second half of the clipped coordinates::

    clip(x_i) = x_i                if |x_i| <= 5.12
                5.12 / x_i         otherwise
    b = (sum_{i < d/2} clip(x_i),  sum_{i >= d/2} clip(x_i))      in [-2.56 d, 2.56 d]^2

Fitness is the function rescaled to ``[0, 100]`` on the box ``[-5.12, 5.12]^d``
(100 at the optimum, 0 at the box's worst corner, as in pyribs' sphere
example): ``100 * (f(x) - f_worst) / (f_best - f_worst)``; it falls below 0
outside the box, so a QD-score offset of 0 rewards only solutions in it.

**Planar arm** (Cully et al., "Robots that can adapt like animals", Nature 521,
2015; Vassiliades & Mouret 2018): ``dof`` joint angles of an arm of links of
length ``1 / dof`` (total length 1) fixed at the origin. The descriptor is the
end effector's position ``(sum_i cos(a_1 + .. + a_i) / dof, sum_i sin(..) / dof)``
in ``[-1, 1]^2``; the fitness is ``-variance(angles)`` (smooth arms are better).
Angles are clipped to ``[-pi, pi]`` before use, so the fitness lies in
``[-pi^2, 0]``: the QD-score offset ``-pi^2`` makes every elite count positively.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from neuroevo.tasks.base import Evaluation, Task

#: The optimum of the shifted functions: ``x_i = 0.4 * 5.12``.
SHIFT = 0.4 * 5.12
FUNCTIONS = ("sphere", "rastrigin")


def _raw(function: str, x: jax.Array) -> jax.Array:
    z = x - SHIFT
    if function == "sphere":
        return jnp.sum(z * z, axis=-1)
    return 10.0 * x.shape[-1] + jnp.sum(z * z - 10.0 * jnp.cos(2.0 * jnp.pi * z), axis=-1)


def projection_descriptors(x: jax.Array) -> jax.Array:
    """f[..., 2]: the sums of the clipped first and second halves of ``x`` (see the module docstring)."""
    clipped = jnp.where(jnp.abs(x) > 5.12, 5.12 / jnp.where(x == 0, 1.0, x), x)
    half = x.shape[-1] // 2
    return jnp.stack([jnp.sum(clipped[..., :half], -1), jnp.sum(clipped[..., half:], -1)], axis=-1)


def projection_objective(function: str, x: jax.Array) -> jax.Array:
    """f[...]: the function rescaled to [0, 100] on ``[-5.12, 5.12]^d`` (100 at the optimum)."""
    d = x.shape[-1]
    worst = _raw(function, jnp.full((d,), -5.12, jnp.float32))
    return (_raw(function, x) - worst) / (0.0 - worst) * 100.0


def linear_projection(function: str = "sphere", dim: int = 100) -> Task:
    """The linear-projection benchmark of CMA-ME (see the module docstring) as a Task.

    Solutions are flat f32[dim] vectors (``init_solution`` gives zeros). Metrics:
    ``value`` (the raw, minimised function). ``info["bounds"]`` are the descriptor
    bounds ``((-2.56 dim, 2.56 dim),) * 2`` for an archive.
    """
    if function not in FUNCTIONS:
        raise ValueError(f"unknown function {function!r}; valid: {list(FUNCTIONS)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValueError(f"dim must be an int of at least 2, got {dim!r}")
    limit = dim / 2 * 5.12

    def evaluate(key, task_state, solutions):
        del key
        x = jnp.asarray(solutions, jnp.float32)
        fitness = projection_objective(function, x)
        metrics = {"value": _raw(function, x)}
        return Evaluation(fitness=fitness, descriptor=projection_descriptors(x), metrics=metrics), task_state

    info = {
        "name": f"{function}_{dim}",
        "descriptor_dim": 2,
        "bounds": ((-limit, limit),) * 2,
        "qd_offset": 0.0,
    }
    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.zeros((dim,), jnp.float32),
        info=info,
    )


def arm_kinematics(angles: jax.Array) -> jax.Array:
    """f[..., 2]: the end effector of an arm of ``dof`` links of length ``1/dof`` (angles clipped to ±pi)."""
    a = jnp.clip(angles, -jnp.pi, jnp.pi)
    cumulative = jnp.cumsum(a, axis=-1)
    dof = a.shape[-1]
    return jnp.stack([jnp.sum(jnp.cos(cumulative), -1), jnp.sum(jnp.sin(cumulative), -1)], axis=-1) / dof


def arm(dof: int = 20) -> Task:
    """The planar arm repertoire (see the module docstring) as a Task.

    Solutions are f32[dof] joint angles (``init_solution`` gives zeros: the arm
    stretched along x). ``info["bounds"]`` are ``((-1, 1), (-1, 1))`` and
    ``info["qd_offset"]`` is ``-pi^2``.
    """
    if isinstance(dof, bool) or not isinstance(dof, int) or dof < 1:
        raise ValueError(f"dof must be a positive int, got {dof!r}")

    def evaluate(key, task_state, solutions):
        del key
        angles = jnp.asarray(solutions, jnp.float32)
        fitness = -jnp.var(jnp.clip(angles, -jnp.pi, jnp.pi), axis=-1)
        return Evaluation(fitness=fitness, descriptor=arm_kinematics(angles)), task_state

    info = {
        "name": f"arm_{dof}",
        "descriptor_dim": 2,
        "bounds": ((-1.0, 1.0),) * 2,
        "qd_offset": -(math.pi**2),
    }
    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.zeros((dof,), jnp.float32),
        info=info,
    )

"""BBOB's elementwise transformations and building blocks (jnp, in the dtype of their input):
T_osz, T_asy, the boundary penalty, and the cancellation-free Rastrigin and Rosenbrock sums
(Hansen et al., "Real-Parameter Black-Box Optimization Benchmarking 2009: Noiseless
Functions Definitions", section 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def osz(x):
    """T_osz, written as ``x * exp(0.049 (sin(c1 t) + sin(c2 t)))``, t = 10 log|x|.

    COCO computes ``exp(t + ...) ** 0.1``, which underflows for |x| < 1e-31; the
    values agree elsewhere.
    """
    ax = jnp.abs(x)
    t = 10.0 * jnp.log(jnp.where(ax > 0, ax, 1.0))
    pos = x > 0
    # the coefficients chosen before the sines (two sines per element, not four)
    wiggle = jnp.sin(jnp.where(pos, 1.0, 0.55) * t) + jnp.sin(jnp.where(pos, 0.79, 0.31) * t)
    return x * jnp.exp(0.049 * wiggle)


def asy(x, beta, e):
    """T_asy^beta: ``x ** (1 + beta e_i sqrt(x))`` where x > 0."""
    pos = x > 0
    xp = jnp.where(pos, x, 1.0)
    return jnp.where(pos, xp ** (1.0 + beta * e * jnp.sqrt(xp)), x)


def box_penalty(x, bound=5.0):
    """sum(max(0, |x| - bound)**2) over the last axis."""
    return jnp.sum(jnp.square(jnp.maximum(jnp.abs(x) - bound, 0.0)), axis=-1)


def rastrigin(y):
    """10 (d - sum cos 2 pi y) + sum y**2, as 20 sum sin**2(pi y) + sum y**2 (no cancellation)."""
    return jnp.sum(20.0 * jnp.square(jnp.sin(jnp.pi * y)) + jnp.square(y), axis=-1)


def rosenbrock_shifted(y):
    """Rosenbrock at z = y + 1, written in y so that it has no cancellation at z = 1."""
    a, b = y[..., :-1], y[..., 1:]
    return 100.0 * jnp.square(a * a + 2.0 * a - b) + a * a


def matvec(m, z):
    """``m z`` over the last axis, in full precision (no TF32/bf16 passes on accelerators)."""
    return jnp.matmul(z, m.T, precision=jax.lax.Precision.HIGHEST)

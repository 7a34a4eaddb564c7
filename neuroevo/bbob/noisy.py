"""BBOB's noisy suite, f101-f130: COCO's noise-free cores with its three noise models.

Each noisy function is a noiseless core (sphere, Rosenbrock, step ellipsoid,
ellipsoid, different powers, Schaffers F7, Griewank-Rosenbrock, Gallagher 101
peaks), built with the instance data of its noiseless twin (seed, ``xopt``,
rotations, ``fopt`` of f1, f8, f7, f10, f14, f17, f19, f21: COCO's
``bbob-noisy`` suite), plus the noise model applied to ``f - fopt`` and the
boundary penalty ``f_pen(x) = 100 sum(max(0, |x_i| - 5)**2)``::

    f(x) = fopt + f_XN(g(x)) + f_pen(x),   g = the core's f - fopt (>= 0)

The noise models follow the 2009 definitions (Hansen et al., "Real-parameter
black-box optimization benchmarking 2009: noisy functions definitions"):

- Gaussian  ``f_GN(g, beta) = g exp(beta N)``
- uniform   ``f_UN(g, alpha, beta) = g U1**beta max(1, (1e9 / (g + 1e-99))**(alpha U2))``
- Cauchy    ``f_CN(g, alpha, p) = g + alpha max(0, 1000 + [U < p] N1 / (|N2| + 1e-199))``

and, as in the definitions, ``f_XN(g) + 1.01e-8`` where ``g >= 1e-8`` and ``g``
itself (no noise) below, so that the 1e-8 target is reached exactly when the
noise-free value reaches it. (cocoex 2.8's ``bbob-noisy`` adds the noise and the
1.01e-8 everywhere, also at the optimum; above 1e-8 the two agree, see
tests/test_bbob_noisy.py.) Moderate noise: ``beta = 0.01``; ``alpha = 0.01 (0.49
+ 1/d)``, ``beta = 0.01``; ``alpha = 0.01``, ``p = 0.05``. Severe: ``beta = 1``;
``alpha = 0.49 + 1/d``, ``beta = 1``; ``alpha = 1``, ``p = 0.2``.

Differences of the cores from the noiseless functions (as in COCO): f116-f118's
ellipsoid has conditioning 1e4 (f10: 1e6); f125-f127's Griewank-Rosenbrock is
``1 + mean(s / 4000 - cos s)`` (f19: ten times that); the cores carry no
penalty of their own (f7, f17, f21 do), ``f_pen`` replaces it.

The draws come from an explicit JAX key: ``f(key, x)`` is a pure function. They
cannot match COCO's (a global legacy generator), and need not.
"""

from __future__ import annotations

import math
from functools import cache, partial

import jax
import jax.numpy as jnp

from neuroevo.bbob import builders, transforms
from neuroevo.bbob import legacy_rng as rng
from neuroevo.bbob.functions import NOISY_FIDS, BBOBFunction, check_problem

TOL = 1e-8  # below it no noise is applied; above, 1.01 TOL is added

# fid -> (noiseless twin, noise model, severity)
_TABLE = {
    101: (1, "gaussian", "moderate"), 102: (1, "uniform", "moderate"), 103: (1, "cauchy", "moderate"),
    104: (8, "gaussian", "moderate"), 105: (8, "uniform", "moderate"), 106: (8, "cauchy", "moderate"),
    107: (1, "gaussian", "severe"), 108: (1, "uniform", "severe"), 109: (1, "cauchy", "severe"),
    110: (8, "gaussian", "severe"), 111: (8, "uniform", "severe"), 112: (8, "cauchy", "severe"),
    113: (7, "gaussian", "severe"), 114: (7, "uniform", "severe"), 115: (7, "cauchy", "severe"),
    116: (10, "gaussian", "severe"), 117: (10, "uniform", "severe"), 118: (10, "cauchy", "severe"),
    119: (14, "gaussian", "severe"), 120: (14, "uniform", "severe"), 121: (14, "cauchy", "severe"),
    122: (17, "gaussian", "severe"), 123: (17, "uniform", "severe"), 124: (17, "cauchy", "severe"),
    125: (19, "gaussian", "severe"), 126: (19, "uniform", "severe"), 127: (19, "cauchy", "severe"),
    128: (21, "gaussian", "severe"), 129: (21, "uniform", "severe"), 130: (21, "cauchy", "severe"),
}  # fmt: skip

# the noise-free cores: noiseless builders with the noisy suite's constants, no own penalty
_CORES = {
    1: builders.f1,
    8: builders.f8,
    7: partial(builders.f7, pen=0.0),
    10: partial(builders.f10, cond=1e4),
    14: builders.f14,
    17: builders.schaffers(10.0, pen=0.0),
    19: partial(builders.f19, fac=1.0),
    21: builders.gallagher(101, pen=0.0),
}

_CORE_NAMES = {
    1: "sphere",
    8: "Rosenbrock",
    7: "step ellipsoid",
    10: "ellipsoid",
    14: "different powers",
    17: "Schaffers F7",
    19: "Griewank-Rosenbrock",
    21: "Gallagher 101 peaks",
}

NOISY_NAMES = {
    fid: f"{_CORE_NAMES[base]}, {severity} {model} noise".replace("gaussian", "Gaussian").replace(
        "cauchy", "Cauchy"
    )
    for fid, (base, model, severity) in _TABLE.items()
}


def noise_parameters(model: str, severity: str, dimension: int) -> dict:
    """The definitions' parameters of ``model`` at ``severity`` ('moderate' or 'severe')."""
    s = 0.01 if severity == "moderate" else 1.0
    if model == "gaussian":
        return {"beta": s}
    if model == "uniform":
        return {"alpha": s * (0.49 + 1.0 / dimension), "beta": s}
    return {"alpha": s, "p": 0.05 if severity == "moderate" else 0.2}


# ---------------------------------------------------------------------------
# the noise models, as functions of their random draws (dtype of g)


def f_gn(g, beta, n):
    """Gaussian noise ``g exp(beta n)``, ``n`` standard normal."""
    return g * jnp.exp(beta * n)


def f_un(g, alpha, beta, u1, u2):
    """Uniform noise ``g u1**beta max(1, (1e9 / g)**(alpha u2))``, ``u1, u2`` in (0, 1].

    Computed in log space (no overflow); ``g`` is taken >= 1e-8, where it is used.
    """
    log_g = jnp.log(jnp.maximum(g, TOL))
    log_scale = jnp.maximum(0.0, alpha * u2 * (math.log(1e9) - log_g))
    return g * jnp.exp(beta * jnp.log(u1) + log_scale)


def f_cn(g, alpha, p, u, n1, n2):
    """Cauchy noise ``g + alpha max(0, 1000 + [u < p] n1 / |n2|)``, ``n1, n2`` standard normal."""
    tiny = jnp.finfo(jnp.result_type(g)).tiny
    outlier = jnp.where(u < p, n1 / jnp.maximum(jnp.abs(n2), tiny), 0.0)
    return g + alpha * jnp.maximum(0.0, 1000.0 + outlier)


def apply_model(g, model: str, params: dict, draws: tuple):
    """``f_XN(g) + 1.01e-8`` where ``g >= 1e-8``, else ``g``: the definitions' noisy ``f - fopt``."""
    if model == "gaussian":
        noisy = f_gn(g, params["beta"], *draws)
    elif model == "uniform":
        noisy = f_un(g, params["alpha"], params["beta"], *draws)
    else:
        noisy = f_cn(g, params["alpha"], params["p"], *draws)
    return jnp.where(g < TOL, g, noisy + 1.01 * TOL)


def sample_draws(key, model: str, shape, dtype) -> tuple:
    """The model's random draws for values of shape ``shape``: uniforms in (0, 1], normals."""
    k1, k2, k3 = jax.random.split(key, 3)
    if model == "gaussian":
        return (jax.random.normal(k1, shape, dtype),)
    if model == "uniform":
        return (1.0 - jax.random.uniform(k1, shape, dtype), 1.0 - jax.random.uniform(k2, shape, dtype))
    u = 1.0 - jax.random.uniform(k1, shape, dtype)
    return (u, jax.random.normal(k2, shape, dtype), jax.random.normal(k3, shape, dtype))


def noise(key, g, model: str, params: dict):
    """Noisy ``f - fopt`` from noise-free ``g = f - fopt`` (any shape), with draws from ``key``."""
    g = jnp.asarray(g)
    return apply_model(g, model, params, sample_draws(key, model, g.shape, g.dtype))


@cache
def _compiled_noise(model: str, params: tuple):
    """``noise`` jitted once per model and parameters (one program for every instance)."""
    kwargs = dict(params)
    return jax.jit(lambda key, g: noise(key, g, model, kwargs))


def penalty(x):
    """The noisy suite's boundary penalty ``100 sum(max(0, |x_i| - 5)**2)`` over the last axis."""
    return 100.0 * transforms.box_penalty(x)


# ---------------------------------------------------------------------------
# public


class NoisyBBOBFunction:
    """One noisy BBOB problem f101-f130: ``f(key, x)`` is pure, batched, jit- and vmap-able.

    ``f(key, x)``: a noisy value (one independent draw per point of ``x``'s leading
    shape); ``f.delta(key, x)``: the same minus ``fopt``, computed without adding
    ``fopt``. Noise-free: ``f.noiseless(x)`` (COCO's ``f`` without noise) and
    ``f.raw(x)`` (its ``f - fopt``, no cancellation). Attributes: ``fid``,
    ``dimension``, ``instance``, ``xopt``, ``fopt``, ``name``, ``base`` (the
    noiseless twin), ``model``, ``severity``, ``params``, ``core`` (the noise-free
    core without penalty, a :class:`BBOBFunction`).
    """

    def __init__(self, fid: int, dimension: int, instance: int):
        check_problem(fid, dimension, instance, NOISY_FIDS)
        self.fid, self.dimension, self.instance = int(fid), int(dimension), int(instance)
        self.base, self.model, self.severity = _TABLE[self.fid]
        self.name = NOISY_NAMES[self.fid]
        self.params = noise_parameters(self.model, self.severity, self.dimension)
        spec = _CORES[self.base](self.dimension, builders.seed_of(self.base, self.instance))
        fopt = rng.fopt(self.base, self.instance)
        self.core = BBOBFunction.from_spec(
            self.fid, self.dimension, self.instance, self.name, fopt, spec, ("noisy", self.base)
        )
        self.xopt, self.fopt = self.core.xopt, self.core.fopt

    def __repr__(self) -> str:
        where = f"dimension={self.dimension}, instance={self.instance}"
        return f"NoisyBBOBFunction(f{self.fid} {self.name}, {where})"

    def raw(self, x) -> jnp.ndarray:
        """Noise-free ``f(x) - fopt`` (core plus penalty), without adding ``fopt``."""
        x = self.core.as_points(x)
        return self.core.raw(x) + penalty(x)

    def noiseless(self, x) -> jnp.ndarray:
        """Noise-free ``f(x)``: what COCO records as the noisy suite's true value."""
        x = self.core.as_points(x)
        return self.raw(x) + jnp.asarray(self.fopt, dtype=x.dtype)

    def delta(self, key, x) -> jnp.ndarray:
        """Noisy ``f(x) - fopt``, without adding ``fopt`` (no cancellation near the optimum)."""
        x = self.core.as_points(x)
        noisy = _compiled_noise(self.model, tuple(sorted(self.params.items())))
        return noisy(key, self.core.raw(x)) + penalty(x)

    def __call__(self, key, x) -> jnp.ndarray:
        x = self.core.as_points(x)
        return self.delta(key, x) + jnp.asarray(self.fopt, dtype=x.dtype)


def noisy_function(fid: int, dimension: int, instance: int) -> NoisyBBOBFunction:
    """Noisy BBOB function ``fid`` (101-130) in ``dimension`` (>= 2), instance ``instance`` (>= 1).

    The noise-free part is COCO's ``bbob-noisy`` function instance
    (``cocoex.Suite("bbob-noisy", ...)``); call it as ``f(key, x)``.
    """
    return NoisyBBOBFunction(fid, dimension, instance)

"""The 24 noiseless BBOB functions in JAX, instance for instance the same as COCO's ``bbob`` suite.

``function(fid, dimension, instance)`` builds the instance's data on the host
(NumPy float64, with COCO's legacy generator) and returns a :class:`BBOBFunction`:
``f(x)`` for ``x`` of shape ``(..., dimension)`` returns shape ``(...)`` in the
dtype of ``x``; ``f.raw(x)`` (alias ``f.delta``) is ``f(x) - f.fopt`` computed
without ever adding ``fopt``, and rewritten where COCO's formula cancels near
the optimum (Rastrigin's ``d - sum cos``, Katsuura's ``prod - 1``, Gallagher's
``10 - max``, Weierstrass' ``sum - f0``, Griewank-Rosenbrock, Rosenbrock's
``z - 1``, Schwefel's constant), so that float32 runs can reach 1e-8.
``x - xopt`` is taken as ``(x - hi) - lo`` with ``xopt = hi + lo`` split in the
working dtype, so a float32 point next to the optimum is measured from the true
(float64) optimum. In float32, f16, f19 and f23 (sin/cos of 3^11 y, of Rosenbrock
values up to ~1e6, and terms of 2^32 y) carry the rotated point as a ``hi + lo``
pair (Ozaki-split float32 matrix products summed with two-sums, ``matvec_dd``)
and reduce their phases exactly, which keeps them within 1e-4 of float64.

Modules: :mod:`~neuroevo.bbob.builders` (each function's instance data and formula),
:mod:`~neuroevo.bbob.transforms` (T_osz, T_asy, penalties),
:mod:`~neuroevo.bbob.double_word` (the float32 ``hi + lo`` arithmetic); this one holds
the public :class:`BBOBFunction`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.bbob import legacy_rng as rng
from neuroevo.bbob.builders import BUILDERS, seed_of

NAMES = {
    1: "sphere",
    2: "separable ellipsoid",
    3: "Rastrigin",
    4: "Bueche-Rastrigin",
    5: "linear slope",
    6: "attractive sector",
    7: "step ellipsoid",
    8: "Rosenbrock",
    9: "rotated Rosenbrock",
    10: "ellipsoid",
    11: "discus",
    12: "bent cigar",
    13: "sharp ridge",
    14: "different powers",
    15: "rotated Rastrigin",
    16: "Weierstrass",
    17: "Schaffers F7",
    18: "ill-conditioned Schaffers F7",
    19: "Griewank-Rosenbrock",
    20: "Schwefel",
    21: "Gallagher 101 peaks",
    22: "Gallagher 21 peaks",
    23: "Katsuura",
    24: "Lunacek bi-Rastrigin",
}


class BBOBFunction:
    """One BBOB problem ``f(fid, dimension, instance)``: batched, jit- and vmap-able.

    ``f(x)``: COCO's value; ``f.raw(x)`` / ``f.delta(x)``: ``f(x) - fopt`` computed
    without cancellation. ``x`` has shape ``(..., dimension)``; the result has the
    leading shape and the dtype of ``x``. Attributes: ``fid``, ``dimension``,
    ``instance``, ``xopt`` (float64 NumPy), ``fopt`` (float), ``name``.

    Inside a larger program (a BBOB campaign vmapped over instances), use the pure
    :meth:`delta_with` on the instance's :meth:`data`: every instance of a function and
    dimension shares it, with data of the same structure and shapes.
    """

    def __init__(self, fid: int, dimension: int, instance: int):
        check_problem(fid, dimension, instance, NOISELESS_FIDS)
        spec = BUILDERS[int(fid)](int(dimension), seed_of(fid, instance))
        self._setup(fid, dimension, instance, NAMES[int(fid)], rng.fopt(fid, instance), spec, int(fid))

    @classmethod
    def from_spec(cls, fid, dimension, instance, name, fopt, spec, cache_key):
        """A function from given instance data (:class:`~neuroevo.bbob.builders.Spec`: the noisy
        suite's noise-free cores); ``cache_key`` names its formula (one compiled program per
        ``(cache_key, dimension)``)."""
        self = cls.__new__(cls)
        self._setup(fid, dimension, instance, name, fopt, spec, cache_key)
        return self

    def _setup(self, fid, dimension, instance, name, fopt, spec, cache_key):
        self.fid, self.dimension, self.instance = int(fid), int(dimension), int(instance)
        self.name = name
        self.fopt = float(fopt)
        self.xopt = np.asarray(spec.xopt, dtype=np.float64)
        self.xopt.setflags(write=False)
        self._spec = spec
        self._center = self.xopt if spec.center is None else np.asarray(spec.center, dtype=np.float64)
        self._cast: dict = {}
        self._cache_key = cache_key

    def __repr__(self) -> str:
        return f"BBOBFunction(f{self.fid} {self.name}, dimension={self.dimension}, instance={self.instance})"

    def data(self, dtype) -> dict:
        """The instance's data as NumPy arrays of ``dtype`` (the optimum split as ``hi + lo`` in
        that dtype, rotations, weights): the second argument of :meth:`delta_with`."""
        key = np.dtype(dtype).name
        if key not in self._cast:
            hi = self._center.astype(dtype)
            lo = (self._center - hi.astype(np.float64)).astype(dtype)
            consts = {k: np.asarray(v).astype(dtype) for k, v in self._spec.consts.items()}
            consts["hi"], consts["lo"] = hi, lo
            self._cast[key] = consts
        return self._cast[key]

    def delta_with(self, x: jax.Array, data: dict) -> jax.Array:
        """``f(x) - fopt`` of the instance whose :meth:`data` is ``data``, without adding
        ``fopt``: a pure function of its arguments (no checks), the same for every instance
        of this function and dimension, so it may be vmapped over stacked instances' data."""
        z = (x - data["hi"]) - data["lo"]
        return self._spec.raw(x, z, data).astype(x.dtype)

    def as_points(self, x) -> jax.Array:
        """``x`` as a float array of shape ``(..., dimension)``; else ``ValueError``."""
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        if x.ndim == 0 or x.shape[-1] != self.dimension:
            raise ValueError(
                f"bbob f{self.fid}: x must have shape (..., {self.dimension}), got {tuple(x.shape)}"
            )
        return x

    def raw(self, x) -> jnp.ndarray:
        """``f(x) - fopt`` without adding ``fopt`` (no cancellation): the precision target."""
        x = self.as_points(x)
        return _compiled(self._cache_key, self.dimension, self.delta_with)(x, self.data(x.dtype))

    delta = raw

    def __call__(self, x) -> jnp.ndarray:
        x = self.as_points(x)
        return self.raw(x) + jnp.asarray(self.fopt, dtype=x.dtype)


_COMPILED: dict = {}


def _compiled(cache_key, dimension, delta_with):
    """One jitted evaluator per (function, dimension): an instance's data are its arguments,
    so every instance of a function and dimension shares one compiled program."""
    key = (cache_key, dimension)
    if key not in _COMPILED:
        _COMPILED[key] = jax.jit(delta_with)
    return _COMPILED[key]


NOISELESS_FIDS = range(1, 25)
NOISY_FIDS = range(101, 131)
ALL_FIDS = (*NOISELESS_FIDS, *NOISY_FIDS)
_FID_TEXT = {
    NOISELESS_FIDS: "1..24",
    NOISY_FIDS: "101..130 (the noisy suite)",
    ALL_FIDS: "1..24 (noiseless) or 101..130 (noisy)",
}


def check_problem(fid, dimension, instance, fids=ALL_FIDS) -> None:
    """``ValueError`` naming the valid values unless (fid, dimension, instance) is a BBOB problem."""
    if not (isinstance(fid, int | np.integer) and int(fid) in fids):
        raise ValueError(f"bbob: fid must be an integer in {_FID_TEXT[fids]}, got {fid!r}")
    if not (isinstance(dimension, int | np.integer) and dimension >= 2):
        raise ValueError(f"bbob: dimension must be an integer >= 2, got {dimension!r}")
    if not (isinstance(instance, int | np.integer) and instance >= 1):
        raise ValueError(f"bbob: instance must be an integer >= 1, got {instance!r}")


def function(fid: int, dimension: int, instance: int) -> BBOBFunction:
    """Noiseless BBOB function ``fid`` (1-24) in ``dimension`` (>= 2), function instance ``instance`` (>= 1).

    The instance number is COCO's function instance (the one in its seeds), the
    same as ``cocoex.BareProblem("bbob", fid, dimension, instance)``.
    ``neuroevo.bbob.function`` also takes the noisy suite's 101-130.
    """
    return BBOBFunction(fid, dimension, instance)

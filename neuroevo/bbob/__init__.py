"""BBOB: COCO's 24 noiseless functions and its noisy suite in JAX, any instance and dimension (``ne.bbob``).

``function(fid, dimension, instance)`` returns a batched, jit-able function with
``.xopt``, ``.fopt`` and ``.raw(x)`` (``f - fopt`` without cancellation); for
``fid`` 101-130 (``noisy_function``) it is called as ``f(key, x)`` and has
``.noiseless(x)``. ``suite(...)`` enumerates problems in COCO's order. See
``neuroevo.tasks.bbob`` for the task (fitness ``-(f - fopt)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from neuroevo.bbob import legacy_rng
from neuroevo.bbob.functions import (
    ALL_FIDS,
    NAMES,
    NOISELESS_FIDS,
    NOISY_FIDS,
    BBOBFunction,
    check_problem,
    seed_of,
)
from neuroevo.bbob.noisy import NOISY_NAMES, NoisyBBOBFunction, noisy_function

DIMENSIONS = (2, 3, 5, 10, 20, 40)


def function(fid: int, dimension: int, instance: int) -> BBOBFunction | NoisyBBOBFunction:
    """BBOB function ``fid`` in ``dimension`` (>= 2), function instance ``instance`` (>= 1).

    ``fid`` 1-24: the noiseless suite, ``f(x)`` (:class:`BBOBFunction`); 101-130:
    the noisy suite, ``f(key, x)`` (:class:`NoisyBBOBFunction`). The instance
    number is COCO's (``cocoex.BareProblem("bbob", fid, dimension, instance)``,
    ``cocoex.Suite("bbob-noisy", ...)``).
    """
    check_problem(fid, dimension, instance)
    if int(fid) in NOISY_FIDS:
        return NoisyBBOBFunction(fid, dimension, instance)
    return BBOBFunction(fid, dimension, instance)


class Problem(NamedTuple):
    """One (function, dimension, instance) of a suite; ``problem.function()`` builds it."""

    fid: int
    dimension: int
    instance: int

    def function(self) -> BBOBFunction | NoisyBBOBFunction:
        return function(self.fid, self.dimension, self.instance)


def suite(
    functions: Iterable[int] = range(1, 25),
    dimensions: Iterable[int] = DIMENSIONS,
    instances: Iterable[int] = range(1, 16),
) -> list[Problem]:
    """Every (fid, dimension, instance) in COCO's order: dimension, then function, then instance.

    ``functions`` may include the noisy suite's 101-130.
    """
    functions, dimensions, instances = list(functions), list(dimensions), list(instances)
    for fid in functions:
        check_problem(fid, 2, 1)
    for dim in dimensions:
        check_problem(1, dim, 1)
    for inst in instances:
        check_problem(1, 2, inst)
    return [Problem(int(f), int(d), int(i)) for d in dimensions for f in functions for i in instances]


__all__ = [
    "ALL_FIDS",
    "DIMENSIONS",
    "NAMES",
    "NOISELESS_FIDS",
    "NOISY_FIDS",
    "NOISY_NAMES",
    "BBOBFunction",
    "NoisyBBOBFunction",
    "Problem",
    "function",
    "legacy_rng",
    "noisy_function",
    "seed_of",
    "suite",
]

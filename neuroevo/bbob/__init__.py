"""BBOB: COCO's 24 noiseless functions in JAX, any instance and dimension (``ne.bbob``).

``function(fid, dimension, instance)`` returns a batched, jit-able function with
``.xopt``, ``.fopt`` and ``.raw(x)`` (``f - fopt`` without cancellation);
``suite(...)`` enumerates problems in COCO's order. See ``neuroevo.tasks.bbob``
for the task (fitness ``-(f - fopt)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from neuroevo.bbob import legacy_rng
from neuroevo.bbob.functions import NAMES, BBOBFunction, _check, function, seed_of

DIMENSIONS = (2, 3, 5, 10, 20, 40)


class Problem(NamedTuple):
    """One (function, dimension, instance) of a suite; ``problem.function()`` builds it."""

    fid: int
    dimension: int
    instance: int

    def function(self) -> BBOBFunction:
        return function(self.fid, self.dimension, self.instance)


def suite(
    functions: Iterable[int] = range(1, 25),
    dimensions: Iterable[int] = DIMENSIONS,
    instances: Iterable[int] = range(1, 16),
) -> list[Problem]:
    """Every (fid, dimension, instance) in COCO's order: dimension, then function, then instance."""
    functions, dimensions, instances = list(functions), list(dimensions), list(instances)
    for fid in functions:
        _check(fid, 2, 1)
    for dim in dimensions:
        _check(1, dim, 1)
    for inst in instances:
        _check(1, 2, inst)
    return [Problem(int(f), int(d), int(i)) for d in dimensions for f in functions for i in instances]


__all__ = ["DIMENSIONS", "NAMES", "BBOBFunction", "Problem", "function", "legacy_rng", "seed_of", "suite"]

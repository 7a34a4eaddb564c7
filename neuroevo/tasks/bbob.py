"""``bbob(fid, dimension, instance)``: a COCO BBOB problem as a task (see ``neuroevo.bbob``)."""

from __future__ import annotations

import jax.numpy as jnp

from neuroevo.bbob import function
from neuroevo.tasks.base import Evaluation, Task


def bbob(fid: int, dimension: int, instance: int = 1) -> Task:
    """Minimise BBOB function ``fid`` (1-24) in ``dimension`` (>= 2), function instance ``instance`` (>= 1).

    Solutions are vectors of shape ``(dimension,)``. Fitness is ``-(f(x) - fopt)``
    computed without cancellation (``fopt`` is never added), so a float32 run can
    reach 1e-8 and below; ``metrics['value']`` is COCO's ``f(x)`` and
    ``metrics['delta']`` is ``f(x) - fopt``. ``init_solution`` is the centre of
    the [-5, 5] box (COCO's initial solution); ``info`` holds ``xopt``/``fopt``.
    """
    fn = function(fid, dimension, instance)

    def evaluate(key, task_state, solutions):
        del key
        x = jnp.asarray(solutions)
        delta = fn.raw(x)
        value = delta + jnp.asarray(fn.fopt, dtype=delta.dtype)
        return Evaluation(fitness=-delta, metrics={"value": value, "delta": delta}), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.zeros((fn.dimension,)),
        info={
            "name": f"bbob_f{fn.fid:03d}_i{fn.instance:02d}_d{fn.dimension:02d}",
            "function": fn,
            "fid": fn.fid,
            "dimension": fn.dimension,
            "instance": fn.instance,
            "xopt": fn.xopt,
            "fopt": fn.fopt,
        },
    )

"""``bbob(fid, dimension, instance)``: a COCO BBOB problem as a task (see ``neuroevo.bbob``)."""

from __future__ import annotations

import jax.numpy as jnp

from neuroevo.bbob import NOISY_FIDS, function
from neuroevo.tasks.base import Evaluation, Task


def bbob(fid: int, dimension: int, instance: int = 1) -> Task:
    """Minimise BBOB function ``fid`` (1-24; 101-130 noisy) in ``dimension`` (>= 2), instance ``instance``.

    Solutions are vectors of shape ``(dimension,)``. Fitness is ``-(f(x) - fopt)``
    computed without cancellation (``fopt`` is never added), so a float32 run can
    reach 1e-8 and below; ``metrics['value']`` is COCO's ``f(x)`` and
    ``metrics['delta']`` is ``f(x) - fopt``. For the noisy suite (101-130) the
    evaluation's key draws the noise (one draw per solution), fitness and
    ``value``/``delta`` are noisy, and ``metrics['noiseless_delta']`` is the
    noise-free ``f(x) - fopt`` (what COCO records). ``init_solution`` is the
    centre of the [-5, 5] box (COCO's initial solution); ``info`` holds
    ``xopt``/``fopt``.
    """
    fn = function(fid, dimension, instance)
    noisy = fn.fid in NOISY_FIDS

    def evaluate(key, task_state, solutions):
        x = jnp.asarray(solutions)
        if noisy:
            delta = fn.delta(key, x)
            metrics = {"noiseless_delta": fn.raw(x)}
        else:
            delta = fn.raw(x)
            metrics = {}
        value = delta + jnp.asarray(fn.fopt, dtype=delta.dtype)
        return Evaluation(fitness=-delta, metrics={"value": value, "delta": delta, **metrics}), task_state

    prefix = "bbob_noisy" if noisy else "bbob"
    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: jnp.zeros((fn.dimension,)),
        info={
            "name": f"{prefix}_f{fn.fid:03d}_i{fn.instance:02d}_d{fn.dimension:02d}",
            "function": fn,
            "fid": fn.fid,
            "dimension": fn.dimension,
            "instance": fn.instance,
            "xopt": fn.xopt,
            "fopt": fn.fopt,
            "noisy": noisy,
        },
    )

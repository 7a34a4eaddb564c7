"""XOR: NEAT's canonical first experiment (Stanley & Miikkulainen 2002, section 4.1).

Fitness is ``4 - sum of squared errors`` over the four input pairs (4 is
perfect); a network solves XOR when every output is on the right side of 0.5,
or, as in neat-python's example, when fitness reaches 3.9.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.nn import neat as neat_nn
from neuroevo.tasks.base import Evaluation, Task

INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
TARGETS = np.array([0.0, 1.0, 1.0, 0.0], np.float32)


def xor(apply: Callable[[Any, jax.Array], jax.Array] | None = None) -> Task:
    """The XOR task on two inputs and one output.

    ``apply(solution, inputs) -> outputs`` runs one input pair; by default a NEAT
    network runs all four together (:func:`neuroevo.nn.neat.forward_batch`,
    the same values as :func:`neuroevo.nn.neat.forward` on each pair); ``init_solution`` gives the 2-input,
    1-output :func:`neuroevo.nn.neat.template`.
    Metrics: ``sse`` (sum of squared errors) and ``solved`` (every output on the
    right side of 0.5).
    """
    if apply is None:
        outputs = lambda s: neat_nn.forward_batch(s, INPUTS)[:, 0]  # noqa: E731
    else:
        outputs = lambda s: jax.vmap(lambda x: jnp.ravel(apply(s, x))[0])(INPUTS)  # noqa: E731

    def evaluate(key, task_state, solutions):
        del key
        out = jax.vmap(outputs)(solutions)
        sse = jnp.sum((out - TARGETS) ** 2, axis=-1)
        solved = jnp.all((out > 0.5) == (TARGETS > 0.5), axis=-1).astype(jnp.float32)
        return Evaluation(fitness=4.0 - sse, metrics={"sse": sse, "solved": solved}), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: neat_nn.template(2, 1),
        info={"name": "xor"},
    )

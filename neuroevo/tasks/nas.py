"""Architecture search as a task: a population of genotypes scored by training them all at once.

``ne.tasks.nas(space, data)`` evaluates genotypes of a :mod:`neuroevo.nas` search space
(``int32[N, n_genes]``, what ``regularized_evolution``, ``nsga2`` or ``ga`` with
``space=space.genotype_space()`` ask for). Each generation every member is trained
for ``steps`` minibatches with optax, all members in one compiled ``vmap``
(:func:`neuroevo.nas.training.train_population`), and its fitness is its validation
accuracy; with ``objectives=("accuracy", "params")`` the fitness is
``(accuracy, -params / max_params)`` (two objectives for ``nsga2``, both in [0, 1]
magnitude so hypervolumes are comparable; ``max_params`` is the largest architecture's
count). With ``one_shot=params`` (shared weights from
:func:`neuroevo.nas.training.train_supernet`) members are scored with those inherited
weights instead, without training.

Every member of a generation uses the generation's key for its initialisation and
minibatches (common random numbers), so results do not depend on how the engine
chunks the population. Metrics per member: ``accuracy``, ``val_loss``, ``params`` and
``flops`` (of the effective architecture).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from neuroevo.nas import data as nas_data
from neuroevo.nas import training
from neuroevo.tasks.base import Evaluation, Task

OBJECTIVES = ("accuracy", "params")


def nas(
    space: Any,
    data: Any = None,
    *,
    steps: int = 100,
    batch_size: int = 32,
    learning_rate: Any = 1e-2,
    optimizer: optax.GradientTransformation | None = None,
    objectives: tuple[str, ...] = ("accuracy",),
    one_shot: Any = None,
    eval_chunk: int = 128,
) -> Task:
    """The architecture-search task on ``space`` (a :mod:`neuroevo.nas` space) and ``data``.

    Args:
      space: ``ne.nas.CNNSpace(...)``, ``ne.nas.MLPSpace(...)`` or your own.
      data: ``None`` (scikit-learn's digits, fixed split), a :class:`neuroevo.nas.Dataset`,
        or ``(x, y)`` arrays (split 60/20/20).
      steps, batch_size: the training budget of every member (static).
      learning_rate: Adam's (traceable), unless ``optimizer`` (optax) is given.
      objectives: ``("accuracy",)`` (one fitness value) or ``("accuracy", "params")``.
      one_shot: shared supernet parameters: score with inherited weights, no training.
      eval_chunk: validation examples per forward pass (memory).

    Bad data or settings raise ``ValueError`` here, before anything is compiled.
    """
    dataset = nas_data.as_dataset(data)
    input_shape = nas_data.check_fits(space, dataset)
    steps, batch_size = training.check_training(steps, batch_size, dataset.x_train.shape[0])
    objectives = tuple(objectives) if not isinstance(objectives, str) else (objectives,)
    if objectives not in (OBJECTIVES[:1], OBJECTIVES):
        raise ValueError(f"objectives must be ('accuracy',) or ('accuracy', 'params'), got {objectives}")
    largest = space.max_params(input_shape)
    if one_shot is not None:
        like = jax.eval_shape(space.supernet().init, jax.random.key(0), dataset.x_train[:1], space.smallest())
        if jax.tree_util.tree_structure(one_shot) != jax.tree_util.tree_structure(like) or any(
            jnp.shape(a) != b.shape
            for a, b in zip(jax.tree_util.tree_leaves(one_shot), jax.tree_util.tree_leaves(like), strict=True)
        ):
            raise ValueError("one_shot must be this space's supernet parameters (from ne.nas.train_supernet)")
    x_train, y_train = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
    x_val, y_val = jnp.asarray(dataset.x_val), jnp.asarray(dataset.y_val)

    def evaluate(key, task_state, genotypes):
        genotypes = jnp.asarray(genotypes, jnp.int32)
        if one_shot is None:
            params = training.train_population(
                key,
                space,
                genotypes,
                x_train,
                y_train,
                steps=steps,
                batch_size=batch_size,
                learning_rate=learning_rate,
                optimizer=optimizer,
            )
            accuracy, loss = training.score(space, params, genotypes, x_val, y_val, chunk=eval_chunk)
        else:
            accuracy, loss = training.score(
                space, one_shot, genotypes, x_val, y_val, shared=True, chunk=eval_chunk
            )
        params_count = jax.vmap(lambda g: space.params_of(g, input_shape))(genotypes)
        flops = jax.vmap(lambda g: space.flops_of(g, input_shape))(genotypes)
        accuracy = accuracy.astype(jnp.float32)
        fitness = accuracy
        if len(objectives) == 2:
            fitness = jnp.stack([accuracy, -params_count.astype(jnp.float32) / largest], axis=1)
        metrics = {
            "accuracy": accuracy,
            "val_loss": loss,
            "params": params_count.astype(jnp.float32),
            "flops": flops,
        }
        return Evaluation(fitness=fitness, metrics=metrics), task_state

    return Task(
        init=lambda key: (),
        evaluate=evaluate,
        init_solution=lambda key: space.sample(key),
        info={
            "name": "nas",
            "n_objectives": len(objectives),
            "objectives": objectives,
            "input_shape": input_shape,
            "max_params": largest,
            "dataset": dataset,
        },
    )

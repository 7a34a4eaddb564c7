"""Training a population of architectures at once, and the one-shot supernet.

**Stand-alone training** (:func:`train_population`): every member gets its own copy of
the supernet's parameters, initialised as its effective network would be
(:func:`neuroevo.nas.supernet.member_init`), and is trained with optax for ``steps``
minibatches of softmax cross-entropy. The members share the minibatches and the
initialisation key (common random numbers: two members differ by their architecture
only), and the whole loop is one ``lax.scan`` over steps of a ``vmap`` over members, so
a population of different architectures trains as one compiled program. A masked weight
gets a zero gradient, so it never moves (Adam's update of a zero gradient is zero) and
never matters: member ``i`` is trained exactly as its standalone network would be.

**One-shot** (:func:`train_supernet`, Bender et al. 2018, "Understanding and Simplifying
One-Shot Architecture Search"; Guo et al. 2020, "Single Path One-Shot"): one shared set
of supernet weights, trained once with ``paths`` architectures drawn uniformly per
minibatch (their losses averaged), after which a candidate is scored by its validation
accuracy with the *inherited* weights, no training at all. Which to use: one-shot scores
are thousands of times cheaper but only correlate with stand-alone accuracy (the
``benchmarks/nas.py`` one-shot section prints the rank correlation on digits); use them
to screen large searches, and stand-alone training when the ranking must be faithful
or the final choice is made.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from neuroevo.nas import supernet
from neuroevo.strategy import static_int

Array = jax.Array


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Mean softmax cross-entropy of integer ``labels``."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def check_training(steps: Any, batch_size: Any, n_train: int) -> tuple[int, int]:
    """``steps`` >= 1 and ``1 <= batch_size <= n_train`` as static ints; else ``ValueError``."""
    steps = static_int("steps", steps, 1)
    batch_size = static_int("batch_size", batch_size, 1, n_train, f"{n_train} training examples")
    return steps, batch_size


def _optimizer(learning_rate: Any, optimizer: optax.GradientTransformation | None):
    return optax.adam(learning_rate) if optimizer is None else optimizer


def train_population(
    key: Array,
    space: Any,
    genotypes: Array,
    x: Array,
    y: Array,
    *,
    steps: int,
    batch_size: int,
    learning_rate: Any = 3e-3,
    optimizer: optax.GradientTransformation | None = None,
) -> dict:
    """Train every member of ``genotypes`` (``int32[N, n_genes]``) on ``(x, y)``: their parameters.

    Args:
      key: the initialisation and minibatch key (shared by the members).
      space: the search space. x, y: training examples and integer labels.
      steps, batch_size: static; minibatches are drawn with replacement.
      learning_rate: Adam's (traceable); or give ``optimizer`` (any optax transformation).
    Returns:
      the members' supernet parameters, stacked (leading axis N).
    """
    steps, batch_size = check_training(steps, batch_size, x.shape[0])
    model = space.supernet()
    opt = _optimizer(learning_rate, optimizer)
    k_init, k_batches = jax.random.split(key)
    params = jax.vmap(lambda g: supernet.member_init(space, k_init, g, x[:1]))(genotypes)
    opt_state = jax.vmap(opt.init)(params)

    def loss(p, genotype, xb, yb):
        return cross_entropy(model.apply(p, xb, genotype), yb)

    def step(carry, k):
        params, opt_state = carry
        index = jax.random.randint(k, (batch_size,), 0, x.shape[0])
        xb, yb = x[index], y[index]
        grads = jax.vmap(jax.grad(loss), in_axes=(0, 0, None, None))(params, genotypes, xb, yb)
        updates, opt_state = jax.vmap(opt.update)(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, opt_state), jax.random.split(k_batches, steps))
    return params


def score(
    space: Any, params: Any, genotypes: Array, x: Array, y: Array, *, shared: bool = False, chunk: int = 128
) -> tuple[Array, Array]:
    """``(accuracy, loss)`` of every member on ``(x, y)``, ``chunk`` examples at a time.

    ``params`` are the members' own (stacked, from :func:`train_population`) or, with
    ``shared=True``, one set every member inherits (:func:`train_supernet`).
    """
    model = space.supernet()
    n = x.shape[0]
    chunk = min(chunk, n)
    pieces = -(-n // chunk)
    pad = pieces * chunk - n
    xs = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)).reshape(pieces, chunk, *x.shape[1:])
    ys = jnp.pad(y, (0, pad)).reshape(pieces, chunk)
    valid = (jnp.arange(pieces * chunk) < n).reshape(pieces, chunk)

    def member(p, genotype):
        def body(totals, batch):
            xb, yb, ok = batch
            logits = model.apply(p, xb, genotype)
            correct = jnp.sum((jnp.argmax(logits, -1) == yb) & ok)
            nll = jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, yb) * ok)
            return (totals[0] + correct, totals[1] + nll), None

        (correct, nll), _ = jax.lax.scan(body, (jnp.int32(0), jnp.float32(0.0)), (xs, ys, valid))
        return correct / n, nll / n

    return jax.vmap(member, in_axes=(None if shared else 0, 0))(params, genotypes)


def train_supernet(
    key: Array,
    space: Any,
    x: Array,
    y: Array,
    *,
    steps: int,
    batch_size: int,
    paths: int = 4,
    learning_rate: Any = 3e-3,
    optimizer: optax.GradientTransformation | None = None,
) -> dict:
    """One-shot: shared supernet weights trained on ``paths`` uniformly drawn architectures per
    minibatch (see the module docstring). Score candidates with ``score(..., shared=True)``."""
    steps, batch_size = check_training(steps, batch_size, x.shape[0])
    paths = static_int("paths", paths, 1)
    model = space.supernet()
    opt = _optimizer(learning_rate, optimizer)
    k_init, k_loop = jax.random.split(key)
    params = model.init(k_init, x[:1], space.sample(k_init))
    opt_state = opt.init(params)

    def loss(p, genotypes, xb, yb):
        return jnp.mean(jax.vmap(lambda g: cross_entropy(model.apply(p, xb, g), yb))(genotypes))

    def step(carry, k):
        params, opt_state = carry
        k_batch, k_paths = jax.random.split(k)
        index = jax.random.randint(k_batch, (batch_size,), 0, x.shape[0])
        grads = jax.grad(loss)(params, space.sample(k_paths, paths), x[index], y[index])
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, opt_state), jax.random.split(k_loop, steps))
    return params


def train_network(key: Array, space: Any, genotype: Any, x: Array, y: Array, **settings) -> tuple[Any, dict]:
    """One architecture trained as :func:`train_population` trains a member (``settings``: its
    ``steps``, ``batch_size``, ``learning_rate``, ``optimizer``): ``(module, params)`` of the
    standalone network (the space's ``build`` and ``extract``)."""
    genotype = jnp.asarray(genotype, jnp.int32)
    trained = jax.jit(lambda k: train_population(k, space, genotype[None], x, y, **settings))(key)
    member = jax.tree_util.tree_map(lambda leaf: leaf[0], trained)
    return space.build(genotype), space.extract(genotype, member)

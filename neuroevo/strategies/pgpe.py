"""PGPE: Sehnke, Osendorfer, Rueckstiess, Graves, Peters & Schmidhuber,
"Parameter-exploring policy gradients", Neural Networks 23(4), 2010, with
symmetric sampling, centred-rank fitness shaping and the ClipUp optimiser of
Toklu, Liskowski & Srivastava, "ClipUp: A Simple and Powerful Optimizer for
Distribution-based Policy Evolution", PPSN 2020 (arXiv:2008.02387).

A Gaussian ``N(mu, diag(sigma)**2)``; each generation (symmetric sampling, the
paper's section 2.3):

    for t = 0, 1, 2, ...
        for k = 1 .. n/2: draw eps_k ~ N(0, diag(sigma)**2);  theta_k+- = mu +- eps_k
        r_k+-  = centred rank in [-0.5, 0.5] of f(theta_k+-);  b = mean of all r
        g_mu    = 1/(n/2) sum_k (r_k+ - r_k-) / 2 * eps_k
        g_sigma = 1/(n/2) sum_k ((r_k+ + r_k-) / 2 - b) * (eps_k**2 - sigma**2) / sigma
        mu    <- optimizer step on -g_mu (ascent)            ClipUp by default
        sigma <- clip(sigma + eta_sigma * g_sigma, (1 - c) sigma, (1 + c) sigma)

The sigma clip (``c = sigma_max_change = 0.2``) and the defaults
(``learning_rate = 0.15``, ``sigma_learning_rate = 0.1``) follow EvoJAX/evotorch.
ClipUp (:func:`clipup`): ``v <- momentum * v + lr * g / |g|``, then ``v`` is clipped
to norm ``max_speed`` (default ``2 * lr``), and ``mu <- mu + v``.

Genotypes are :class:`~neuroevo.strategy.Perturbation` pairs from
:func:`~neuroevo.strategy.perturbations` with ``scale`` = the sign; ``decode``
multiplies by the state's per-dimension ``sigma`` vector (``eps_k = sigma * z_k``).
Large populations are compact (one seed per pair, noise regenerated chunk by
chunk in ``tell``), small ones keep the noise.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neuroevo import perturbation
from neuroevo.shaping import centered_ranks
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    population_size,
    ravel,
    search_start,
    search_step,
)

PyTree = Any


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))


class ClipUpState(NamedTuple):
    velocity: optax.Updates


def clipup(learning_rate: Any, momentum: Any = 0.9, max_speed: Any = None) -> optax.GradientTransformation:
    """ClipUp (Toklu et al. 2020) as an optax transformation (it descends ``updates``).

    ``v <- momentum * v + learning_rate * g / ||g||``; ``v <- v * min(1, max_speed / ||v||)``;
    the update is ``-v``. ``max_speed`` defaults to ``2 * learning_rate``. Norms are
    global over the pytree; a zero gradient adds nothing.
    """
    max_speed = 2.0 * learning_rate if max_speed is None else max_speed

    def init(params):
        return ClipUpState(jax.tree_util.tree_map(jnp.zeros_like, params))

    def update(updates, state, params=None):
        del params
        g_norm = _norm(updates)
        step = learning_rate / jnp.where(g_norm > 0, g_norm, 1.0)
        v = jax.tree_util.tree_map(lambda v, g: momentum * v + step * g, state.velocity, updates)
        v_norm = _norm(v)
        shrink = jnp.where(v_norm > max_speed, max_speed / jnp.where(v_norm > 0, v_norm, 1.0), 1.0)
        v = jax.tree_util.tree_map(lambda x: x * shrink, v)
        return jax.tree_util.tree_map(jnp.negative, v), ClipUpState(v)

    return optax.GradientTransformation(init, update)


OPTIMIZERS = ("clipup", "adam", "sgd")


def center_optimizer(optimizer, learning_rate, momentum, max_speed) -> optax.GradientTransformation:
    """``optimizer`` as an optax transformation: a name in :data:`OPTIMIZERS` or one already built."""
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if optimizer == "clipup":
        return clipup(learning_rate, momentum, max_speed)
    if optimizer == "adam":
        return optax.adam(learning_rate)
    if optimizer == "sgd":
        return optax.sgd(learning_rate)
    raise ValueError(
        f"unknown optimizer {optimizer!r} for pgpe; valid: {list(OPTIMIZERS)} "
        "or an optax.GradientTransformation"
    )


class PGPEState(NamedTuple):
    mean: PyTree
    sigma: jax.Array  # f32[d]: per-dimension standard deviation (flat, in ravel order of mean)
    opt_state: optax.OptState
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def pgpe(
    popsize: int = 256,
    sigma: float = 0.1,
    learning_rate: float = 0.15,
    sigma_learning_rate: float = 0.1,
    sigma_max_change: float = 0.2,
    optimizer: str | optax.GradientTransformation = "clipup",
    momentum: float = 0.9,
    max_speed: float | None = None,
    dense: bool | None = None,
    chunk_size: int | None = None,
) -> Strategy:
    """Build PGPE with symmetric sampling.

    Args:
      popsize: population size (static, even: ``popsize / 2`` symmetric pairs).
      sigma: initial standard deviation, a scalar or a flat ``(d,)`` vector.
      learning_rate: the centre's step size (ClipUp/Adam/SGD).
      sigma_learning_rate: ``eta_sigma``.
      sigma_max_change: sigma changes by at most this fraction per generation.
      optimizer: ``"clipup"``, ``"adam"``, ``"sgd"`` or any optax transformation
        (it sees the negated ascent direction; ``learning_rate`` is then unused).
      momentum, max_speed: ClipUp's (``max_speed`` None: ``2 * learning_rate``).
      dense: keep the noise (True), regenerate it from seeds (False), or decide
        from the population's size (None).
      chunk_size: members whose noise is regenerated at once in ``tell`` when compact.
    """
    check_popsize(popsize, even=True)
    opt = center_optimizer(optimizer, learning_rate, momentum, max_speed)
    pairs = popsize // 2

    def init(key: jax.Array, x0: PyTree) -> PGPEState:
        del key
        flat, fields = search_start(x0)
        sigma0 = jnp.broadcast_to(jnp.asarray(sigma, flat.dtype), flat.shape)
        return PGPEState(sigma=sigma0, opt_state=opt.init(flat), **fields)

    def ask(key: jax.Array, state: PGPEState) -> tuple[perturbation.Perturbation, PGPEState]:
        d = state.sigma.shape[0]
        return perturbation.perturbations(key, popsize, d, 1.0, dense=dense, dtype=state.sigma.dtype), state

    def decode(state: PGPEState, genotype: perturbation.Perturbation) -> PyTree:
        return perturbation.perturb(state.mean, genotype, state.sigma)

    def tell(
        key, state: PGPEState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> PGPEState:
        del key, descriptors
        fitness = check_fitness(fitness, population_size(genotypes))
        flat = ravel(state.mean)
        d = flat.shape[0]

        r = centered_ranks(fitness)
        r_diff, r_sum, base = perturbation.antithetic(r, genotypes)
        c_mu = r_diff / (2 * pairs)
        c_sigma = (r_sum / 2 - r.mean()) / pairs
        chunk = chunk_size or perturbation.default_noise_chunk(d)
        sum_z, sum_z2 = perturbation.weighted_eps_moments(c_mu, c_sigma, base, d, chunk, flat.dtype)
        g_mu = state.sigma * sum_z  # eps = sigma * z
        g_sigma = state.sigma * (sum_z2 - c_sigma.sum())  # (eps**2 - sigma**2) / sigma = sigma (z**2 - 1)

        updates, opt_state = opt.update(-g_mu, state.opt_state, flat)
        mean = optax.apply_updates(flat, updates)
        limit = sigma_max_change * state.sigma
        sigma_new = state.sigma + jnp.clip(sigma_learning_rate * g_sigma, -limit, limit)

        fields = search_step(decode, state, genotypes, fitness, mean)
        return PGPEState(sigma=sigma_new, opt_state=opt_state, **fields)

    return Strategy(init, ask, tell, decode)

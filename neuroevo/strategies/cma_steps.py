"""CMA-ES's named steps, each tagged with its equation in N. Hansen, "The CMA Evolution
Strategy: A Tutorial", arXiv:1604.00772 (2016), or with pycma where it differs.

Pure functions on arrays (a flat mean, ``C``, ``B``, ``D``, ``sqrt_C``, the paths); the
strategy :func:`neuroevo.strategies.cma_es.cma_es` composes them into ``ask`` and ``tell``.
``separable=True`` is sep-CMA-ES (Ros & Hansen 2008): ``C`` and ``D`` are vectors (the
diagonal) and ``B`` and ``sqrt_C`` are ``[0]`` placeholders.

**Sampling with the symmetric root.** The tutorial samples ``y = B D z`` (eq. (39)).
Here ``y = C^{1/2} z`` with the symmetric square root ``C^{1/2} = B D B^T``: the
same distribution N(0, C), and then ``C^{-1/2} y = z``. The eigenvectors ``B`` are
not a continuous function of ``C`` where eigenvalues (nearly) coincide, as at the
start (C = I): a rounding difference of 1e-9 in ``C`` (the same run compiled for 8
devices instead of 1) turned ``B`` by 0.8 and changed the whole trajectory. ``C^{1/2}``
is continuous in ``C``, so such differences stay at the level of rounding.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize
from neuroevo.sorting import argsort

Array = jax.Array


class Coefficients(NamedTuple):
    """Recombination weights and learning rates of ``lam`` live members (tutorial Table 1)."""

    weights: Array  # w_i, [capacity], zero beyond lam; positive ones sum to 1, negative ones (active CMA)
    mueff: Array  # variance effective selection mass of the positive weights, eq. (8)
    c_c: Array  # cumulation of the rank-one path, eq. (56)
    c_s: Array  # cumulation of the step-size path, eq. (55) (pycma's)
    c_1: Array  # rank-one learning rate, eq. (57)
    c_mu: Array  # rank-mu learning rate, eq. (58) (pycma's)
    d_s: Array  # step-size damping, eq. (55) (pycma 4.5's)
    chi_n: Array  # E|N(0, I)|, page 28
    mu: Array  # number of positive weights, floor(lam / 2)


class Run(NamedTuple):
    """The fields of one run, which a (re)start resets; ``mean`` flat."""

    mean: Array
    sigma: Array
    C: Array  # [d, d] (full) or [d] (separable)
    B: Array  # eigenvectors [d, d] (full) or a [0] placeholder (separable)
    D: Array  # sqrt of C's eigenvalues (full) or of its diagonal (separable), [d]
    sqrt_C: Array  # C^{1/2} = B D B^T [d, d] (full) or a [0] placeholder (separable)
    p_sigma: Array
    p_c: Array
    popsize: Array  # int32: live members of this run (<= the static capacity)
    run_generation: Array  # int32: generations since the last (re)start
    eigen_generation: Array  # int32: run_generation of the last eigendecomposition
    sigma0: Array  # initial step size of this run
    f_best_hist: Array  # ring buffer of each generation's best fitness
    f_median_hist: Array  # ring buffer of each generation's median fitness
    flat_count: Array
    run_best: Array  # best fitness of this run
    run_best_generation: Array  # run_generation at which it was found
    run_evaluations: Array


def fresh_run(dim: int, hist: int, dtype, mean: Array, sigma, lam, separable: bool) -> Run:
    """A run that starts at ``mean`` with step size ``sigma``, ``lam`` members, C = I."""
    C = jnp.ones((dim,), dtype) if separable else jnp.eye(dim, dtype=dtype)
    return Run(
        mean=mean,
        sigma=jnp.asarray(sigma, dtype),
        C=C,
        B=jnp.zeros((0,), dtype) if separable else jnp.eye(dim, dtype=dtype),
        D=jnp.ones((dim,), dtype),
        sqrt_C=jnp.zeros((0,), dtype) if separable else jnp.eye(dim, dtype=dtype),
        p_sigma=jnp.zeros((dim,), dtype),
        p_c=jnp.zeros((dim,), dtype),
        popsize=jnp.asarray(lam, jnp.int32),
        run_generation=jnp.zeros((), jnp.int32),
        eigen_generation=jnp.zeros((), jnp.int32),
        sigma0=jnp.asarray(sigma, dtype),
        f_best_hist=jnp.full((hist,), -jnp.inf, dtype),
        f_median_hist=jnp.full((hist,), -jnp.inf, dtype),
        flat_count=jnp.zeros((), jnp.int32),
        run_best=jnp.array(-jnp.inf, dtype),
        run_best_generation=jnp.zeros((), jnp.int32),
        run_evaluations=jnp.zeros((), jnp.int32),
    )


def default_popsize(dim: int) -> int:
    """The tutorial's lambda = 4 + floor(3 ln n), eq. (48)."""
    return 4 + int(3 * math.log(dim))


def history_length(dim: int, popsize: int) -> int:
    """Ring-buffer length: pycma's tolstagnation window plus its 20-generation medians."""
    return int(100 + 100 * dim**1.5 / popsize) + 20 + 10 + int(math.ceil(30 * dim / popsize))


def live_chunks(lam: Array, base: int) -> Array:
    """Chunks of ``base`` members that hold the ``lam`` live ones."""
    return (lam + base - 1) // base


def recombination(lam: Array, capacity: int, dim: int, separable: bool, dtype) -> Coefficients:
    """Weights and learning rates for ``lam`` live members (traced), tutorial Table 1.

    Weights have the static length ``capacity`` (zero beyond ``lam``).
    """
    n = jnp.asarray(dim, dtype)
    lam_f = lam.astype(dtype)
    mu = lam // 2
    i = jnp.arange(1, capacity + 1, dtype=dtype)
    live = jnp.arange(capacity) < lam
    raw = jnp.where(live, jnp.log((lam_f + 1) / 2) - jnp.log(i), 0.0)  # w'_i, eq. (49)
    pos = jnp.where(jnp.arange(capacity) < mu, raw, 0.0)
    neg = jnp.where(live & (jnp.arange(capacity) >= mu), raw, 0.0)
    mueff = jnp.sum(pos) ** 2 / jnp.sum(pos**2)
    mueff_neg = jnp.sum(neg) ** 2 / jnp.maximum(jnp.sum(neg**2), jnp.finfo(dtype).tiny)

    c_c = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    c_s = jnp.minimum(0.5, (mueff + 2) / (n + mueff + 3))  # pycma's; the tutorial has + 5 and no cap
    c_1 = 2 / ((n + 1.3) ** 2 + mueff)
    c_mu = jnp.minimum(1 - c_1, 2 * (0.25 + mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))  # pycma's + 0.25
    if separable:  # Ros & Hansen 2008: the diagonal learns (n + 2) / 3 times faster
        c_1 = jnp.minimum(1.0, c_1 * (n + 2) / 3)
        c_mu = jnp.minimum(1 - c_1, c_mu * (n + 2) / 3)
    # pycma 4.5's damping: the tutorial's, with the sqrt term scaled up for large dimensions.
    inner = max(1.0, 3 * (1 - 0.5 ** (dim / 9)))
    d_s = 1 + 2 * jnp.maximum(0.0, inner * jnp.sqrt((mueff - 1) / (n + 1)) - 1) + c_s

    alpha_mu = 1 + c_1 / c_mu  # eq. (50)
    alpha_mueff = 1 + 2 * mueff_neg / (mueff + 2)  # eq. (51)
    alpha_posdef = (1 - c_1 - c_mu) / (n * c_mu)  # eq. (52)
    neg_scale = jnp.minimum(jnp.minimum(alpha_mu, alpha_mueff), alpha_posdef)
    weights = pos / jnp.sum(pos) + neg_scale * neg / jnp.maximum(jnp.sum(-neg), jnp.finfo(dtype).tiny)  # (53)
    chi_n = jnp.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
    return Coefficients(
        weights=weights, mueff=mueff, c_c=c_c, c_s=c_s, c_1=c_1, c_mu=c_mu, d_s=d_s, chi_n=chi_n, mu=mu
    )


# --------------------------------------------------------------------------- #
# Sampling, eqs. (38)-(40)
# --------------------------------------------------------------------------- #


def sqrt_c_times(sqrt_C: Array, D: Array, z: Array, separable: bool) -> Array:
    """y = C^{1/2} z for each row of ``z``: eq. (39) with the symmetric root (module docstring)."""
    if separable:
        return z * D
    return z @ sqrt_C.T


def sample(mean: Array, sigma: Array, sqrt_C: Array, D: Array, z: Array, separable: bool) -> Array:
    """x = m + sigma y, eq. (40), for standard normals ``z`` (eq. (38))."""
    return mean + sigma * sqrt_c_times(sqrt_C, D, z, separable)


# --------------------------------------------------------------------------- #
# Selection and recombination, eqs. (41), (42), (46)
# --------------------------------------------------------------------------- #


def rank(fitness: Array, lam: Array, dtype) -> tuple[Array, Array, Array]:
    """(order, f, f sorted): the live members best first (fitness maximised), dead ones last.

    NaN and -inf rank last (:func:`~neuroevo.shaping.sanitize`).
    """
    capacity = fitness.shape[0]
    live = jnp.arange(capacity) < lam
    f = sanitize(fitness.astype(dtype))
    order = argsort(jnp.where(live, -f, jnp.inf))
    return order, f, f[order]


def weighted_sums(sqrt_C, D, z_all, order, w, n_chunks, base, capacity, separable):
    """(<y>_w over the positive weights, eq. (41); the same <z>_w; sum_i w°_i y_i y_i^T, eqs. (46)-(47)).

    ``w°_i = w_i`` for ``w_i >= 0``, else ``w_i n / |z_i|^2`` (active CMA: |C^{-1/2} y_i| = |z_i|).
    Computed on the sampled steps y = C^{1/2} z, not on (x - m) / sigma, whose float32
    rounding C^{-1/2} would amplify. Without restarts (``capacity == base``) in one
    piece; with restarts chunk by chunk of ``base`` ranks over the first ``n_chunks``
    only (those holding the live ones; the weights are 0 beyond).
    """
    dim, dtype = z_all.shape[1], z_all.dtype
    n = jnp.asarray(dim, dtype)

    def piece(idx, w_i):
        z = z_all[idx]
        y = sqrt_c_times(sqrt_C, D, z, separable)
        w_pos = jnp.where(w_i > 0, w_i, 0.0)
        norms = jnp.sum(z**2, axis=1)  # |C^{-1/2} y|^2
        # floored at eps, not at the smallest float: for z = 0 (a member given no sample,
        # e.g. of a finished problem in a vmapped campaign) n w / tiny overflows to -inf,
        # and -inf * 0 = NaN would make every update (and its eigendecomposition) NaN
        w_c = jnp.where(w_i >= 0, w_i, w_i * n / jnp.maximum(norms, jnp.finfo(dtype).eps))
        rank_mu = w_c @ y**2 if separable else (y.T * w_c) @ y
        return w_pos @ y, w_pos @ z, rank_mu

    if capacity == base:
        return piece(order, w)

    def chunk(i, acc):
        at = i * base
        part = piece(jax.lax.dynamic_slice_in_dim(order, at, base), jax.lax.dynamic_slice_in_dim(w, at, base))
        return tuple(a + b for a, b in zip(acc, part, strict=True))

    zero = jnp.zeros((dim,), dtype)
    acc0 = (zero, zero, zero if separable else jnp.zeros((dim, dim), dtype))
    return jax.lax.fori_loop(0, n_chunks, chunk, acc0)


def move_mean(mean: Array, sigma: Array, y_w: Array) -> Array:
    """m <- m + c_m sigma <y>_w with c_m = 1, eqs. (42), (54)."""
    return mean + sigma * y_w


# --------------------------------------------------------------------------- #
# Step-size control, eqs. (43), (44)
# --------------------------------------------------------------------------- #


def step_size_path(p_sigma: Array, c: Coefficients, z_w: Array) -> Array:
    """p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) C^{-1/2} <y>_w, eq. (43).

    C^{-1/2} <y>_w = C^{-1/2} C^{1/2} <z>_w = <z>_w.
    """
    return (1 - c.c_s) * p_sigma + jnp.sqrt(c.c_s * (2 - c.c_s) * c.mueff) * z_w


def stalled(ps_norm: Array, c: Coefficients, t: Array, n: Array) -> Array:
    """h_sigma (page 28), pycma's form: |p_s|^2 / (1 - (1 - c_s)^2t) / n - 1 < 1 + 4 / (n + 1)."""
    return ps_norm**2 / (1 - (1 - c.c_s) ** (2 * t)) / n - 1 < 1 + 4 / (n + 1)


def step_size(sigma: Array, ps_norm: Array, c: Coefficients) -> Array:
    """sigma <- sigma exp(min(1, c_s / d_s (|p_s| / E|N(0,I)| - 1))), eq. (44) (pycma clips at +-1)."""
    return sigma * jnp.exp(jnp.clip(c.c_s / c.d_s * (ps_norm / c.chi_n - 1), -1.0, 1.0))


def flat_fitness(sigma: Array, f_sorted: Array, lam: Array, c: Coefficients, flat_count: Array):
    """pycma's flat-fitness escape: if the best is no better than the 75th percentile,
    sigma <- sigma exp(0.2 + c_s / d_s). Returns (sigma, flat_count)."""
    flat = f_sorted[0] <= f_sorted[jnp.floor(0.75 * lam).astype(jnp.int32)]
    sigma = jnp.where(flat, sigma * jnp.exp(0.2 + c.c_s / c.d_s), sigma)
    return sigma, jnp.where(flat, flat_count + 1, 0)


# --------------------------------------------------------------------------- #
# Covariance matrix adaptation, eqs. (45)-(47)
# --------------------------------------------------------------------------- #


def covariance_path(p_c: Array, h_sigma: Array, c: Coefficients, y_w: Array) -> Array:
    """p_c <- (1 - c_c) p_c + h_sigma sqrt(c_c (2 - c_c) mu_eff) <y>_w, eq. (45)."""
    return (1 - c.c_c) * p_c + h_sigma * jnp.sqrt(c.c_c * (2 - c.c_c) * c.mueff) * y_w


def covariance(C, p_c, rank_mu, h_sigma, c: Coefficients, separable: bool) -> Array:
    """The covariance update, eq. (47):

    C <- (1 + c_1 delta(h_s) - c_1 - c_mu sum w_j) C + c_1 p_c p_c^T + c_mu sum_i w°_i y_i y_i^T
    """
    delta = (1 - h_sigma) * c.c_c * (2 - c.c_c)  # page 28
    decay = 1 + c.c_1 * delta - c.c_1 - c.c_mu * jnp.sum(c.weights)
    if separable:
        return decay * C + c.c_1 * p_c**2 + c.c_mu * rank_mu
    return decay * C + c.c_1 * jnp.outer(p_c, p_c) + c.c_mu * rank_mu


def ulp_floor(C: Array, mean: Array, sigma: Array, separable: bool) -> tuple[Array, Array]:
    """Keep each coordinate's standard deviation at >= one ulp of the mean; (C, inflated).

    A coordinate whose standard deviation falls below an ulp of the mean can no
    longer move (every step rounds away) and then collapses. Inactive in float64
    before tolx fires; in float32 it lets the search go on among the nearest lattice
    points. (Not in the tutorial or pycma.)
    """
    diag_c = C if separable else jnp.diagonal(C)
    need = (jnp.abs(jnp.spacing(mean)) / sigma) ** 2
    scale = jnp.sqrt(jnp.maximum(need / jnp.maximum(diag_c, jnp.finfo(C.dtype).tiny), 1.0))
    C = C * scale**2 if separable else C * jnp.outer(scale, scale)
    return C, jnp.any(scale > 1)


def decompose(C: Array, separable: bool) -> tuple[Array, Array, Array, Array]:
    """(C symmetrised, B, D, C^{1/2} = B D B^T) with C = B D^2 B^T, eigenvalues floored at
    max_eig * eps**2."""
    eps = jnp.finfo(C.dtype).eps
    if separable:
        c = jnp.maximum(C, jnp.max(C) * eps**2)
        empty = jnp.zeros((0,), C.dtype)
        return c, empty, jnp.sqrt(c), empty
    C = (C + C.T) / 2
    eig, B = jnp.linalg.eigh(C)
    eig = jnp.maximum(eig, jnp.max(eig) * eps**2)
    D = jnp.sqrt(eig)
    root = (B * D) @ B.T
    return C, B, D, (root + root.T) / 2


def lazy_decompose(C, B, D, sqrt_C, t, eigen_generation, c: Coefficients, n, force, separable, eigen_gap=0.1):
    """The eigendecomposition every eigen_gap / ((c_1 + c_mu) n) generations (0.1: the
    tutorial's B.2; pyribs' purecma-style 0.5), or when ``force``; returns (C, B, D,
    C^{1/2}, generation of the last one)."""
    gap = 1 / ((c.c_1 + c.c_mu) * n * (1 / eigen_gap))  # 0.1: the tutorial's 1/(... n 10), bit for bit
    due = ((t - eigen_generation).astype(C.dtype) >= gap) | force
    kept = lambda C: (C, B, D, sqrt_C)
    C, B, D, sqrt_C = jax.lax.cond(due, lambda C: decompose(C, separable), kept, C)
    return C, B, D, sqrt_C, jnp.where(due, t, eigen_generation)

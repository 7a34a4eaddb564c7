"""CMA-ES: N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772
(2016), as implemented in pycma; with active CMA (Jastrebski & Arnold 2006),
pycma's termination criteria, IPOP restarts (Auger & Hansen 2005) and BIPOP
restarts (Hansen 2009, "Benchmarking a BI-Population CMA-ES on the BBOB-2009
Function Testbed"), and the separable variant sep-CMA-ES (Ros & Hansen 2008, "A
Simple Modification in CMA-ES Achieving Linear Time and Space Complexity").

One generation, the tutorial's Figure 6 (maximising fitness F = -f):

    z_k ~ N(0, I);  y_k = B D z_k;  x_k = m + sigma y_k                 k = 1..lambda
    sort by F (best first);  <y>_w = sum_{i<=mu} w_i y_{i:lambda}
    m   <- m + c_m sigma <y>_w
    p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) C^{-1/2} <y>_w
    p_c <- (1 - c_c) p_c + h_s sqrt(c_c (2 - c_c) mu_eff) <y>_w
    w°_i = w_i (1 if w_i >= 0 else n / |C^{-1/2} y_{i:lambda}|^2)
    C   <- (1 + c_1 delta(h_s) - c_1 - c_mu sum w_j) C + c_1 p_c p_c^T + c_mu sum_i w°_i y_i y_i^T
    sigma <- sigma exp(min(1, c_s / d_s (|p_s| / E|N(0,I)| - 1)))
    every 1 / ((c_1 + c_mu) n 10) generations:  C = B D^2 B^T

The weights are the tutorial's: w'_i = ln((lambda+1)/2) - ln i for all lambda
members, the positive ones summing to one and the negative ones scaled so
that C stays positive definite (active CMA).

**Termination** (pycma's criteria and defaults, checked at every ``tell``,
each a boolean in ``state.termination``): ``tolfun``, ``tolfunhist``,
``tolx``, ``tolstagnation``, ``noeffectaxis``, ``noeffectcoord``,
``conditioncov``, ``tolupsigma``, ``flat_fitness``, plus ``numerics`` (an
update that would have produced a non-finite state is refused) and
``bipop_budget`` (a small-population BIPOP run has spent its budget).

Genotypes are :class:`CMAGenotype` s: the dense point ``x`` (``decode``
unravels it) and the ``z`` it was sampled from. ``tell`` adapts on ``z``:
recomputing ``(x - m) / sigma`` would feed float32 rounding, amplified by
C^{-1/2} along short axes, into the step-size path.

**Restarts are state transitions.** With ``restarts="ipop"`` a terminated
run restarts with twice the population; with ``"bipop"`` it alternates
between that large regime and small-population runs with a random smaller
step size, choosing the regime that has spent fewer evaluations. The
population array has the static capacity ``popsize * 2**max_restarts``; only
the first ``state.popsize`` members are live (the others are copies of the
mean whose fitness is ignored; an evaluator may skip them). Without restarts
a terminated run stops: ``state.stop`` is set and the distribution is frozen.

The state never holds a NaN, whatever the fitness: NaN and -inf rank last,
an update that would create a non-finite value is refused (``numerics``),
and eigenvalues are floored at ``max_eig * eps**2``. **Float32** runs reach
f - f* <= 1e-8 on ill-conditioned functions (given a precise evaluation): a
coordinate's standard deviation is kept at >= 1 ulp of the mean, so the
search goes on among the nearest float32 lattice points instead of
collapsing, and ``noeffectaxis`` / ``noeffectcoord`` apply in float64 only.
The learning rates are pycma's where they differ from the tutorial
(``c_s = (mu_eff + 2) / (n + mu_eff + 3)``, ``c_mu`` with pycma's 0.25 offset). Everything is computed in
x0's dtype, so float64 runs need ``jax_enable_x64`` and a float64 ``x0``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.shaping import sanitize
from neuroevo.sorting import argsort, median
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    population_size,
    ravel,
    static_int,
    unravel_like,
    update_best,
)

PyTree = Any

CRITERIA = (
    "tolfun",
    "tolfunhist",
    "tolx",
    "tolstagnation",
    "noeffectaxis",
    "noeffectcoord",
    "conditioncov",
    "tolupsigma",
    "flat_fitness",
    "numerics",
    "bipop_budget",
)

Termination = NamedTuple("Termination", [(c, jax.Array) for c in CRITERIA])


class CMAGenotype(NamedTuple):
    """One member: its point ``x = m + sigma B D z`` and the standard-normal ``z`` it came from."""

    x: jax.Array
    z: jax.Array


class CMAState(NamedTuple):
    mean: PyTree
    sigma: jax.Array
    C: jax.Array  # [d, d] (full) or [d] (separable)
    B: jax.Array  # eigenvectors [d, d] (full) or a [0] placeholder (separable)
    D: jax.Array  # sqrt of C's eigenvalues (full) or of its diagonal (separable), [d]
    p_sigma: jax.Array
    p_c: jax.Array
    popsize: jax.Array  # int32: live members of this run (<= the static capacity)
    run_generation: jax.Array  # int32: generations since the last (re)start
    eigen_generation: jax.Array  # int32: run_generation of the last eigendecomposition
    sigma0: jax.Array  # initial step size of this run
    f_best_hist: jax.Array  # ring buffer of each generation's best fitness
    f_median_hist: jax.Array  # ring buffer of each generation's median fitness
    flat_count: jax.Array
    run_best: jax.Array  # best fitness of this run
    run_best_generation: jax.Array  # run_generation at which it was found
    termination: Termination  # why the last run stopped (all False while it runs)
    stop: jax.Array  # terminated and no restart left: the distribution is frozen
    restarts: jax.Array  # restarts done so far (large-population ones for BIPOP)
    evaluations: jax.Array  # live evaluations so far, all runs
    run_evaluations: jax.Array
    large_evaluations: jax.Array  # BIPOP: spent in the large (and first) regime
    small_evaluations: jax.Array  # BIPOP: spent in the small regime
    last_large_evaluations: jax.Array  # BIPOP: evaluations of the last large run
    large_popsize: jax.Array  # BIPOP: population of the last large run
    small_regime: jax.Array  # BIPOP: this run is a small-population one
    x0: jax.Array  # flat initial mean (restarts begin here unless restart_box is set)
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def default_popsize(dim: int) -> int:
    """The tutorial's lambda = 4 + floor(3 ln n)."""
    return 4 + int(3 * math.log(dim))


def recombination(lam: jax.Array, capacity: int, dim: int, separable: bool, dtype) -> dict:
    """Weights and learning rates for ``lam`` live members (traced), tutorial Table 1.

    Returns weights of the static length ``capacity`` (zero beyond ``lam``).
    """
    n = jnp.asarray(dim, dtype)
    lam_f = lam.astype(dtype)
    mu = lam // 2
    i = jnp.arange(1, capacity + 1, dtype=dtype)
    live = jnp.arange(capacity) < lam
    raw = jnp.where(live, jnp.log((lam_f + 1) / 2) - jnp.log(i), 0.0)
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

    alpha_mu = 1 + c_1 / c_mu
    alpha_mueff = 1 + 2 * mueff_neg / (mueff + 2)
    alpha_posdef = (1 - c_1 - c_mu) / (n * c_mu)
    neg_scale = jnp.minimum(jnp.minimum(alpha_mu, alpha_mueff), alpha_posdef)
    weights = pos / jnp.sum(pos) + neg_scale * neg / jnp.maximum(jnp.sum(-neg), jnp.finfo(dtype).tiny)
    chi_n = jnp.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
    return dict(
        weights=weights, mueff=mueff, c_c=c_c, c_s=c_s, c_1=c_1, c_mu=c_mu, d_s=d_s, chi_n=chi_n, mu=mu
    )


def history_length(dim: int, popsize: int) -> int:
    """Ring-buffer length: pycma's tolstagnation window plus its 20-generation medians."""
    return int(100 + 100 * dim**1.5 / popsize) + 20 + 10 + int(math.ceil(30 * dim / popsize))


def live_chunks(lam: jax.Array, base: int) -> jax.Array:
    """Chunks of ``base`` members that hold the ``lam`` live ones."""
    return (lam + base - 1) // base


def cma_es(
    popsize: int | None = None,
    sigma: float = 2.0,
    restarts: str | None = None,
    max_restarts: int = 9,
    restart_box: tuple[float, float] | None = None,
    separable: bool = False,
    tolfun: float = 1e-11,
    tolfunhist: float = 1e-12,
    tolx: float = 1e-11,
    tolupsigma: float = 1e20,
    conditioncov: float = 1e14,
    tolflatfitness: int = 1,
    stagnation: bool = True,
    cycle: bool = False,
    eigen_gap: float = 0.1,
) -> Strategy:
    """Build CMA-ES (``separable=True``: sep-CMA-ES, O(n) memory and time per sample).

    Args:
      popsize: lambda of the first run (static; default ``4 + floor(3 ln n)``).
      sigma: initial step size (traceable).
      restarts: None (stop when a criterion fires), ``"ipop"`` or ``"bipop"``.
      max_restarts: IPOP restarts, or BIPOP large-population restarts (static:
        the population capacity is ``popsize * 2**max_restarts``).
      restart_box: ``(low, high)``: restarts begin at a uniform point of this box
        (each coordinate) instead of at x0, as in COCO's BBOB experiments.
      separable: diagonal covariance (sep-CMA-ES) for large dimensions.
      tolfun, tolfunhist, tolx, tolupsigma, conditioncov, tolflatfitness:
        pycma's termination thresholds, with pycma's defaults.
      stagnation: enable pycma's ``tolstagnation`` criterion.
      cycle: with restarts, when none is left, begin again from the first
        population size (a new run from ``restart_box``, or x0) instead of
        stopping: the run goes on for as long as it is asked, as COCO campaigns
        restart until the budget is spent.
      eigen_gap: the covariance is decomposed every ``eigen_gap / ((c_1 + c_mu) n)``
        generations: 0.1 is the tutorial's lazy update; pyribs' CMA-ES (after
        purecma) waits 0.5, five times longer (CMA-ME's emitters use it).
    """
    if restarts not in (None, "ipop", "bipop"):
        raise ValueError(f"restarts must be None, 'ipop' or 'bipop', got {restarts!r}")
    if cycle and restarts is None:
        raise ValueError("cycle=True needs restarts ('ipop' or 'bipop')")
    if popsize is not None:
        check_popsize(popsize, minimum=4)
    static_int("max_restarts", max_restarts, 0, 16, "16 (the capacity doubles with each restart)")
    static_int("tolflatfitness", tolflatfitness, 1)
    growth = 2**max_restarts if restarts else 1

    def sizes(dim: int) -> tuple[int, int, int]:
        base = popsize if popsize is not None else default_popsize(dim)
        return base, base * growth, history_length(dim, base)

    # ------------------------------------------------------------------ #
    # The distribution: sampling, C^{-1/2}, eigendecomposition.
    # ------------------------------------------------------------------ #

    def sqrt_c_times(state: CMAState, z: jax.Array) -> jax.Array:
        """y = B D z (rows of z)."""
        if separable:
            return z * state.D
        return (z * state.D) @ state.B.T

    def weighted_sums(state, z_all, order, w, n_chunks, base, capacity):
        """(<y>_w, <z>_w over the positive weights, sum_i w°_i y_i y_i^T) of the ranked members.

        ``w°_i = w_i`` for ``w_i >= 0``, else ``w_i n / |z_i|^2`` (active CMA). Without
        restarts, in one piece; with restarts, chunk by chunk of ``base`` ranks over
        the first ``n_chunks`` only (those holding the live ones; the weights are 0 beyond).
        """
        dim, dtype = z_all.shape[1], z_all.dtype
        n = jnp.asarray(dim, dtype)

        def piece(idx, w_i):
            z = z_all[idx]
            y = sqrt_c_times(state, z)
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
            part = piece(
                jax.lax.dynamic_slice_in_dim(order, at, base), jax.lax.dynamic_slice_in_dim(w, at, base)
            )
            return tuple(a + b for a, b in zip(acc, part, strict=True))

        zero = jnp.zeros((dim,), dtype)
        acc0 = (zero, zero, zero if separable else jnp.zeros((dim, dim), dtype))
        return jax.lax.fori_loop(0, n_chunks, chunk, acc0)

    def decompose(C: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(C symmetrised, B, D) with eigenvalues floored at max_eig * eps**2."""
        eps = jnp.finfo(C.dtype).eps
        if separable:
            c = jnp.maximum(C, jnp.max(C) * eps**2)
            return c, jnp.zeros((0,), C.dtype), jnp.sqrt(c)
        C = (C + C.T) / 2
        eig, B = jnp.linalg.eigh(C)
        eig = jnp.maximum(eig, jnp.max(eig) * eps**2)
        return C, B, jnp.sqrt(eig)

    def fresh_run(dim, hist, dtype, mean, sigma_run, lam) -> dict:
        """The fields a (re)start resets."""
        C = jnp.ones((dim,), dtype) if separable else jnp.eye(dim, dtype=dtype)
        return dict(
            mean_flat=mean,
            sigma=jnp.asarray(sigma_run, dtype),
            C=C,
            B=jnp.zeros((0,), dtype) if separable else jnp.eye(dim, dtype=dtype),
            D=jnp.ones((dim,), dtype),
            p_sigma=jnp.zeros((dim,), dtype),
            p_c=jnp.zeros((dim,), dtype),
            popsize=jnp.asarray(lam, jnp.int32),
            run_generation=jnp.zeros((), jnp.int32),
            eigen_generation=jnp.zeros((), jnp.int32),
            sigma0=jnp.asarray(sigma_run, dtype),
            f_best_hist=jnp.full((hist,), -jnp.inf, dtype),
            f_median_hist=jnp.full((hist,), -jnp.inf, dtype),
            flat_count=jnp.zeros((), jnp.int32),
            run_best=jnp.array(-jnp.inf, dtype),
            run_best_generation=jnp.zeros((), jnp.int32),
            run_evaluations=jnp.zeros((), jnp.int32),
        )

    def init(key: jax.Array, x0: PyTree) -> CMAState:
        del key
        flat, unravel = check_x0(x0)
        dim, dtype = flat.shape[0], flat.dtype
        base, capacity, hist = sizes(dim)
        run = fresh_run(dim, hist, dtype, flat, sigma, base)
        mean = unravel(run.pop("mean_flat"))
        zero = jnp.zeros((), jnp.int32)
        return CMAState(
            mean=mean,
            **run,
            termination=Termination(*[jnp.zeros((), bool) for _ in CRITERIA]),
            stop=jnp.zeros((), bool),
            restarts=zero,
            evaluations=zero,
            large_evaluations=zero,
            small_evaluations=zero,
            last_large_evaluations=zero,
            large_popsize=jnp.asarray(base, jnp.int32),
            small_regime=jnp.zeros((), bool),
            x0=flat,
            best_solution=mean,
            best_fitness=jnp.array(-jnp.inf, dtype),
            generation=zero,
        )

    # ------------------------------------------------------------------ #
    # ask / decode
    # ------------------------------------------------------------------ #

    def ask(
        key: jax.Array, state: CMAState, chunks: jax.Array | None = None, z: jax.Array | None = None
    ) -> tuple[CMAGenotype, CMAState]:
        """Sample the population; with restarts, ``chunks`` (optional) is the number of
        ``popsize``-member chunks to sample: an unbatched bound on the live ones (e.g. the
        maximum over a vmapped batch, so that the loop is not batched). ``z`` (optional,
        ``[capacity, dim]``): standard normals to use instead of drawing them (``key`` is
        then unused), e.g. drawn by a caller for the live members of a whole batch at once;
        rows beyond ``state.popsize`` are ignored."""
        m = ravel(state.mean)
        dim = m.shape[0]
        base, capacity, _ = sizes(dim)

        def draw(i, rows):
            if z is not None:
                return jax.lax.dynamic_slice_in_dim(z.astype(m.dtype), 0 if i is None else i * rows, rows)
            k = key if i is None else jax.random.fold_in(key, i)
            return jax.random.normal(k, (rows, dim), m.dtype)

        if capacity == base:
            zs = jnp.where((jnp.arange(capacity) < state.popsize)[:, None], draw(None, capacity), 0.0)
            return CMAGenotype(x=m + state.sigma * sqrt_c_times(state, zs), z=zs), state

        # Restarts: sample only the chunks of ``base`` members that are live; dead
        # members stay z = 0, x = m. The cost follows the live population.
        def chunk(i, zx):
            zs, x = zx
            live = (i * base + jnp.arange(base)) < state.popsize
            zi = jnp.where(live[:, None], draw(i, base), 0.0)
            xi = m + state.sigma * sqrt_c_times(state, zi)
            at = i * base
            return (
                jax.lax.dynamic_update_slice_in_dim(zs, zi, at, axis=0),
                jax.lax.dynamic_update_slice_in_dim(x, xi, at, axis=0),
            )

        zx0 = (jnp.zeros((capacity, dim), m.dtype), jnp.broadcast_to(m, (capacity, dim)))
        n_chunks = live_chunks(state.popsize, base) if chunks is None else chunks
        zs, x = jax.lax.fori_loop(0, n_chunks, chunk, zx0)
        return CMAGenotype(x=x, z=zs), state

    def decode(state: CMAState, genotype: CMAGenotype) -> PyTree:
        return unravel_like(state.mean)(genotype.x)

    # ------------------------------------------------------------------ #
    # tell: selection, recombination, adaptation, termination, restart.
    # ------------------------------------------------------------------ #

    def tell(
        key, state: CMAState, genotypes: CMAGenotype, fitness, descriptors=None, chunks=None
    ) -> CMAState:
        """Update the distribution (``chunks``: as in ``ask``, an unbatched bound on the live chunks)."""
        del descriptors
        capacity = population_size(genotypes)
        fitness = check_fitness(fitness, capacity)
        m = ravel(state.mean)
        dim, dtype = m.shape[0], m.dtype
        base, _, hist = sizes(dim)
        n = jnp.asarray(dim, dtype)
        lam = state.popsize
        live = jnp.arange(capacity) < lam
        f = sanitize(fitness.astype(dtype))
        order = argsort(jnp.where(live, -f, jnp.inf))  # best first, dead last
        f_sorted = f[order]
        r = recombination(lam, capacity, dim, separable, dtype)
        w = r["weights"]

        # Selection and recombination, on the sampled steps y = B D z (not on
        # (x - m) / sigma, whose float32 rounding C^{-1/2} would amplify).
        # With restarts, over the live chunks of the ranking only (w = 0 beyond lam).
        n_chunks = live_chunks(lam, base) if chunks is None else chunks
        y_w, z_w, rank_mu = weighted_sums(state, genotypes.z, order, w, n_chunks, base, capacity)
        mean = m + state.sigma * y_w

        # Step-size path and cumulative step-size adaptation; C^{-1/2} y_w = B z_w.
        t = state.run_generation + 1
        p_sigma = (1 - r["c_s"]) * state.p_sigma + jnp.sqrt(r["c_s"] * (2 - r["c_s"]) * r["mueff"]) * (
            z_w if separable else state.B @ z_w
        )
        ps_norm = jnp.linalg.norm(p_sigma)
        # pycma's stall test (the tutorial's, squared): |p_s|^2 / (1 - (1 - c_s)^2t) / n - 1 < 1 + 4 / (n + 1)
        h_sigma = ps_norm**2 / (1 - (1 - r["c_s"]) ** (2 * t)) / n - 1 < 1 + 4 / (n + 1)
        p_c = (1 - r["c_c"]) * state.p_c + h_sigma * jnp.sqrt(r["c_c"] * (2 - r["c_c"]) * r["mueff"]) * y_w

        # Covariance: rank-one + active rank-mu update (rank_mu: sum_i w°_i y_i y_i^T).
        delta = (1 - h_sigma) * r["c_c"] * (2 - r["c_c"])
        decay = 1 + r["c_1"] * delta - r["c_1"] - r["c_mu"] * jnp.sum(w)
        if separable:
            C = decay * state.C + r["c_1"] * p_c**2 + r["c_mu"] * rank_mu
        else:
            C = decay * state.C + r["c_1"] * jnp.outer(p_c, p_c) + r["c_mu"] * rank_mu
        sigma_new = state.sigma * jnp.exp(
            jnp.clip(r["c_s"] / r["d_s"] * (ps_norm / r["chi_n"] - 1), -1.0, 1.0)
        )

        # Flat fitness (pycma): the best is no better than the 75th percentile.
        flat = f_sorted[0] <= f_sorted[jnp.floor(0.75 * lam).astype(jnp.int32)]
        sigma_new = jnp.where(flat, sigma_new * jnp.exp(0.2 + r["c_s"] / r["d_s"]), sigma_new)
        flat_count = jnp.where(flat, state.flat_count + 1, 0)

        # Float resolution: a coordinate whose standard deviation falls below an ulp
        # of the mean can no longer move (every step rounds away) and then
        # collapses; keep it at one ulp. Inactive in float64 before tolx fires; in
        # float32 it lets the search go on among the nearest lattice points.
        diag_c = C if separable else jnp.diagonal(C)
        need = (jnp.abs(jnp.spacing(mean)) / sigma_new) ** 2
        scale = jnp.sqrt(jnp.maximum(need / jnp.maximum(diag_c, jnp.finfo(dtype).tiny), 1.0))
        C = C * scale**2 if separable else C * jnp.outer(scale, scale)
        inflated = jnp.any(scale > 1)

        # Eigendecomposition, lazily as in the tutorial (every 1/((c1+cmu) n 10) generations).
        gap = 1 / ((r["c_1"] + r["c_mu"]) * n * (1 / eigen_gap))  # 0.1: the tutorial's, bit for bit
        due = ((t - state.eigen_generation).astype(dtype) >= gap) | inflated
        C, B, D = jax.lax.cond(due, decompose, lambda c: (c, state.B, state.D), C)
        eigen_generation = jnp.where(due, t, state.eigen_generation)

        # Histories for the termination criteria.
        slot = state.run_generation % hist
        f_best_hist = state.f_best_hist.at[slot].set(f_sorted[0])
        f_median_hist = state.f_median_hist.at[slot].set(f_sorted[lam // 2])
        run_evaluations = state.run_evaluations + lam
        improved = f_sorted[0] > state.run_best
        run_best = jnp.where(improved, f_sorted[0], state.run_best)
        run_best_generation = jnp.where(improved, t, state.run_best_generation)

        proposal = dict(
            mean_flat=mean,
            sigma=sigma_new,
            C=C,
            B=B,
            D=D,
            p_sigma=p_sigma,
            p_c=p_c,
            run_generation=t,
            eigen_generation=eigen_generation,
            f_best_hist=f_best_hist,
            f_median_hist=f_median_hist,
            flat_count=flat_count,
            run_best=run_best,
            run_best_generation=run_best_generation,
            run_evaluations=run_evaluations,
        )
        finite = jnp.all(
            jnp.array([jnp.all(jnp.isfinite(v)) for v in (mean, sigma_new, C, B, D, p_sigma, p_c)])
        )
        finite &= (sigma_new > 0) & jnp.all(D > 0)
        term = criteria(state, proposal, f_sorted, lam, finite, dim, dtype)

        # The new run: keep it, freeze it (stopped), or restart.
        current = {k: getattr(state, k) for k in proposal if k != "mean_flat"}
        current["mean_flat"] = m
        running = jax.tree_util.tree_map(
            lambda new, old: jnp.where(state.stop | ~finite, old, new), proposal, current
        )
        terminated = jnp.any(jnp.array(term)) & ~state.stop
        best_i = order[0]
        best_solution, best_fitness = update_best(
            state.best_solution,
            state.best_fitness,
            unravel_like(state.mean)(genotypes.x[best_i]),
            f[best_i],
        )
        evaluations = state.evaluations + jnp.where(state.stop, 0, lam)
        small = state.small_regime
        large_evaluations = state.large_evaluations + jnp.where(state.stop | small, 0, lam)
        small_evaluations = state.small_evaluations + jnp.where(~state.stop & small, lam, 0)
        common = dict(
            evaluations=evaluations,
            large_evaluations=large_evaluations,
            small_evaluations=small_evaluations,
            x0=state.x0,
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
        )
        kept_term = Termination(
            *[jnp.where(terminated, a, b) for a, b in zip(term, state.termination, strict=True)]
        )
        continued = dict(
            **running,
            termination=kept_term,
            stop=state.stop,
            restarts=state.restarts,
            last_large_evaluations=state.last_large_evaluations,
            large_popsize=state.large_popsize,
            small_regime=state.small_regime,
            popsize=state.popsize,
            sigma0=state.sigma0,
        )
        if restarts is None:
            continued["stop"] = state.stop | terminated
            return _state(continued, common, state)
        restarted = restart(key, state, kept_term, dim, dtype, base, hist, capacity)
        chosen = jax.tree_util.tree_map(lambda a, b: jnp.where(terminated, a, b), restarted, continued)
        return _state(chosen, common, state)

    def _state(fields: dict, common: dict, state: CMAState) -> CMAState:
        fields = dict(fields)
        mean = unravel_like(state.mean)(fields.pop("mean_flat"))
        return CMAState(mean=mean, **fields, **common)

    def criteria(state, new, f_sorted, lam, finite, dim, dtype) -> Termination:
        """pycma's termination criteria on the proposed state (one boolean each)."""
        t = new["run_generation"]
        hist = state.f_best_hist.shape[0]
        lam_f = lam.astype(dtype)
        sigma_ = new["sigma"]
        diag_c = new["C"] if separable else jnp.diagonal(new["C"])
        m = new["mean_flat"]
        eig = new["D"] ** 2

        def window(buffer, start_age, length):
            """Entries of age start_age .. start_age+length-1 (age 0 = this generation)."""
            ages = start_age + jnp.arange(length)
            return buffer[(t - 1 - ages) % hist]

        # tolfun / tolfunhist: over the last 10 + 30 n / lambda generations' best values.
        span = 10 + jnp.ceil(30 * dim / lam_f).astype(jnp.int32)
        ages = jnp.arange(hist)
        in_span = (ages < span) & (ages < t)
        recent = new["f_best_hist"][(t - 1 - ages) % hist]
        hist_range = jnp.max(jnp.where(in_span, recent, -jnp.inf)) - jnp.min(
            jnp.where(in_span, recent, jnp.inf)
        )
        full = t >= span
        live_range = f_sorted[0] - f_sorted[lam - 1]
        tolfun_ = full & (live_range < tolfun) & (hist_range < tolfun)
        tolfunhist_ = full & (hist_range < tolfunhist)

        # tolx: all of sigma * p_c and sigma * sqrt(diag C) below tolx.
        tolx_ = jnp.all(sigma_ * jnp.abs(new["p_c"]) < tolx) & jnp.all(sigma_ * jnp.sqrt(diag_c) < tolx)

        # tolstagnation: the medians of the last 20 best and median values are no
        # better than 20 generations' worth tolstagnation generations ago.
        stag = (100 + 100 * dim**1.5 / lam_f).astype(jnp.int32)
        windows = [
            window(new[h], age, 20) for age in (stag - 20, 0) for h in ("f_best_hist", "f_median_hist")
        ]
        old_best, old_median, new_best, new_median = median(jnp.stack(windows))  # one sort
        tolstagnation_ = (
            jnp.asarray(stagnation)
            & (t > stag)
            & (t - new["run_best_generation"] > stag // 2)  # the best is older than half the window
            & (t.astype(dtype) > dim * (5 + 100 / lam_f))
            & (new_best <= old_best)
            & (new_median <= old_median)
        )

        # noeffectaxis: a tenth of a standard deviation along axis t mod n leaves m unchanged.
        i = t % dim
        if separable:
            axis = jnp.zeros((dim,), dtype).at[i].set(new["D"][i])
        else:
            axis = new["B"][:, i] * new["D"][i]
        # noeffectcoord: a fifth of a standard deviation in some coordinate leaves it unchanged.
        # Both apply in float64 only: in float32 they fire long before the optimum
        # is resolved (f - f* ~ 1e-6 on an ill-conditioned function), while whole
        # steps still move; there the one-ulp floor above keeps the search alive.
        precise = jnp.finfo(dtype).bits >= 64
        noeffectaxis_ = jnp.all(m == m + 0.1 * sigma_ * axis) & precise
        noeffectcoord_ = jnp.any(m == m + 0.2 * sigma_ * jnp.sqrt(diag_c)) & precise
        conditioncov_ = jnp.max(eig) > conditioncov * jnp.min(eig)
        tolupsigma_ = sigma_ / jnp.sqrt(jnp.max(eig)) > state.sigma0 * tolupsigma
        flat_ = new["flat_count"] > tolflatfitness
        bipop_budget_ = (
            jnp.asarray(restarts == "bipop")
            & state.small_regime
            & (new["run_evaluations"] > state.last_large_evaluations // 2)
        )
        return Termination(
            tolfun=tolfun_,
            tolfunhist=tolfunhist_,
            tolx=tolx_,
            tolstagnation=tolstagnation_,
            noeffectaxis=noeffectaxis_,
            noeffectcoord=noeffectcoord_,
            conditioncov=conditioncov_,
            tolupsigma=tolupsigma_,
            flat_fitness=flat_,
            numerics=~finite,
            bipop_budget=bipop_budget_,
        )

    def restart(key, state, term, dim, dtype, base, hist, capacity) -> dict:
        """The state a terminated run restarts from (IPOP or BIPOP); stop if none is left."""
        k_mean, k_u = jax.random.split(key)
        if restart_box is None:
            mean = state.x0
        else:
            low, high = restart_box
            mean = jax.random.uniform(
                k_mean, (dim,), dtype, jnp.asarray(low, dtype), jnp.asarray(high, dtype)
            )
        was_large = ~state.small_regime
        last_large_evaluations = jnp.where(
            was_large, state.run_evaluations + state.popsize, state.last_large_evaluations
        )
        # Evaluations per regime after this generation (this run's last one included).
        large_ev = state.large_evaluations + jnp.where(was_large, state.popsize, 0)
        small_ev = state.small_evaluations + jnp.where(was_large, 0, state.popsize)
        if restarts == "ipop":
            go_large = jnp.ones((), bool)
        else:
            go_large = large_ev <= small_ev
        large_lam = jnp.minimum(state.large_popsize * 2, capacity)
        exhausted = go_large & (state.restarts >= max_restarts)
        u = jax.random.uniform(k_u, (), dtype)
        small_lam = jnp.floor(base * (0.5 * large_lam / base) ** (u**2)).astype(jnp.int32)
        small_lam = jnp.clip(small_lam, base, capacity)
        lam = jnp.where(go_large, large_lam, small_lam)
        sigma_run = jnp.where(
            go_large, jnp.asarray(sigma, dtype), jnp.asarray(sigma, dtype) * 10.0 ** (-2 * u)
        )
        if cycle:  # no restart left: begin again from the first population instead of stopping
            lam = jnp.where(exhausted, base, lam)
            large_lam = jnp.where(exhausted, base, large_lam)
        halt = jnp.zeros((), bool) if cycle else exhausted
        run = fresh_run(dim, hist, dtype, mean, sigma_run, lam)
        fields = dict(
            **run,
            termination=term,
            stop=halt,
            restarts=jnp.where(exhausted & cycle, 0, state.restarts + jnp.where(go_large & ~halt, 1, 0)),
            last_large_evaluations=last_large_evaluations,
            large_popsize=jnp.where(go_large & ~halt, large_lam, state.large_popsize),
            small_regime=~go_large,
        )
        if restarts == "ipop":
            fields["small_regime"] = jnp.zeros((), bool)
        # An exhausted restart budget freezes the finished run instead (unless it cycles).
        frozen = {k: getattr(state, k) for k in run if k != "mean_flat"}
        frozen["mean_flat"] = ravel(state.mean)
        for k in run:
            fields[k] = jnp.where(halt, frozen[k], fields[k])
        fields["popsize"] = jnp.where(halt, state.popsize, lam).astype(jnp.int32)
        return fields

    return Strategy(init, ask, tell, decode)


sep_cma_es = functools.partial(cma_es, separable=True)
sep_cma_es.__doc__ = "sep-CMA-ES (Ros & Hansen 2008): ``cma_es`` with a diagonal covariance matrix."

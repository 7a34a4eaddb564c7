"""CMA-ES: N. Hansen, "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772
(2016), as implemented in pycma; with active CMA (Jastrebski & Arnold 2006),
pycma's termination criteria, IPOP restarts (Auger & Hansen 2005) and BIPOP
restarts (Hansen 2009, "Benchmarking a BI-Population CMA-ES on the BBOB-2009
Function Testbed"), and the separable variant sep-CMA-ES (Ros & Hansen 2008, "A
Simple Modification in CMA-ES Achieving Linear Time and Space Complexity").

One generation, the tutorial's Figure 6 (maximising fitness F = -f):

    z_k ~ N(0, I);  y_k = C^{1/2} z_k;  x_k = m + sigma y_k             k = 1..lambda
    sort by F (best first);  <y>_w = sum_{i<=mu} w_i y_{i:lambda}
    m   <- m + c_m sigma <y>_w
    p_s <- (1 - c_s) p_s + sqrt(c_s (2 - c_s) mu_eff) C^{-1/2} <y>_w      (= ... <z>_w)
    p_c <- (1 - c_c) p_c + h_s sqrt(c_c (2 - c_c) mu_eff) <y>_w
    w°_i = w_i (1 if w_i >= 0 else n / |C^{-1/2} y_{i:lambda}|^2)
    C   <- (1 + c_1 delta(h_s) - c_1 - c_mu sum w_j) C + c_1 p_c p_c^T + c_mu sum_i w°_i y_i y_i^T
    sigma <- sigma exp(min(1, c_s / d_s (|p_s| / E|N(0,I)| - 1)))
    every 1 / ((c_1 + c_mu) n 10) generations:  C = B D^2 B^T,  C^{1/2} = B D B^T

``C^{1/2}`` is the symmetric square root, where the tutorial samples ``y = B D z``:
the same distribution, but a continuous function of C, so that a rounding
difference (e.g. the run compiled for 8 devices instead of 1) does not turn
degenerate eigenvectors and change the trajectory (:mod:`~neuroevo.strategies.cma_steps`).

The weights are the tutorial's: w'_i = ln((lambda+1)/2) - ln i for all lambda
members, the positive ones summing to one and the negative ones scaled so
that C stays positive definite (active CMA).

**Termination** (pycma's criteria and defaults, checked at every ``tell``,
each a boolean in ``state.termination``): ``tolfun``, ``tolfunhist``,
``tolx``, ``tolstagnation``, ``noeffectaxis``, ``noeffectcoord``,
``conditioncov``, ``tolupsigma``, ``flat_fitness``, plus ``numerics`` (an
update that would have produced a non-finite state is refused) and
``bipop_budget`` (a small-population BIPOP run has spent its budget).

The steps are module-level functions of :mod:`neuroevo.strategies.cma_steps` (each
tagged with its equation), the criteria are in
:mod:`neuroevo.strategies.cma_termination` and the restarts in
:mod:`neuroevo.strategies.cma_restarts`; ``tell`` below reads as the list above.

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
mean whose fitness is ignored; an evaluator may skip them: the strategy's
``live`` capability, :class:`neuroevo.strategy.Live`). Without restarts
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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.strategies import cma_restarts, cma_steps
from neuroevo.strategies.cma_restarts import Budgets, Policy, Regime
from neuroevo.strategies.cma_steps import Run, default_popsize, history_length, live_chunks, recombination
from neuroevo.strategies.cma_termination import CRITERIA, Termination, Thresholds, criteria, never
from neuroevo.strategy import (
    Live,
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

__all__ = [
    "CRITERIA",
    "CMAGenotype",
    "CMAState",
    "Termination",
    "cma_es",
    "default_popsize",
    "history_length",
    "live_chunks",
    "recombination",
    "sep_cma_es",
]


class CMAGenotype(NamedTuple):
    """One member: its point ``x = m + sigma C^{1/2} z`` and the standard-normal ``z`` it came from."""

    x: jax.Array
    z: jax.Array


class CMAState(NamedTuple):
    """A run (:class:`~neuroevo.strategies.cma_steps.Run`'s fields, ``mean`` like x0), the
    restarts' regime (:class:`~neuroevo.strategies.cma_restarts.Regime`), and the totals."""

    mean: PyTree
    sigma: jax.Array
    C: jax.Array  # [d, d] (full) or [d] (separable)
    B: jax.Array  # eigenvectors [d, d] (full) or a [0] placeholder (separable)
    D: jax.Array  # sqrt of C's eigenvalues (full) or of its diagonal (separable), [d]
    sqrt_C: jax.Array  # C^{1/2} = B D B^T [d, d] (full) or a [0] placeholder (separable)
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


def run_of(state: CMAState) -> Run:
    """The state's current run, its mean flat."""
    return Run(*[ravel(state.mean) if f == "mean" else getattr(state, f) for f in Run._fields])


def regime_of(state: CMAState) -> Regime:
    return Regime(*[getattr(state, f) for f in Regime._fields])


def assemble(state: CMAState, run: Run, regime: Regime, **totals) -> CMAState:
    """``state`` with ``run`` (its mean unravelled like the state's), ``regime`` and ``totals``."""
    fields = {**run._asdict(), **regime._asdict(), **totals}
    fields["mean"] = unravel_like(state.mean)(run.mean)
    return state._replace(**fields)


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

    With restarts the strategy offers the ``live`` capability
    (:class:`~neuroevo.strategy.Live`): its population's capacity is mostly dead.
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
    limits = Thresholds(tolfun, tolfunhist, tolx, tolupsigma, conditioncov, tolflatfitness, stagnation)
    policy = Policy(restarts, max_restarts, restart_box, cycle, sigma) if restarts else None

    def sizes(dim: int) -> tuple[int, int, int]:
        """(base popsize, static capacity, history length)."""
        base = popsize if popsize is not None else default_popsize(dim)
        return base, base * growth, history_length(dim, base)

    def init(key: jax.Array, x0: PyTree) -> CMAState:
        del key
        flat, unravel = check_x0(x0)
        dim, dtype = flat.shape[0], flat.dtype
        base, capacity, hist = sizes(dim)
        run = cma_steps.fresh_run(dim, hist, dtype, flat, sigma, base, separable)
        mean = unravel(run.mean)
        zero = jnp.zeros((), jnp.int32)
        return CMAState(
            **{**run._asdict(), "mean": mean},
            termination=never(),
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
    # ask: z_k ~ N(0, I), x_k = m + sigma B D z_k (eqs. (38)-(40))
    # ------------------------------------------------------------------ #

    def live_ask(key, state: CMAState, chunks, normals) -> tuple[CMAGenotype, CMAState]:
        """Sample the population; with restarts only the first ``chunks`` chunks of ``base``
        members (default: those holding the live ones), from ``normals`` when given."""
        m = ravel(state.mean)
        dim = m.shape[0]
        base, capacity, _ = sizes(dim)

        def draw(i, rows):
            if normals is not None:
                z = normals.astype(m.dtype)
                return jax.lax.dynamic_slice_in_dim(z, 0 if i is None else i * rows, rows)
            k = key if i is None else jax.random.fold_in(key, i)
            return jax.random.normal(k, (rows, dim), m.dtype)

        def sample(z):
            return cma_steps.sample(m, state.sigma, state.sqrt_C, state.D, z, separable)

        if capacity == base:
            zs = jnp.where((jnp.arange(capacity) < state.popsize)[:, None], draw(None, capacity), 0.0)
            return CMAGenotype(x=sample(zs), z=zs), state

        # Restarts: sample only the chunks of ``base`` members that are live; dead
        # members stay z = 0, x = m. The cost follows the live population.
        def chunk(i, zx):
            zs, x = zx
            live = (i * base + jnp.arange(base)) < state.popsize
            zi = jnp.where(live[:, None], draw(i, base), 0.0)
            at = i * base
            return (
                jax.lax.dynamic_update_slice_in_dim(zs, zi, at, axis=0),
                jax.lax.dynamic_update_slice_in_dim(x, sample(zi), at, axis=0),
            )

        zx0 = (jnp.zeros((capacity, dim), m.dtype), jnp.broadcast_to(m, (capacity, dim)))
        n_chunks = live_chunks(state.popsize, base) if chunks is None else chunks
        zs, x = jax.lax.fori_loop(0, n_chunks, chunk, zx0)
        return CMAGenotype(x=x, z=zs), state

    def ask(key: jax.Array, state: CMAState) -> tuple[CMAGenotype, CMAState]:
        return live_ask(key, state, None, None)

    def decode(state: CMAState, genotype: CMAGenotype) -> PyTree:
        return unravel_like(state.mean)(genotype.x)

    # ------------------------------------------------------------------ #
    # tell: the generation of the module docstring, then termination and restarts
    # ------------------------------------------------------------------ #

    def live_tell(key, state: CMAState, genotypes: CMAGenotype, fitness, chunks) -> CMAState:
        """Update the distribution (``chunks``: as in ``live_ask``)."""
        capacity = population_size(genotypes)
        fitness = check_fitness(fitness, capacity)
        now = run_of(state)
        dim, dtype = now.mean.shape[0], now.mean.dtype
        base, _, hist = sizes(dim)
        n = jnp.asarray(dim, dtype)
        lam = state.popsize
        t = state.run_generation + 1

        # Selection and recombination, eqs. (41)-(42), with the weights of Table 1.
        order, f, f_sorted = cma_steps.rank(fitness, lam, dtype)
        coef = recombination(lam, capacity, dim, separable, dtype)
        n_chunks = live_chunks(lam, base) if chunks is None else chunks
        y_w, z_w, rank_mu = cma_steps.weighted_sums(
            state.sqrt_C, state.D, genotypes.z, order, coef.weights, n_chunks, base, capacity, separable
        )
        mean = cma_steps.move_mean(now.mean, state.sigma, y_w)

        # Step-size control, eqs. (43)-(44), and the paths, eq. (45).
        p_sigma = cma_steps.step_size_path(state.p_sigma, coef, z_w)
        ps_norm = jnp.linalg.norm(p_sigma)
        h_sigma = cma_steps.stalled(ps_norm, coef, t, n)
        p_c = cma_steps.covariance_path(state.p_c, h_sigma, coef, y_w)

        # Covariance, eq. (47); step size, eq. (44) and pycma's flat-fitness escape.
        C = cma_steps.covariance(state.C, p_c, rank_mu, h_sigma, coef, separable)
        sigma = cma_steps.step_size(state.sigma, ps_norm, coef)
        sigma, flat_count = cma_steps.flat_fitness(sigma, f_sorted, lam, coef, state.flat_count)
        C, inflated = cma_steps.ulp_floor(C, mean, sigma, separable)
        C, B, D, sqrt_C, eigen_generation = cma_steps.lazy_decompose(
            C,
            state.B,
            state.D,
            state.sqrt_C,
            t,
            state.eigen_generation,
            coef,
            n,
            inflated,
            separable,
            eigen_gap,
        )

        # Histories for the termination criteria.
        slot = state.run_generation % hist
        improved = f_sorted[0] > state.run_best
        proposal = now._replace(
            mean=mean,
            sigma=sigma,
            C=C,
            B=B,
            D=D,
            sqrt_C=sqrt_C,
            p_sigma=p_sigma,
            p_c=p_c,
            run_generation=t,
            eigen_generation=eigen_generation,
            f_best_hist=state.f_best_hist.at[slot].set(f_sorted[0]),
            f_median_hist=state.f_median_hist.at[slot].set(f_sorted[lam // 2]),
            flat_count=flat_count,
            run_best=jnp.where(improved, f_sorted[0], state.run_best),
            run_best_generation=jnp.where(improved, t, state.run_best_generation),
            run_evaluations=state.run_evaluations + lam,
        )
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(v)) for v in (mean, sigma, C, B, D, p_sigma, p_c)]))
        finite &= (sigma > 0) & jnp.all(D > 0)
        regime = regime_of(state)
        small_budget = cma_restarts.small_budget_spent(restarts, regime, proposal.run_evaluations)
        term = criteria(proposal, f_sorted, lam, finite, small_budget, limits, separable)

        # The new run: keep it, freeze it (stopped or not finite), or restart.
        running = jax.tree_util.tree_map(
            lambda new, old: jnp.where(state.stop | ~finite, old, new), proposal, now
        )
        terminated = jnp.any(jnp.array(term)) & ~state.stop
        best_i = order[0]
        best_solution, best_fitness = update_best(
            state.best_solution, state.best_fitness, unravel_like(state.mean)(genotypes.x[best_i]), f[best_i]
        )
        small = state.small_regime
        totals = dict(
            evaluations=state.evaluations + jnp.where(state.stop, 0, lam),
            large_evaluations=state.large_evaluations + jnp.where(state.stop | small, 0, lam),
            small_evaluations=state.small_evaluations + jnp.where(~state.stop & small, lam, 0),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
        )
        kept = Termination(
            *[jnp.where(terminated, a, b) for a, b in zip(term, state.termination, strict=True)]
        )
        continued = regime._replace(termination=kept)
        if policy is None:
            continued = continued._replace(stop=state.stop | terminated)
            return assemble(state, running, continued, **totals)
        budgets = Budgets(large=state.large_evaluations, small=state.small_evaluations)
        restarted = cma_restarts.restart(
            key, policy, now, regime, budgets, state.x0, kept, base, hist, capacity, separable
        )
        chosen = jax.tree_util.tree_map(
            lambda a, b: jnp.where(terminated, a, b), restarted, (running, continued)
        )
        return assemble(state, *chosen, **totals)

    def tell(key, state: CMAState, genotypes: CMAGenotype, fitness, descriptors=None) -> CMAState:
        del descriptors
        return live_tell(key, state, genotypes, fitness, None)

    def chunk(state: CMAState) -> int:
        return sizes(sum(leaf.size for leaf in jax.tree_util.tree_leaves(state.mean)))[0]

    if restarts is None:  # every member is live
        return Strategy(init, ask, tell, decode)
    live = Live(count=lambda state: state.popsize, chunk=chunk, ask=live_ask, tell=live_tell)
    return Strategy(init, ask, tell, decode, live=live)


sep_cma_es = functools.partial(cma_es, separable=True)
sep_cma_es.__doc__ = "sep-CMA-ES (Ros & Hansen 2008): ``cma_es`` with a diagonal covariance matrix."

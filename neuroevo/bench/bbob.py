"""BBOB campaigns: a strategy on every (function, instance) of each dimension (``ne.bench``).

``bbob_campaign(strategy, dimensions, instances, functions, budget_multiplier, out)``
runs, per dimension, ONE compiled program in float64: the strategy is vmapped
over all (function, instance) problems of the dimension; the population of the
problems of function ``f`` is evaluated by ``f``'s evaluator vmapped over its
instances (instance data stacked as arguments), so all 24 functions share the
program without evaluating one another. Generations run on the device in
``lax.while_loop`` blocks; the host sees only the progress display and the
stop check between blocks.

Suites: ``suite="bbob"`` (f1-f24) or ``"bbob-noisy"`` (f101-f130, ``ne.bbob``'s
noisy functions): the strategy sees the noisy f - fopt (noise drawn from the
campaign's key), while the hits, targets and stop test use the noise-free value,
which COCO's ``bbob-noisy`` observer records (its "best noise-free fitness"
column; the measured columns hold the noisy values).

Protocol (COCO's): x0 is uniform in ``[-4, 4]^d`` per problem (seeded);
evaluations are counted in order over the live members of each generation (the
first ``state.popsize`` for CMA-ES, all members otherwise), so the evaluation
at which a target is first hit is exact. A problem ends when ``f - fopt <=
1e-8``, when its budget ``budget_multiplier * d`` is spent, or when its
strategy stops (CMA-ES: a run terminated and no restart is left). CMA-ES and
sep-CMA-ES restart with ``restarts="ipop"`` (default; ``"bipop"`` possible)
from a uniform point of ``[-4, 4]^d``; ``max_restarts`` defaults to the largest
``k`` with ``popsize * 2**k * 10 d <= budget`` (a larger population could not
run 10 d generations; the static population capacity is ``popsize * 2**k``);
when a problem's strategy stops (no restart left) with budget left, it begins
again from a fresh state (the first popsize, a new uniform x0), so every
problem runs until its target or budget. Other strategies run until the budget.

Cost: a generation samples, evaluates and recombines only the chunks of
``popsize`` members that some unfinished problem has live (CMA-ES's ``chunks``
argument; evaluation per function), not the whole capacity, and draws normals
only for the live members of unfinished problems (one pool per generation,
``live_normals``, handed to CMA-ES's ``ask`` as ``z``); the program of a
dimension ends when all its problems are done. On the CPU it is compiled with
``CPU_COMPILE_OPTIONS`` (about twice as fast to compile). On a Linux CPU with
several cores (``processes=None``, the default) each dimension compiles and runs
in its own process, all at once (one worker, forked from the caller when it has
started no JAX backend, forks them), the
largest at the highest priority, and each dimension's files are written as soon
as it is done; otherwise (a GPU, or ``processes=False``) the dimensions compile in
parallel threads and each runs as soon as it is compiled, one at a time.

Files written to ``out``:
- COCO's observer format (``bbobexp_f<F>.info``, its ``suite`` and ``logger`` the
  suite's name, ``data_f<F>/bbobexp_f<F>_DIM<D>.dat`` and ``.tdat``), which
  ``cocopp`` post-processes. The ``.dat`` holds a line at the first evaluation, at
  each first crossing of a ``10**(k/5)`` precision and at the last evaluation; the
  ``.tdat`` the best-so-far at COCO's fixed evaluation counts. Columns:
  evaluations, 0, best noise-free f - fopt, measured f, best measured f (no x).
- ``campaign.json`` (hits of the 51 targets ``1e2 .. 1e-8`` per problem),
  ``ert_d<D>.md`` / ``.csv`` (ERT for targets ``1e1 .. 1e-8``), ``ecdf_d<D>.png``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import rng
from neuroevo.bbob import NAMES, NOISY_NAMES, NoisyBBOBFunction, function
from neuroevo.bbob import noisy as noise_models

PRECISION = 1e-8
# .dat triggers: 10**(k/5) from 1e4 down to 1e-8 (COCO logs each first crossing)
LEVELS = 10.0 ** (np.arange(20, -41, -1) / 5.0)
ECDF_TARGETS = 10.0 ** (np.arange(10, -41, -1) / 5.0)  # 51 targets, 1e2 .. 1e-8
ERT_TARGETS = 10.0 ** np.arange(1, -9, -1.0)  # 1e1 .. 1e-8
_ECDF_IDX = np.arange(10, 61)  # ECDF_TARGETS[j] == LEVELS[10 + j]
_ERT_IDX = np.arange(15, 61, 5)  # ERT_TARGETS[j] == LEVELS[15 + 5 j]
CMA_LIKE = ("cma_es", "sep_cma_es")
SUITES = {"bbob": range(1, 25), "bbob-noisy": range(101, 131)}  # COCO's suite name -> function ids


def function_name(fid: int) -> str:
    return NAMES[fid] if fid in NAMES else NOISY_NAMES[fid]


def tdat_evaluations(dim: int, budget: int) -> np.ndarray:
    """COCO's fixed evaluation counts: floor(10**(i/20)) and dim * {1, 2, 5} * 10**k, up to budget."""
    a = np.unique(np.floor(10.0 ** (np.arange(0, 20 * math.log10(budget) + 2) / 20.0)).astype(np.int64))
    b = [dim * m * 10**k for k in range(12) for m in (1, 2, 5)]
    e = np.unique(np.concatenate([a, np.array(b, np.int64)]))
    return e[(e >= 1) & (e <= budget)]


def ert(evals_to_hit: np.ndarray, final_evals: np.ndarray) -> float:
    """ERT = (evaluations of all runs until they hit the target, or ended) / (runs that hit it)."""
    evals_to_hit, final_evals = np.asarray(evals_to_hit, float), np.asarray(final_evals, float)
    hit = np.isfinite(evals_to_hit)
    if not hit.any():
        return math.inf
    return float(np.where(hit, evals_to_hit, final_evals).sum() / hit.sum())


@dataclass
class DimensionResult:
    """One dimension of a campaign; arrays are per problem (functions x instances, in that order)."""

    dimension: int
    fids: np.ndarray
    instances: np.ndarray
    fopt: np.ndarray
    budget: int
    hit_evals: np.ndarray  # (P, len(LEVELS)) first evaluation with f - fopt <= level, inf if none
    hit_delta: np.ndarray  # (P, len(LEVELS)) f - fopt of that evaluation
    first_delta: np.ndarray  # (P,) f - fopt of evaluation 1
    final_evals: np.ndarray  # (P,)
    best_delta: np.ndarray  # (P,)
    tdat_evals: np.ndarray  # (K,)
    tdat_best: np.ndarray  # (P, K) best f - fopt after tdat_evals[k] evaluations (nan if not reached)
    seconds: float  # wall time of the dimension, compilation included
    generations: int
    compile_seconds: float = 0.0
    # bbob-noisy: the measured (noisy) f - fopt: at each hit, best so far at each hit,
    # at evaluation 1, best of the run, best so far at tdat_evals (None: as the noise-free)
    hit_measured: np.ndarray | None = None
    hit_best_measured: np.ndarray | None = None
    first_measured: np.ndarray | None = None
    best_measured: np.ndarray | None = None
    tdat_best_measured: np.ndarray | None = None

    def ert_table(self) -> dict[int, list[float]]:
        """fid -> ERT for each of ERT_TARGETS."""
        out = {}
        for fid in np.unique(self.fids):
            m = self.fids == fid
            out[int(fid)] = [ert(self.hit_evals[m, i], self.final_evals[m]) for i in _ERT_IDX]
        return out

    def ecdf_hits(self) -> np.ndarray:
        """(P, 51) evaluations to each of ECDF_TARGETS (inf if missed)."""
        return self.hit_evals[:, _ECDF_IDX]


@dataclass
class CampaignResult:
    strategy: str
    dimensions: dict[int, DimensionResult] = field(default_factory=dict)
    out: Path | None = None
    suite: str = "bbob"

    def solved(self, dimension: int | None = None) -> int:
        dims = [dimension] if dimension is not None else list(self.dimensions)
        return int(sum(np.isfinite(self.dimensions[d].hit_evals[:, -1]).sum() for d in dims))

    def problems(self) -> int:
        return int(sum(len(r.fids) for r in self.dimensions.values()))


# --------------------------------------------------------------------------- #
# input checks


def _ints(values: Iterable[int], what: str, low: int, high: int | None = None) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{what}: expected integers, got {v!r}")
        if v < low or (high is not None and v > high):
            rng = f"{low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"{what} must be {rng}, got {v}")
        out.append(int(v))
    if not out:
        raise ValueError(f"{what}: empty")
    return out


def parse_range(text: str, what: str = "value") -> list[int]:
    """'1-15', '2,3,5', '1-5,8' -> list of ints; bad syntax raises ValueError."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                lo, hi = part.split("-", 1) if not part.startswith("-") else (part, "")
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"bad {what} range {text!r}: use e.g. 1-15 or 2,3,5") from None
    return out


# --------------------------------------------------------------------------- #
# the compiled program of one dimension


def _default_popsize(dim: int) -> int:
    return 4 + int(3 * math.log(dim))


def min_generations(dim: int) -> int:
    """Generations a restart regime must be able to run within the budget to be useful: ``10 d``."""
    return 10 * dim


def default_max_restarts(budget: int, base: int, dim: int) -> int:
    """The largest k <= 9 with ``base * 2**k * min_generations(dim) <= budget`` (0 if none).

    A run of population ``base * 2**k`` must fit ``10 d`` generations in the
    budget; larger regimes could not even adapt their step size (and would only
    make every generation of the vmapped program cost more).
    """
    g = min_generations(dim)
    return max(0, min(9, int(math.floor(math.log2(max(budget / (g * base), 1))))))


def _build_strategy(name, dim, budget, hp):
    from neuroevo import strategies

    hp = dict(hp)
    if name in CMA_LIKE:
        hp.setdefault("restarts", "ipop")
        if hp["restarts"] is not None:
            hp.setdefault("restart_box", (-4.0, 4.0))
            hp.setdefault("cycle", True)  # no restart left, budget left: begin again
            base = hp.get("popsize") or _default_popsize(dim)
            hp.setdefault("max_restarts", default_max_restarts(budget, base, dim))
    elif hp.get("popsize") is None:
        hp["popsize"] = max(8, 2 * ((_default_popsize(dim) + 1) // 2))
    return strategies.make(name, **hp), hp


# XLA's CPU backend spends most of a campaign program's compilation in LLVM on its
# many small fusions; its older (non-MLIR) fusion emitters at LLVM optimisation
# level 1 compile it about twice as fast, for a run a few percent slower.
CPU_COMPILE_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_backend_optimization_level": 1}


def _compile_options() -> dict:
    return dict(CPU_COMPILE_OPTIONS) if jax.default_backend() == "cpu" else {}


def live_normals(key, counts, capacity, dim, dtype, block=2048):
    """(P, capacity, dim) standard normals: the first ``counts[p]`` rows of each problem drawn,
    the others zero.

    Only ``sum(counts)`` rows are drawn (in blocks of ``block`` rows, laid end to end
    and handed out by offset), not ``P * capacity``: a vmapped ``ask`` would draw the
    largest live population for every problem, finished ones included. The words come
    from ``strategy.hash_bits`` and the normals from ``strategy.normal_from_words``
    (float32, 2**-23 resolution), computed on flat arrays: XLA's CPU loops vectorise a
    flat array, not rows of ``dim`` (about three times slower for d = 10).
    """
    P = counts.shape[0]
    rows = -(-P * capacity // block) * block
    n_blocks = (jnp.sum(counts) + block - 1) // block
    size = block * dim

    def body(i, pool):
        z = rng.normal_from_words(rng.hash_bits(key, size, offset=i * size))
        return jax.lax.dynamic_update_slice_in_dim(pool, z, i * size, axis=0)

    pool = jax.lax.fori_loop(0, n_blocks, body, jnp.zeros((rows * dim,), jnp.float32)).reshape(rows, dim)
    j = jnp.arange(capacity)
    live = j[None, :] < counts[:, None]
    idx = jnp.where(live, (jnp.cumsum(counts) - counts)[:, None] + j[None, :], 0)
    return jnp.where(live[..., None], pool[idx].astype(dtype), 0.0)


def _evaluator(group):
    """``measure(key, xs, consts)``: f - fopt of the instances of one function, ``xs``
    (n_inst, m, d), ``consts`` the instances' data stacked. Noiseless functions return
    ``(f - fopt,)``; noisy ones (f101-f130) ``(measured, noise-free)``: the noise model's
    draws from ``key`` and the boundary penalty added (COCO records the noise-free value)."""
    f0 = group[0]
    core = f0.core if isinstance(f0, NoisyBBOBFunction) else f0
    def noise_free(xs, c):
        return jax.vmap(core.delta_with)(xs, c)

    if core is f0:
        return lambda key, xs, c: (noise_free(xs, c),)

    def measure(key, xs, c):
        g = noise_free(xs, c)
        draws = noise_models.sample_draws(key, f0.model, g.shape, g.dtype)
        pen = noise_models.penalty(xs)
        return noise_models.apply_model(g, f0.model, f0.params, draws) + pen, g + pen

    return measure


def _prepare(name, dim, fids, instances, budget, seed, hp, block):
    """Build and compile the program of one dimension; returns ``run(progress) -> DimensionResult``."""
    funcs = [[function(f, dim, i) for i in instances] for f in fids]
    n_inst = len(instances)
    P = len(fids) * n_inst
    strategy, used_hp = _build_strategy(name, dim, budget, hp)
    noisy = isinstance(funcs[0][0], NoisyBBOBFunction)
    cores = [[getattr(g, "core", g) for g in group] for group in funcs]
    consts = [
        jax.tree_util.tree_map(lambda *a: jnp.asarray(np.stack(a)), *[g.data(np.float64) for g in group])
        for group in cores
    ]
    evaluators = [_evaluator(group) for group in funcs]
    fopt = np.array([g.fopt for group in funcs for g in group])
    tdat_e = tdat_evaluations(dim, budget)
    levels = jnp.asarray(LEVELS)
    tdat_j = jnp.asarray(tdat_e)

    chunk = used_hp.get("popsize") or _default_popsize(dim)
    chunked = name in CMA_LIKE and used_hp.get("restarts") is not None
    capacity = chunk * 2 ** used_hp.get("max_restarts", 0) if chunked else None

    def evaluate_live(key, X, consts, need):
        """(measured, noise-free) f - fopt, inf where not computed. ``need`` (P,): members to
        evaluate per problem.

        The capacity of a restart strategy is mostly dead, and the functions are in
        different restart regimes: each function's instances evaluate only the
        chunks that one of them has live.
        """
        cap = X.shape[1]
        c = chunk if cap % chunk == 0 else cap
        parts = []
        for g, measure in enumerate(evaluators):
            xs = X[g * n_inst : (g + 1) * n_inst]

            def body(i, deltas, xs=xs, measure=measure, g=g):
                k = jax.random.fold_in(jax.random.fold_in(key, g), i) if noisy else None
                part = measure(k, jax.lax.dynamic_slice_in_dim(xs, i * c, c, axis=1), consts[g])
                return tuple(
                    jax.lax.dynamic_update_slice_in_dim(d, p, i * c, axis=1)
                    for d, p in zip(deltas, part, strict=True)
                )

            chunks = (jnp.max(need[g * n_inst : (g + 1) * n_inst]) + c - 1) // c
            empty = jnp.full(xs.shape[:2], jnp.inf, X.dtype)
            parts.append(jax.lax.fori_loop(0, chunks, body, (empty, empty) if noisy else (empty,)))
        measured = jnp.concatenate([p[0] for p in parts], axis=0)
        return measured, (jnp.concatenate([p[1] for p in parts], axis=0) if noisy else measured)

    def live_count(state, cap):
        pop = getattr(state, "popsize", None)
        return jnp.asarray(cap if pop is None else pop, jnp.int32)

    def generation(carry, consts):
        st, key, gen, ev, best, first, he, hd, tb, meas, done = carry
        key = jax.random.wrap_key_data(key)
        k_ask, k_tell = jax.random.split(jax.random.fold_in(key, gen))
        ask, tell = strategy.ask, strategy.tell
        if chunked:  # sample and recombine only the chunks some unfinished problem has live,
            # with normals drawn for the live members of unfinished problems only
            n_chunks = jnp.max(jnp.where(done, 0, (st.popsize + chunk - 1) // chunk))
            live = strategy.live
            tell = lambda k, s, g, f: live.tell(k, s, g, f, n_chunks)
            z = live_normals(k_ask, jnp.where(done, 0, st.popsize), capacity, dim, jnp.float64)
            ask = lambda k, s, z: live.ask(k, s, n_chunks, z)
            geno, st = jax.vmap(ask)(jax.random.split(k_ask, P), st, z)
        else:
            geno, st = jax.vmap(ask)(jax.random.split(k_ask, P), st)
        X = jax.vmap(lambda s, g: jax.vmap(strategy.decode, in_axes=(None, 0))(s, g))(st, geno)
        cap = X.shape[1]
        lam = jax.vmap(lambda s: live_count(s, cap))(st)
        # (P, cap) each, inf if not computed; the strategy sees the measured values
        measured, delta = evaluate_live(jax.random.fold_in(k_tell, 2), X, consts, jnp.where(done, 0, lam))
        n = jnp.where(done, 0, jnp.minimum(lam, budget - ev))  # counted evaluations
        idx = jnp.arange(cap)
        counted = idx[None, :] < n[:, None]
        d_c = jnp.where(counted, delta, jnp.inf)
        run_min = jax.lax.cummin(d_c, axis=1)  # nonincreasing along the members
        cum = jnp.minimum(run_min, best[:, None])
        # first crossing of each level: the number of members whose running min is above it
        firsti = jax.vmap(lambda r: jnp.searchsorted(-r, -levels, side="left"))(run_min)
        anyb = firsti < cap
        firsti = jnp.minimum(firsti, cap - 1)
        newhit = anyb & ~jnp.isfinite(he)
        he = jnp.where(newhit, (ev[:, None] + firsti + 1).astype(he.dtype), he)
        hd = jnp.where(newhit, jnp.take_along_axis(d_c, firsti, axis=1), hd)
        first = jnp.where((ev == 0) & (n > 0), d_c[:, 0], first)
        # best-so-far at the fixed evaluation counts
        j = tdat_j[None, :] - ev[:, None] - 1
        inside = (j >= 0) & (j < n[:, None])
        jc = jnp.clip(j, 0, cap - 1)
        tb = jnp.where(inside, jnp.take_along_axis(cum, jc, axis=1), tb)
        if noisy:  # the measured value at each hit, the best measured so far there and at tdat
            m_first, hm, hbm, tbm, best_m = meas
            m_c = jnp.where(counted, measured, jnp.inf)
            cum_m = jnp.minimum(jax.lax.cummin(m_c, axis=1), best_m[:, None])
            hm = jnp.where(newhit, jnp.take_along_axis(m_c, firsti, axis=1), hm)
            hbm = jnp.where(newhit, jnp.take_along_axis(cum_m, firsti, axis=1), hbm)
            m_first = jnp.where((ev == 0) & (n > 0), m_c[:, 0], m_first)
            tbm = jnp.where(inside, jnp.take_along_axis(cum_m, jc, axis=1), tbm)
            meas = (m_first, hm, hbm, tbm, jnp.minimum(best_m, jnp.min(m_c, axis=1)))
        best = jnp.minimum(best, jnp.min(d_c, axis=1))
        ev = ev + n
        fitness = jnp.where(idx[None, :] < lam[:, None], -measured, -jnp.inf)
        st = jax.vmap(tell)(jax.random.split(k_tell, P), st, geno, fitness)
        done = done | (ev >= budget) | (best <= PRECISION)
        stopped = None if used_hp.get("cycle") else getattr(st, "stop", None)
        if stopped is not None:  # no restart left but budget left: begin again from a fresh state
            again = stopped & ~done

            def begin_again(st):
                fresh = init(jax.random.fold_in(k_tell, 1))
                return jax.tree_util.tree_map(
                    lambda a, b: jnp.where(again.reshape(again.shape + (1,) * (a.ndim - 1)), a, b), fresh, st
                )

            # rare (a few problems, a few times a run): not merged into every generation
            st = jax.lax.cond(jnp.any(again), begin_again, lambda st: st, st)
        return (st, jax.random.key_data(key), gen + 1, ev, best, first, he, hd, tb, meas, done)

    @jax.jit
    def run_block(carry, consts, fresh):
        # the first call builds the initial carry (``carry`` is then zeros of its shapes): in
        # this program, not in a second compiled one (about 0.6 s of compilation saved)
        carry = jax.lax.cond(fresh, lambda _: initial_carry(seed), lambda c: c, carry)
        stop_at = carry[2] + block

        def cond(c):
            return (c[2] < stop_at) & ~jnp.all(c[-1])

        return jax.lax.while_loop(cond, lambda c: generation(c, consts), carry)

    def init(key):
        k0, k1 = jax.random.split(key)
        x0 = jax.random.uniform(k0, (P, dim), jnp.float64, -4.0, 4.0)
        return jax.vmap(strategy.init)(jax.random.split(k1, P), x0)

    def initial_carry(seed):
        key = jax.random.fold_in(jax.random.key(seed), dim)
        L, K = len(LEVELS), len(tdat_e)
        inf, nan = jnp.inf, jnp.nan
        measured = tuple(jnp.full(shape, v) for shape, v in [((P,), nan), ((P, L), nan), ((P, L), nan),
                                                             ((P, K), nan), ((P,), inf)])  # fmt: skip
        return (
            init(key),
            jax.random.key_data(jax.random.fold_in(key, 1)),
            jnp.zeros((), jnp.int32),
            jnp.zeros((P,), jnp.int32),
            jnp.full((P,), inf),
            jnp.full((P,), nan),
            jnp.full((P, L), inf),
            jnp.full((P, L), nan),
            jnp.full((P, K), nan),
            measured if noisy else (),
            jnp.zeros((P,), bool),
        )

    t0 = time.perf_counter()
    carry0 = jax.tree_util.tree_map(lambda a: np.zeros(a.shape, a.dtype), jax.eval_shape(initial_carry, seed))
    compiled = run_block.lower(carry0, consts, True).compile(compiler_options=_compile_options())
    compile_seconds = time.perf_counter() - t0

    def run(progress):
        meta = (dim, P, fids, instances, n_inst, fopt, budget, tdat_e, compile_seconds)
        return _loop(lambda c, fresh: compiled(c, consts, fresh), carry0, progress, *meta)

    return run


def _loop(step, carry, progress, dim, P, fids, instances, n_inst, fopt, budget, tdat_e, compile_s):
    t0 = time.perf_counter()
    fresh = True
    while True:
        carry, fresh = step(carry, fresh), False
        done = np.asarray(carry[-1])
        if progress is not None:
            progress(dim, int(carry[2]), int(done.sum()), P, int(np.asarray(carry[3]).sum()))
        if done.all():
            break
    seconds = time.perf_counter() - t0 + compile_s
    _, _, gen, ev, best, first, he, hd, tb, meas, _ = jax.device_get(carry)
    measured = dict(
        zip(
            ("first_measured", "hit_measured", "hit_best_measured", "tdat_best_measured", "best_measured"),
            (np.asarray(a, float) for a in meas),
            strict=False,
        )
    )
    return DimensionResult(
        dimension=dim,
        fids=np.repeat(np.asarray(fids), n_inst),
        instances=np.tile(np.asarray(instances), len(fids)),
        fopt=fopt,
        budget=budget,
        hit_evals=np.asarray(he, float),
        hit_delta=np.asarray(hd, float),
        first_delta=np.asarray(first, float),
        final_evals=np.asarray(ev, np.int64),
        best_delta=np.asarray(best, float),
        tdat_evals=tdat_e,
        tdat_best=np.asarray(tb, float),
        seconds=seconds,
        generations=int(gen),
        compile_seconds=compile_s,
        **measured,
    )


# --------------------------------------------------------------------------- #
# public


def bbob_campaign(
    strategy: str = "cma_es",
    dimensions: Sequence[int] = (2, 3, 5),
    instances: Iterable[int] = range(1, 16),
    functions: Iterable[int] | None = None,
    budget_multiplier: float = 1000,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    block: int = 100,
    suite: str = "bbob",
    processes: bool | None = None,
    **hyperparameters,
) -> CampaignResult:
    """Run ``strategy`` on every (function, instance) of each dimension; write COCO data and a summary.

    ``suite``: ``"bbob"`` (functions 1-24) or ``"bbob-noisy"`` (101-130: the strategy
    sees the noisy values, the records and targets use the noise-free ones, as COCO's);
    ``functions`` defaults to all of the suite's. ``processes``: one process per
    dimension (None: on Linux when the backend is the CPU and there are several cores
    and several dimensions; the results are the same either way). Returns a :class:`CampaignResult`
    (``result.dimensions[d].hit_evals``: the evaluation at which each problem first
    reached each of ``LEVELS``). With ``out`` set, writes the COCO files,
    ``campaign.json``, ERT tables and ECDF plots there (see the module docstring).
    """
    from neuroevo import strategies

    if strategy not in strategies.names():
        raise ValueError(f"unknown strategy {strategy!r}; valid names: {strategies.names()}")
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; valid suites: {list(SUITES)}")
    fids = SUITES[suite]
    dimensions = _ints(dimensions, "dimension", 2)
    instances = _ints(instances, "instance", 1)
    functions = _ints(fids if functions is None else functions, f"{suite} function id", fids[0], fids[-1])
    if not budget_multiplier > 0:
        raise ValueError(f"budget_multiplier must be > 0, got {budget_multiplier!r}")
    result = CampaignResult(strategy=strategy, out=Path(out) if out is not None else None, suite=suite)
    jobs = {
        dim: (
            strategy,
            dim,
            functions,
            instances,
            max(1, int(budget_multiplier * dim)),
            seed,
            hyperparameters,
            block,
        )
        for dim in dimensions
    }
    for job in jobs.values():  # bad hyperparameters raise here, before any process starts
        _build_strategy(job[0], job[1], job[4], hyperparameters)
    if processes is None:  # several CPU cores and dimensions (on Linux): one process each
        linux = hasattr(os, "sched_getaffinity") and hasattr(os, "fork")
        cores = len(os.sched_getaffinity(0)) if linux else 1
        processes = linux and len(jobs) > 1 and cores > 1 and _cpu_backend()
    elif processes and not hasattr(os, "sched_getaffinity"):
        raise ValueError("processes=True needs Linux (os.fork and CPU affinity); use processes=False")

    def finished(r: DimensionResult) -> None:  # a dimension's files, while the others still run
        write_dimension(strategy, r, out)

    with _Progress(progress, sorted(dimensions)) as bar:
        run = _in_processes if processes else _in_threads
        done = run(jobs, bar.update, finished if out is not None else None)
    for dim in dimensions:
        result.dimensions[dim] = done[dim]
    if out is not None:
        write_index(result, out, hyperparameters)
    return result


def _in_threads(jobs: dict, progress, finished) -> dict:
    """Compile every dimension's program at once (XLA compiles on several cores) and run each
    as soon as it is compiled, one after the other (concurrent executions of XLA CPU programs
    can deadlock), the smallest dimension first: it compiles first."""

    def prepare(dim):
        with jax.enable_x64(True):
            return _prepare(*jobs[dim])

    order = sorted(jobs)
    out = {}
    with jax.enable_x64(True), ThreadPoolExecutor(max_workers=len(order)) as pool:
        runners = {dim: pool.submit(prepare, dim) for dim in order}
        for dim in order:
            out[dim] = runners[dim].result()(progress)
            if finished is not None:
                finished(out[dim])
    return out


# JAX settings a worker process takes from its parent
_WORKER_CONFIG = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs", "jax_platforms")
NICE = 5  # the priority the smaller dimensions' processes yield to the largest


def _backend_started() -> bool:
    """Whether this process has started a JAX backend (which has threads: no fork then)."""
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # another JAX: assume started
        return True


def _cpu_backend() -> bool:
    """Whether JAX's default backend is (or will be) the CPU, without starting a backend
    when none is started yet (so that the campaign's worker can still be forked)."""
    if _backend_started():
        return jax.default_backend() == "cpu"
    platforms = jax.config.jax_platforms
    if platforms:
        return all(p.strip() == "cpu" for p in platforms.split(","))
    try:
        import importlib.util

        from jax._src import xla_bridge

        xla_bridge._discover_and_register_pjrt_plugins()
        accelerators = set(xla_bridge._backend_factories) - {"cpu", "tpu"}  # tpu's is always there
        return not accelerators and importlib.util.find_spec("libtpu") is None
    except (ImportError, AttributeError):
        return jax.default_backend() == "cpu"


class _Forked:
    """The campaign's worker forked from this process (JAX imported, no backend started):
    no interpreter start and no second import of JAX, about 0.6 s saved."""

    def __init__(self, batch, tmp, err):
        from neuroevo.bench import _bbob_worker

        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the worker: its own process group (killed as one), then serve
            code = 1
            try:
                os.setsid()
                os.close(read)
                code = _bbob_worker.serve(batch, tmp, write, err.fileno())
            finally:
                os._exit(code)
        os.close(write)
        self.stdout = os.fdopen(read, "rb")
        self.code = None

    def poll(self):
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self):
        if self.code is None:
            self.code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.code


def _in_processes(jobs: dict, progress, finished) -> dict:
    """Each dimension in its own process, all at once (``neuroevo.bench._bbob_worker``).

    On a CPU a campaign program runs mostly on one core, and tracing holds Python's
    lock: separate processes compile and run the dimensions side by side on every
    core. One worker forks a process per dimension; the worker is forked from this
    process when it has not started a JAX backend (no JAX thread to fork), else it is
    a new interpreter that imports JAX. The largest dimension (the longest run)
    keeps the normal priority; the others yield to it (``nice``), so that it is not
    the last to finish. With as many processes as cores, each starts XLA with one
    thread (its spare threads would only spin).
    """
    import pickle
    import signal
    import subprocess
    import sys
    import tempfile
    import threading

    config = {k: getattr(jax.config, k) for k in _WORKER_CONFIG if getattr(jax.config, k, None) is not None}
    order = sorted(jobs, reverse=True)
    one_thread = len(jobs) >= len(os.sched_getaffinity(0))
    batch = [
        {"args": jobs[dim], "config": config, "nice": 0 if rank == 0 else NICE, "one_thread": one_thread}
        for rank, dim in enumerate(order)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "stderr"), "wb") as err:  # a file, not a pipe: it cannot fill up
            if not _backend_started():
                p = _Forked(batch, tmp, err)
            else:
                package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                path = os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))
                p = subprocess.Popen(
                    [sys.executable, "-m", "neuroevo.bench._bbob_worker", tmp],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                    env=dict(os.environ, PYTHONPATH=path), start_new_session=True,
                )  # fmt: skip
                p.stdin.write(pickle.dumps(batch))
                p.stdin.close()
        if finished is not None:  # the first plot's import, while the dimensions compile
            threading.Thread(target=_import_pyplot, daemon=True).start()
        try:
            out = {}
            with p.stdout:
                for line in p.stdout:
                    fields = line.split()
                    if len(fields) == 6 and fields[0] == b"progress":
                        progress(*map(int, fields[1:]))
                    elif len(fields) == 2 and fields[0] == b"done":
                        dim = int(fields[1])
                        with open(os.path.join(tmp, f"d{dim}.pkl"), "rb") as f:
                            out[dim] = pickle.load(f)
                        if finished is not None:
                            finished(out[dim])
            code = p.wait()
        finally:
            if p.poll() is None:  # an error or Ctrl-C here: stop the worker and its children
                os.killpg(p.pid, signal.SIGKILL)  # its own process group
                p.wait()
        if code != 0:
            with open(os.path.join(tmp, "stderr"), errors="replace") as f:
                tail = "\n".join(f.read().strip().splitlines()[-30:])
            raise RuntimeError(f"bbob campaign: a dimension's process failed:\n{tail}")
    return out


class _Progress:
    def __init__(self, enabled, dimensions):
        self.enabled, self.dimensions, self.tasks = enabled, dimensions, {}

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            )  # fmt: skip
            self.bar.__enter__()
        return self

    def update(self, dim, gen, done, total, evals):
        if not self.enabled:
            return
        if dim not in self.tasks:
            self.tasks[dim] = self.bar.add_task(f"bbob d={dim} problems done", total=total, info="")
        self.bar.update(self.tasks[dim], completed=done, info=f"generation {gen}, {evals:,} evaluations")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False


# --------------------------------------------------------------------------- #
# writers


def _line(e, best, fopt, f, f_best):
    """A .dat/.tdat line: evaluations, 0, best noise-free f - fopt, measured f, best measured f."""
    return f"{int(e)} 0 {best:+.9e} {f + fopt:+.9e} {f_best + fopt:+.9e}\n"


def _write_run(dat, tdat, r: DimensionResult, p: int) -> None:
    """Problem ``p``'s lines: .dat at evaluation 1, at each first crossing of LEVELS and at
    the last evaluation; .tdat at ``r.tdat_evals``. Noiseless: measured = noise-free."""
    fopt, last = r.fopt[p], int(r.final_evals[p])
    noisy = r.hit_measured is not None
    head = (
        "% f evaluations | g evaluations | best noise-free fitness - Fopt "
        f"({fopt:.12e}) + sum g_i+ | measured fitness "
        "| best measured fitness or single-digit g-values\n"
    )
    dat.write(head)
    tdat.write(head)
    m_first = r.first_measured[p] if noisy else r.first_delta[p]
    events = {1: (r.first_delta[p], m_first, m_first)}  # e -> (noise-free, measured, best measured)
    for k in np.flatnonzero(np.isfinite(r.hit_evals[p])):  # levels crossed at one evaluation: one member
        hit = (r.hit_delta[p, k], r.hit_measured[p, k], r.hit_best_measured[p, k]) if noisy else None
        events[int(r.hit_evals[p, k])] = hit or (r.hit_delta[p, k],) * 3
    best = best_m = np.inf
    for e in sorted(events):
        v, m, bm = events[e]
        best, best_m = min(best, v), min(best_m, bm if noisy else v)
        dat.write(_line(e, best, fopt, m, best_m))
    final_m = r.best_measured[p] if noisy else r.best_delta[p]
    if last not in events:
        dat.write(_line(last, r.best_delta[p], fopt, final_m, final_m))
    tb_m = r.tdat_best_measured[p] if noisy else r.tdat_best[p]
    for e, v, m in zip(r.tdat_evals, r.tdat_best[p], tb_m, strict=True):
        if e <= last and np.isfinite(v):
            tdat.write(_line(e, v, fopt, m, m))
    if last not in set(int(e) for e in r.tdat_evals):
        tdat.write(_line(last, r.best_delta[p], fopt, final_m, final_m))


def write(result: CampaignResult, out: str | Path, hyperparameters: dict | None = None) -> None:
    """COCO data, campaign.json, ERT tables and ECDF plots of ``result`` in ``out``."""
    for r in result.dimensions.values():
        write_dimension(result.strategy, r, out)
    write_index(result, out, hyperparameters)


def write_dimension(strategy: str, r: DimensionResult, out: str | Path) -> None:
    """One dimension's files: its ``.dat``/``.tdat`` data, ERT tables and ECDF plot (a campaign
    writes each dimension as soon as it is done, while the others still run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dim = r.dimension
    for fid in np.unique(r.fids):
        rel = _data_path(int(fid), dim)
        (out / rel).parent.mkdir(exist_ok=True)
        with open(out / f"{rel}.dat", "w") as dat, open(out / f"{rel}.tdat", "w") as tdat:
            for p in np.flatnonzero(r.fids == fid):
                _write_run(dat, tdat, r, p)
    table = r.ert_table()
    heads = [f"1e{int(round(math.log10(t)))}" for t in ERT_TARGETS]
    md = [
        f"ERT ({strategy}, dimension {dim}, budget {r.budget}, instances {len(np.unique(r.instances))})",
        "",
    ]
    md.append("| f | name | " + " | ".join(heads) + " | solved |")
    md.append("|---" * (len(heads) + 3) + "|")
    csv = ["fid," + ",".join(heads) + ",solved,runs"]
    for fid, erts in table.items():
        m = r.fids == fid
        solved = int(np.isfinite(r.hit_evals[m, -1]).sum())
        cells = [f"{v:.3g}" if np.isfinite(v) else "inf" for v in erts]
        md.append(f"| {fid} | {function_name(fid)} | " + " | ".join(cells) + f" | {solved}/{int(m.sum())} |")
        csv.append(f"{fid}," + ",".join(cells) + f",{solved},{int(m.sum())}")
    (out / f"ert_d{dim}.md").write_text("\n".join(md) + "\n")
    (out / f"ert_d{dim}.csv").write_text("\n".join(csv) + "\n")
    label = f"{strategy} ({out.name})"
    _ecdf_figure([(label, _summary(r))], dim, [_suite_of(r)], out / f"ecdf_d{dim}.png")


def write_index(result: CampaignResult, out: str | Path, hyperparameters: dict | None = None) -> None:
    """The ``.info`` files (one per function, a block per dimension) and ``campaign.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    alg = result.strategy
    info: dict[int, list[str]] = {}
    for dim, r in result.dimensions.items():
        for fid in np.unique(r.fids):
            fid = int(fid)
            rows = np.flatnonzero(r.fids == fid)
            runs = ", ".join(
                f"{int(r.instances[p])}:{int(r.final_evals[p])}|{r.best_delta[p]:.1e}" for p in rows
            )
            info.setdefault(fid, []).append(
                f"suite = '{result.suite}', funcId = {fid}, DIM = {dim}, Precision = 1.000e-08, "
                f"algId = '{alg}', coco_version = 'neuroevo', logger = '{result.suite}', "
                "data_format = 'bbob-new2'\n"
                f"% neuroevo {alg} {json.dumps(hyperparameters or {}, default=str)}\n"
                f"{_data_path(fid, dim)}.dat, {runs}\n"
            )
    for fid, blocks in info.items():
        (out / f"bbobexp_f{fid}.info").write_text("".join(blocks))
    summary = {
        "strategy": alg,
        "suite": result.suite,
        "hyperparameters": {k: str(v) for k, v in (hyperparameters or {}).items()},
        "dimensions": {str(d): _summary(r) for d, r in result.dimensions.items()},
    }
    (out / "campaign.json").write_text(json.dumps(summary))


def _data_path(fid: int, dim: int) -> str:
    return f"data_f{fid}/bbobexp_f{fid}_DIM{dim}"


def _suite_of(r: DimensionResult) -> str:
    return "bbob-noisy" if int(r.fids[0]) in SUITES["bbob-noisy"] else "bbob"


def _summary(r: DimensionResult) -> dict:
    """A dimension's entry of campaign.json."""
    return {
        "fids": r.fids.tolist(),
        "instances": r.instances.tolist(),
        "budget": r.budget,
        "final_evals": r.final_evals.tolist(),
        "best_delta": r.best_delta.tolist(),
        "ecdf_hits": [[None if not np.isfinite(v) else int(v) for v in row] for row in r.ecdf_hits()],
        "seconds": r.seconds,
    }


def _load(directory: Path) -> dict:
    path = Path(directory) / "campaign.json"
    if not path.exists():
        raise ValueError(f"{directory}: no campaign.json (not a neuroevo bbob campaign directory)")
    return json.loads(path.read_text())


def plot_ecdf(directories: Sequence[str | Path], out: str | Path, dimension: int | None = None) -> list[Path]:
    """ECDF of (problem, target) pairs reached vs log10(evaluations / d), one curve per campaign.

    With ``dimension`` None, one PNG per dimension found (``out`` is then a
    directory, or a file name that gets ``_d<D>`` inserted). Returns the paths.
    """
    runs = [_load(d) for d in directories]
    dims = [dimension] if dimension is not None else sorted({int(d) for r in runs for d in r["dimensions"]})
    out = Path(out)
    suites = sorted({run.get("suite", "bbob") for run in runs})
    written = []
    for dim in dims:
        curves = [
            (f"{run['strategy']} ({Path(directory).name})", run["dimensions"][str(dim)])
            for directory, run in zip(directories, runs, strict=True)
            if str(dim) in run["dimensions"]
        ]
        if dimension is not None:
            path = out
        elif out.suffix == ".png":
            path = out.with_name(f"{out.stem}_d{dim}.png")
        else:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"ecdf_d{dim}.png"
        _ecdf_figure(curves, dim, suites, path)
        written.append(path)
    return written


def _import_pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ecdf_figure(curves: list[tuple[str, dict]], dim: int, suites: list[str], path: Path) -> None:
    """One ECDF plot: ``curves`` are (label, a dimension's campaign.json entry)."""
    plt = _import_pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, rd in curves:
        hits = np.array([[np.inf if v is None else v for v in row] for row in rd["ecdf_hits"]], float)
        x = np.log10(np.sort(hits[np.isfinite(hits)]) / dim)
        y = np.arange(1, x.size + 1) / hits.size
        xmax = math.log10(rd["budget"] / dim)
        ax.step(np.concatenate([[0], x, [xmax]]), np.concatenate([[0], y, [y[-1] if y.size else 0]]),
                where="post", label=label)  # fmt: skip
    ax.set_xlabel("log10(evaluations / dimension)")
    ax.set_ylabel("fraction of (function, target) pairs")
    ax.set_ylim(0, 1)
    ax.set_title(f"{', '.join(suites)}, dimension {dim}, 51 targets 1e2..1e-8")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.subplots_adjust(
        left=0.11, right=0.97, bottom=0.12, top=0.91
    )  # tight_layout's, without its extra draw
    fig.savefig(path, dpi=100)
    plt.close(fig)

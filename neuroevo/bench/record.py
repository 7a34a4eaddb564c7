"""The on-device COCO record of a BBOB campaign: per problem, what COCO's observer logs.

Evaluations are counted in order over the live members of each generation, so the
evaluation at which a target is first reached is exact. One :func:`update` per
generation: the counted evaluations' noise-free ``f - fopt`` (and, on
``bbob-noisy``, the measured values) go into the first crossings of ``LEVELS``,
the best-so-far at COCO's ``.tdat`` evaluation counts, and the budget and target
tests that end a problem.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo.bench.results import PRECISION

Array = jax.Array


class Measured(NamedTuple):
    """bbob-noisy: the measured (noisy) ``f - fopt`` (the record's other fields are noise-free)."""

    first: Array  # (P,) at evaluation 1
    hit: Array  # (P, L) at each level's first crossing
    hit_best: Array  # (P, L) best so far at each crossing
    tdat_best: Array  # (P, K) best so far at the .tdat evaluation counts
    best: Array  # (P,) best of the run


class Record(NamedTuple):
    """Per problem (P of them): COCO's bookkeeping, in noise-free ``f - fopt``."""

    evaluations: Array  # (P,) int32: counted so far
    best: Array  # (P,) best so far
    first: Array  # (P,) at evaluation 1
    hit_evals: Array  # (P, L) first evaluation with f - fopt <= LEVELS[l], inf if none yet
    hit_delta: Array  # (P, L) f - fopt of that evaluation
    tdat_best: Array  # (P, K) best so far after tdat_evals[k] evaluations, nan until reached
    measured: Measured | tuple  # bbob-noisy only, else ()
    done: Array  # (P,) bool: target reached or budget spent
    generations: Array  # int32: generations run


def start(problems: int, levels: int, tdat: int, noisy: bool) -> Record:
    """The record before the first evaluation."""
    inf, nan = jnp.inf, jnp.nan
    measured = ()
    if noisy:
        measured = Measured(
            first=jnp.full((problems,), nan),
            hit=jnp.full((problems, levels), nan),
            hit_best=jnp.full((problems, levels), nan),
            tdat_best=jnp.full((problems, tdat), nan),
            best=jnp.full((problems,), inf),
        )
    return Record(
        evaluations=jnp.zeros((problems,), jnp.int32),
        best=jnp.full((problems,), inf),
        first=jnp.full((problems,), nan),
        hit_evals=jnp.full((problems, levels), inf),
        hit_delta=jnp.full((problems, levels), nan),
        tdat_best=jnp.full((problems, tdat), nan),
        measured=measured,
        done=jnp.zeros((problems,), bool),
        generations=jnp.zeros((), jnp.int32),
    )


def update(
    record: Record,
    delta: Array,
    measured: Array,
    live: Array,
    budget: int,
    levels: np.ndarray,
    tdat_evals: np.ndarray,
) -> Record:
    """The record after one generation.

    Args:
      delta: (P, capacity) noise-free ``f - fopt`` of the members (inf where not computed).
      measured: (P, capacity) the measured values (``delta`` on the noiseless suite).
      live: (P,) members evaluated per problem (0 for a problem that is done): the
        first ``min(live, budget - evaluations)`` of them are counted.
    """
    ev, cap = record.evaluations, delta.shape[1]
    n = jnp.minimum(live, budget - ev)  # counted evaluations
    counted = jnp.arange(cap)[None, :] < n[:, None]
    d_c = jnp.where(counted, delta, jnp.inf)
    run_min = jax.lax.cummin(d_c, axis=1)  # nonincreasing along the members
    cum = jnp.minimum(run_min, record.best[:, None])
    # first crossing of each level: the number of members whose running min is above it
    firsti = jax.vmap(lambda r: jnp.searchsorted(-r, -jnp.asarray(levels), side="left"))(run_min)
    anyb = firsti < cap
    firsti = jnp.minimum(firsti, cap - 1)
    newhit = anyb & ~jnp.isfinite(record.hit_evals)
    hit_evals = jnp.where(newhit, (ev[:, None] + firsti + 1).astype(record.hit_evals.dtype), record.hit_evals)
    hit_delta = jnp.where(newhit, jnp.take_along_axis(d_c, firsti, axis=1), record.hit_delta)
    first = jnp.where((ev == 0) & (n > 0), d_c[:, 0], record.first)
    # best-so-far at the fixed evaluation counts
    j = jnp.asarray(tdat_evals)[None, :] - ev[:, None] - 1
    inside = (j >= 0) & (j < n[:, None])
    jc = jnp.clip(j, 0, cap - 1)
    tdat_best = jnp.where(inside, jnp.take_along_axis(cum, jc, axis=1), record.tdat_best)
    noisy = record.measured
    if noisy:  # the measured value at each hit, the best measured so far there and at tdat
        m_c = jnp.where(counted, measured, jnp.inf)
        cum_m = jnp.minimum(jax.lax.cummin(m_c, axis=1), noisy.best[:, None])
        noisy = Measured(
            first=jnp.where((ev == 0) & (n > 0), m_c[:, 0], noisy.first),
            hit=jnp.where(newhit, jnp.take_along_axis(m_c, firsti, axis=1), noisy.hit),
            hit_best=jnp.where(newhit, jnp.take_along_axis(cum_m, firsti, axis=1), noisy.hit_best),
            tdat_best=jnp.where(inside, jnp.take_along_axis(cum_m, jc, axis=1), noisy.tdat_best),
            best=jnp.minimum(noisy.best, jnp.min(m_c, axis=1)),
        )
    best = jnp.minimum(record.best, jnp.min(d_c, axis=1))
    ev = ev + n
    return Record(
        evaluations=ev,
        best=best,
        first=first,
        hit_evals=hit_evals,
        hit_delta=hit_delta,
        tdat_best=tdat_best,
        measured=noisy,
        done=record.done | (ev >= budget) | (best <= PRECISION),
        generations=record.generations + 1,
    )

"""CMA-ES's termination criteria: pycma's (``cma.evolution_strategy``, version 4.5), with its
defaults, checked at every ``tell`` on the proposed state, one boolean each.

``noeffectaxis`` and ``noeffectcoord`` apply in float64 only: in float32 they fire long
before the optimum is resolved (f - f* ~ 1e-6 on an ill-conditioned function) while whole
steps still move; there CMA-ES's one-ulp floor keeps the search alive instead.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.sorting import median
from neuroevo.strategies.cma_steps import Run

Array = jax.Array

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
Termination.__doc__ = "Why a run stopped: one boolean per criterion of ``CRITERIA``."


class Thresholds(NamedTuple):
    """pycma's termination thresholds (``cma_es``'s arguments of the same names)."""

    tolfun: float = 1e-11
    tolfunhist: float = 1e-12
    tolx: float = 1e-11
    tolupsigma: float = 1e20
    conditioncov: float = 1e14
    tolflatfitness: int = 1
    stagnation: bool = True


def never() -> Termination:
    """No criterion has fired."""
    return Termination(*[jnp.zeros((), bool) for _ in CRITERIA])


def criteria(
    new: Run,
    f_sorted: Array,
    lam: Array,
    finite: Array,
    small_budget: Array,
    limits: Thresholds,
    separable: bool,
) -> Termination:
    """pycma's criteria on the proposed run ``new`` (its ``sigma0`` the run's).

    ``f_sorted``: this generation's fitness, best first; ``finite``: whether the update
    was finite; ``small_budget``: whether a small-population BIPOP run has spent its budget.
    """
    dim, dtype = new.mean.shape[0], new.mean.dtype
    t = new.run_generation
    hist = new.f_best_hist.shape[0]
    lam_f = lam.astype(dtype)
    sigma = new.sigma
    diag_c = new.C if separable else jnp.diagonal(new.C)
    m = new.mean
    eig = new.D**2

    def window(buffer, start_age, length):
        """Entries of age start_age .. start_age+length-1 (age 0 = this generation)."""
        ages = start_age + jnp.arange(length)
        return buffer[(t - 1 - ages) % hist]

    # tolfun / tolfunhist: over the last 10 + 30 n / lambda generations' best values.
    span = 10 + jnp.ceil(30 * dim / lam_f).astype(jnp.int32)
    ages = jnp.arange(hist)
    in_span = (ages < span) & (ages < t)
    recent = new.f_best_hist[(t - 1 - ages) % hist]
    hist_range = jnp.max(jnp.where(in_span, recent, -jnp.inf)) - jnp.min(jnp.where(in_span, recent, jnp.inf))
    full = t >= span
    live_range = f_sorted[0] - f_sorted[lam - 1]
    tolfun = full & (live_range < limits.tolfun) & (hist_range < limits.tolfun)
    tolfunhist = full & (hist_range < limits.tolfunhist)

    # tolx: all of sigma * p_c and sigma * sqrt(diag C) below tolx.
    tolx = jnp.all(sigma * jnp.abs(new.p_c) < limits.tolx) & jnp.all(sigma * jnp.sqrt(diag_c) < limits.tolx)

    # tolstagnation: the medians of the last 20 best and median values are no
    # better than 20 generations' worth tolstagnation generations ago.
    stag = (100 + 100 * dim**1.5 / lam_f).astype(jnp.int32)
    windows = [window(h, age, 20) for age in (stag - 20, 0) for h in (new.f_best_hist, new.f_median_hist)]
    old_best, old_median, new_best, new_median = median(jnp.stack(windows))  # one sort
    tolstagnation = (
        jnp.asarray(limits.stagnation)
        & (t > stag)
        & (t - new.run_best_generation > stag // 2)  # the best is older than half the window
        & (t.astype(dtype) > dim * (5 + 100 / lam_f))
        & (new_best <= old_best)
        & (new_median <= old_median)
    )

    # noeffectaxis: a tenth of a standard deviation along axis t mod n leaves m unchanged.
    i = t % dim
    if separable:
        axis = jnp.zeros((dim,), dtype).at[i].set(new.D[i])
    else:
        axis = new.B[:, i] * new.D[i]
    # noeffectcoord: a fifth of a standard deviation in some coordinate leaves it unchanged.
    precise = jnp.finfo(dtype).bits >= 64
    noeffectaxis = jnp.all(m == m + 0.1 * sigma * axis) & precise
    noeffectcoord = jnp.any(m == m + 0.2 * sigma * jnp.sqrt(diag_c)) & precise
    return Termination(
        tolfun=tolfun,
        tolfunhist=tolfunhist,
        tolx=tolx,
        tolstagnation=tolstagnation,
        noeffectaxis=noeffectaxis,
        noeffectcoord=noeffectcoord,
        conditioncov=jnp.max(eig) > limits.conditioncov * jnp.min(eig),
        tolupsigma=sigma / jnp.sqrt(jnp.max(eig)) > new.sigma0 * limits.tolupsigma,
        flat_fitness=new.flat_count > limits.tolflatfitness,
        numerics=~finite,
        bipop_budget=small_budget,
    )

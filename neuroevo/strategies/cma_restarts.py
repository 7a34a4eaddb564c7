"""CMA-ES restarts as state transitions: IPOP (Auger & Hansen 2005, "A Restart CMA Evolution
Strategy With Increasing Population Size") and BIPOP (Hansen 2009, "Benchmarking a
BI-Population CMA-ES on the BBOB-2009 Function Testbed").

When a run terminates, IPOP restarts with twice the population; BIPOP alternates between
that large regime and small-population runs with a random smaller step size, choosing the
regime that has spent fewer evaluations (a small run ends when it has spent half the last
large run's evaluations: the ``bipop_budget`` criterion). The population has the static
capacity ``base * 2**max_restarts``; ``Run.popsize`` members of it are live.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.strategies.cma_steps import Run, fresh_run
from neuroevo.strategies.cma_termination import Termination

Array = jax.Array


class Policy(NamedTuple):
    """How to restart (``cma_es``'s arguments of the same names)."""

    kind: str  # "ipop" or "bipop"
    max_restarts: int
    restart_box: tuple[float, float] | None
    cycle: bool
    sigma: float  # the first run's step size (traceable)


class Regime(NamedTuple):
    """What the restarts keep across runs."""

    termination: Termination  # why the last run stopped (all False while it runs)
    stop: Array  # terminated and no restart left: the distribution is frozen
    restarts: Array  # restarts done so far (large-population ones for BIPOP)
    last_large_evaluations: Array  # BIPOP: evaluations of the last large run
    large_popsize: Array  # BIPOP: population of the last large run
    small_regime: Array  # BIPOP: this run is a small-population one


class Budgets(NamedTuple):
    """Evaluations spent so far, before this generation's."""

    large: Array  # in the large (and first) regime
    small: Array  # in the small regime


def small_budget_spent(policy_kind: str | None, regime: Regime, run_evaluations: Array) -> Array:
    """BIPOP's end of a small run: it has spent half the last large run's evaluations."""
    return (
        jnp.asarray(policy_kind == "bipop")
        & regime.small_regime
        & (run_evaluations > regime.last_large_evaluations // 2)
    )


def restart(
    key: Array,
    policy: Policy,
    run: Run,
    regime: Regime,
    budgets: Budgets,
    x0: Array,
    term: Termination,
    base: int,
    hist: int,
    capacity: int,
    separable: bool,
) -> tuple[Run, Regime]:
    """The run and regime after ``run`` (this generation's, before its update) terminated.

    Restarts begin at ``x0`` or at a uniform point of ``policy.restart_box``. With no
    restart left, the finished run is frozen (``stop``), or, with ``policy.cycle``,
    the restarts begin again from the first population.
    """
    dim, dtype = run.mean.shape[0], run.mean.dtype
    k_mean, k_u = jax.random.split(key)
    if policy.restart_box is None:
        mean = x0
    else:
        low, high = policy.restart_box
        mean = jax.random.uniform(k_mean, (dim,), dtype, jnp.asarray(low, dtype), jnp.asarray(high, dtype))
    was_large = ~regime.small_regime
    last_large_evaluations = jnp.where(
        was_large, run.run_evaluations + run.popsize, regime.last_large_evaluations
    )
    # Evaluations per regime after this generation (this run's last one included).
    large_ev = budgets.large + jnp.where(was_large, run.popsize, 0)
    small_ev = budgets.small + jnp.where(was_large, 0, run.popsize)
    go_large = jnp.ones((), bool) if policy.kind == "ipop" else large_ev <= small_ev
    large_lam = jnp.minimum(regime.large_popsize * 2, capacity)
    exhausted = go_large & (regime.restarts >= policy.max_restarts)
    u = jax.random.uniform(k_u, (), dtype)
    small_lam = jnp.floor(base * (0.5 * large_lam / base) ** (u**2)).astype(jnp.int32)
    small_lam = jnp.clip(small_lam, base, capacity)
    lam = jnp.where(go_large, large_lam, small_lam)
    sigma = jnp.asarray(policy.sigma, dtype)
    sigma_run = jnp.where(go_large, sigma, sigma * 10.0 ** (-2 * u))
    if policy.cycle:  # no restart left: begin again from the first population instead of stopping
        lam = jnp.where(exhausted, base, lam)
        large_lam = jnp.where(exhausted, base, large_lam)
    halt = jnp.zeros((), bool) if policy.cycle else exhausted
    new = fresh_run(dim, hist, dtype, mean, sigma_run, lam, separable)
    # An exhausted restart budget freezes the finished run instead (unless it cycles).
    new = jax.tree_util.tree_map(lambda old, fresh: jnp.where(halt, old, fresh), run, new)
    new = new._replace(popsize=jnp.where(halt, run.popsize, lam).astype(jnp.int32))
    restarts = jnp.where(exhausted & policy.cycle, 0, regime.restarts + jnp.where(go_large & ~halt, 1, 0))
    small_regime = jnp.zeros((), bool) if policy.kind == "ipop" else ~go_large
    return new, Regime(
        termination=term,
        stop=halt,
        restarts=restarts,
        last_large_evaluations=last_large_evaluations,
        large_popsize=jnp.where(go_large & ~halt, large_lam, regime.large_popsize),
        small_regime=small_regime,
    )

"""CMA-ME: Fontaine, Togelius, Nikolaidis & Hoover, "Covariance Matrix Adaptation
for the Rapid Illumination of Behavior Space", GECCO 2020 (arXiv:1912.02400).

Several *improvement emitters* share one MAP-Elites archive; each is a CMA-ES
instance (``cma_es``) whose offspring are ranked by what they did to the
archive rather than by fitness::

    archive A; emitters e = 1..E, each a CMA-ES N(m_e, sigma_e^2 C_e) started at x0
    for t = 0, 1, 2, ...
        each emitter samples lambda members;  evaluate all E * lambda
        insert the whole batch in A; each member gets a status and a value
            (2: filled an empty cell, value f;  1: improved a cell, value f - elite;
             0: not added, value f - elite)
        each emitter ranks its members by status, then value (both descending)
            and updates its CMA-ES on that ranking ("improvement ranking")
        an emitter restarts (a fresh CMA-ES at sigma0, its mean a random elite of A)
            when none of its members was added ("no_improvement"), or when its
            CMA-ES stops on its own criteria

The ranking reaches ``cma_es``'s ``tell`` as fitness ``lambda - rank``
(CMA-ES uses only the order), so the emitters are ``cma_es`` instances driven
through the ``Strategy`` interface: ``ask``/``tell``/``init`` (a restart is an
``init`` at the chosen elite), and its state's ``stop`` and ``mean`` fields.
Its fitness-history criteria (``tolfun``, ``tolfunhist``, ``tolstagnation``)
are off: they would read the ranks as a flat fitness. Its covariance is
decomposed as lazily as pyribs' CMA-ES does it (``eigen_gap=0.5``). Selection is CMA-ES's own
(the better half, with active CMA's negative weights for the rest), which is
pyribs' ``selection_rule="mu"``; pyribs' default ``"filter"`` (only the members
that were added, a variable mu) is not offered.

The emitters are stacked on a leading axis (``state.emitters``); ``ask``
vmaps them, ``tell`` runs them one after the other (``lax.map``), so that each
CMA-ES decomposes its covariance only when it is due (under ``vmap`` its
``lax.cond`` would compute every branch for every emitter). Member ``i``
comes from emitter ``i // lambda``. The state's ``archive``, ``metrics``,
``best_solution`` and ``best_fitness`` are as in ``map_elites``; ``restarts``
counts each emitter's restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.qd.archive import Archive, Repertoire, flat_solutions, sample_cells
from neuroevo.strategies.cma_es import cma_es, default_popsize
from neuroevo.strategies.map_elites import make_archive, qd_start, qd_step
from neuroevo.strategy import Strategy, check_popsize, check_x0, static_int, unravel_like

PyTree = Any
RESTART_RULES = ("no_improvement", "basic")


class CMAMEState(NamedTuple):
    archive: Repertoire
    emitters: Any  # the E CMA-ES states, stacked on a leading axis
    restarts: jax.Array  # int32[E]: restarts of each emitter
    metrics: dict[str, jax.Array]
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def default_emitters(popsize: int, most: int = 15, smallest: int = 4) -> int:
    """The most emitters (at most ``most``) that split ``popsize`` evenly into batches of at least
    ``smallest`` members (CMA-ES's minimum): 15 x 17 for 255, 4 x 4 for 16."""
    for e in range(min(most, popsize // smallest), 0, -1):
        if popsize % e == 0:
            return e
    raise ValueError(f"popsize={popsize} cannot be split into emitters of at least {smallest} members")


def improvement_ranking(status: jax.Array, value: jax.Array) -> jax.Array:
    """f32[..., lam]: ``lam - rank`` when ranked by status, then value, both descending (ties: first)."""
    lam = status.shape[-1]

    def one(s, v):
        order = jnp.lexsort((-v, -s))  # last key first: status, then value
        rank = jnp.zeros((lam,), jnp.int32).at[order].set(jnp.arange(lam, dtype=jnp.int32))
        return (lam - rank).astype(jnp.float32)

    return jax.vmap(one)(status.reshape(-1, lam), value.reshape(-1, lam)).reshape(status.shape)


def cma_me(
    popsize: int | None = None,
    archive: Archive | Mapping | None = None,
    emitters: int | None = None,
    sigma: float = 0.5,
    restart_rule: str = "no_improvement",
    descriptor_dim: int | None = None,
) -> Strategy:
    """Build CMA-ME with improvement emitters (see the module docstring).

    Args:
      popsize: members per generation, all emitters together (static; a multiple of
        ``emitters``, at least 4 per emitter). Default: ``emitters`` x CMA-ES's default
        ``4 + floor(3 ln d)`` (pyribs' default emitter batch).
      archive: as ``map_elites``'s.
      emitters: E, the number of CMA-ES emitters (static). Default 15 (as in Fontaine et al.)
        when ``popsize`` is None, else the most (at most 15) that split it into equal
        batches of at least 4.
      sigma: each emitter's initial step size sigma0 (traceable; pyribs' ``sigma0``).
      restart_rule: ``"no_improvement"`` (restart an emitter none of whose members was
        added, and when its CMA-ES stops) or ``"basic"`` (only when it stops).
      descriptor_dim: as ``map_elites``'s.
    """
    if popsize is not None:
        check_popsize(popsize, minimum=4)
    if emitters is None:
        n_emitters = 15 if popsize is None else default_emitters(popsize)
    else:
        n_emitters = static_int("emitters", emitters, 1)
    if popsize is not None and (popsize % n_emitters or popsize // n_emitters < 4):
        raise ValueError(
            f"popsize={popsize} must be a multiple of emitters={n_emitters} with at least 4 members each"
        )
    if restart_rule not in RESTART_RULES:
        raise ValueError(f"unknown restart_rule {restart_rule!r}; valid: {list(RESTART_RULES)}")
    spec = make_archive(archive, descriptor_dim)

    def emitter(dim: int) -> Strategy:
        """One emitter's CMA-ES (its batch follows the dimension when popsize is None)."""
        lam = default_popsize(dim) if popsize is None else popsize // n_emitters
        return cma_es(popsize=lam, sigma=sigma, tolfun=0.0, tolfunhist=0.0, stagnation=False, eigen_gap=0.5)

    def dim_of(tree: PyTree) -> int:
        return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(tree))

    def init(key: jax.Array, x0: PyTree) -> CMAMEState:
        es = emitter(dim_of(x0))
        states = jax.vmap(lambda k: es.init(k, x0))(jax.random.split(key, n_emitters))
        fields = qd_start(spec, x0)
        fields["metrics"] = dict(fields["metrics"], restarts=jnp.zeros((), jnp.float32))
        return CMAMEState(emitters=states, restarts=jnp.zeros((n_emitters,), jnp.int32), **fields)

    def ask(key: jax.Array, state: CMAMEState):
        es = emitter(dim_of(state.best_solution))
        genotypes, emitter_states = jax.vmap(es.ask)(jax.random.split(key, n_emitters), state.emitters)
        flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), genotypes)
        return flat, state._replace(emitters=emitter_states)

    def decode(state: CMAMEState, genotype) -> PyTree:
        # A CMA-ES member holds its point; decoding only unravels it (any emitter's state will do).
        first = jax.tree_util.tree_map(lambda x: x[0], state.emitters)
        return emitter(dim_of(state.best_solution)).decode(first, genotype)

    def tell(key, state: CMAMEState, genotypes, fitness, descriptors=None) -> CMAMEState:
        fields, insertion, _, _ = qd_step(spec, decode, state, genotypes, fitness, descriptors, "CMA-ME")
        es = emitter(dim_of(state.best_solution))
        lam = insertion.status.shape[0] // n_emitters
        per_emitter = lambda x: x.reshape((n_emitters, lam) + x.shape[1:])  # noqa: E731
        ranking = improvement_ranking(per_emitter(insertion.status), per_emitter(insertion.value))
        added = jnp.any(per_emitter(insertion.status) > 0, axis=1)
        repertoire = fields["archive"]
        k_tell, k_cells, k_init = jax.random.split(key, 3)
        starts = flat_solutions(repertoire, sample_cells(k_cells, repertoire, n_emitters))
        have_elite = jnp.any(repertoire.occupied)

        def update(args):
            k_t, k_i, emitter_state, g, f, any_added, start = args
            new = es.tell(k_t, emitter_state, g, f)
            restart = new.stop | (~any_added if restart_rule == "no_improvement" else False)
            mean = check_x0(new.mean)[0]
            start = jnp.where(have_elite, start.astype(mean.dtype), mean)
            chosen = jax.lax.cond(restart, lambda: es.init(k_i, unravel_like(new.mean)(start)), lambda: new)
            return chosen, restart

        emitter_states, restarted = jax.lax.map(
            update,
            (
                jax.random.split(k_tell, n_emitters),
                jax.random.split(k_init, n_emitters),
                state.emitters,
                jax.tree_util.tree_map(per_emitter, genotypes),
                ranking,
                added,
                starts,
            ),
        )
        restarts = state.restarts + restarted.astype(jnp.int32)
        fields["metrics"] = dict(fields["metrics"], restarts=jnp.sum(restarts).astype(jnp.float32))
        return CMAMEState(emitters=emitter_states, restarts=restarts, **fields)

    return Strategy(init, ask, tell, decode)


cma_me.needs_descriptors = True  # its strategies need behaviour descriptors in ``tell``

"""ME-ES: Colas, Madhavan, Huizinga & Clune, "Scaling MAP-Elites to Deep
Neuroevolution", GECCO 2020 (arXiv:2003.01825).

An ES emitter over a MAP-Elites archive: OpenAI-ES (``openai_es``) climbs the
gradient of fitness (*exploit*) or of novelty (*explore*) from an elite, and
every ``optimization_steps`` generations starts again from another elite::

    archive A (MAP-Elites), novelty archive N (behaviours of past centres)
    for t = 0, 1, 2, ...
        if t % optimization_steps == 0:                     (a new parent)
            exploit: theta <- with prob 1/2 one of the exploit_cells best elites of A,
                     else the best of the last_updated cells the centre last improved
            explore: theta <- one of the explore_cells elites most novel w.r.t. N
                     (among explore_samples elites drawn uniformly, in a larger archive)
            (the first parent is x0); reset the optimiser
        members theta + sigma*eps_i (mirrored; members 0 and popsize/2 are theta itself)
        evaluate; insert every member in A; add theta's behaviour to N
        exploit: w_i = shaped f_i;   explore: w_i = shaped novelty(b_i, N)
        theta <- optimiser step on  1/(n sigma) sum_i w_i eps_i         (OpenAI-ES)

``mode``: ``"exploit"`` (ME-ES exploit: fitness gradients only),
``"explore"`` (novelty gradients only) or ``"explore_exploit"`` (the paper's
ME-ES explore-exploit: blocks of ``optimization_steps`` generations
alternate, exploit first). Novelty is the mean distance to the ``k`` nearest
behaviours of N (:mod:`neuroevo.novelty`).

Differences from the paper, which ran 1000 CPU workers: the centre is evaluated
inside the population (members 0 and popsize/2, weight 0 in the update, as
``ns_es`` does), so its behaviour reaches N one generation late and needs no
extra evaluation; every evaluated member, not only the centre, is offered to
the archive (the perturbations are evaluations too, and this fills the archive
faster); the parent choices are QDax's (``exploit_cells=2``,
``explore_cells=5``, ``last_updated=5``). ``state.mean`` is the centre theta;
the state's ``archive``, ``metrics``, ``best_solution``, ``best_fitness`` are
as in ``map_elites``, with ``explore`` (1 in an exploration block) in the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neuroevo import novelty as nov
from neuroevo import perturbation
from neuroevo.qd.archive import Archive, Repertoire, flat_solutions, sample_cells
from neuroevo.shaping import centered_ranks
from neuroevo.strategies.map_elites import make_archive, qd_start, qd_step
from neuroevo.strategies.openai_es import OpenESState, openai_es
from neuroevo.strategy import Strategy, check_popsize, static_int, unravel_like

PyTree = Any
MODES = ("explore_exploit", "exploit", "explore")


class MEESState(NamedTuple):
    archive: Repertoire
    es: OpenESState  # the ES on the current parent theta (its optimiser reset at each parent)
    novelty: nov.Archive  # behaviours of past centres
    last_cells: jax.Array  # int32[last_updated]: cells the centre last improved (-1: none)
    metrics: dict[str, jax.Array]
    mean: PyTree  # theta, the centre
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array


def me_es(
    popsize: int = 256,
    archive: Archive | Mapping | None = None,
    mode: str = "explore_exploit",
    sigma: float | Callable = 0.02,
    learning_rate: float = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    optimization_steps: int = 10,
    k: int = 10,
    novelty_capacity: int = 1000,
    exploit_cells: int = 2,
    explore_cells: int = 5,
    explore_samples: int = 1024,
    last_updated: int = 5,
    shaping: Callable[[jax.Array], jax.Array] = centered_ranks,
    descriptor_dim: int | None = None,
    dense: bool | None = None,
    chunk_size: int | None = None,
) -> Strategy:
    """Build ME-ES (see the module docstring).

    Args:
      popsize: members per generation, mirrored (static, even, at least 4).
      archive: as ``map_elites``'s.
      mode: ``"explore_exploit"``, ``"exploit"`` or ``"explore"``.
      sigma, learning_rate, optimizer, weight_decay, dense, chunk_size: as ``openai_es``
        (Colas et al.: sigma 0.02, Adam at 0.01).
      optimization_steps: generations on one parent before choosing another (static).
      k: neighbours in the novelty estimate (static).
      novelty_capacity: behaviours kept in the novelty archive (static; the oldest go first).
      exploit_cells, explore_cells, last_updated: the parent choices (static; see above).
      explore_samples: the most novel elites are sought among this many, drawn uniformly, when
        the archive has more cells (static: it bounds the k-NN work of a new parent).
      shaping: values -> per-member weights (default centred ranks, as in the paper).
      descriptor_dim: as ``map_elites``'s.
    """
    check_popsize(popsize, even=True, minimum=4)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {list(MODES)}")
    steps = static_int("optimization_steps", optimization_steps, 1)
    k = static_int("k", k, 1)
    static_int("novelty_capacity", novelty_capacity, 1)
    exploit_cells = static_int("exploit_cells", exploit_cells, 1)
    explore_cells = static_int("explore_cells", explore_cells, 1)
    explore_samples = static_int("explore_samples", explore_samples, 1)
    n_last = static_int("last_updated", last_updated, 1)
    spec = make_archive(archive, descriptor_dim)
    half = popsize // 2
    es = openai_es(
        popsize,
        sigma,
        learning_rate,
        optimizer,
        weight_decay,
        dense=dense,
        chunk_size=chunk_size,
        fitness_shaping=lambda w: w,  # the weights are shaped below
    )

    def exploring(generation: jax.Array) -> jax.Array:
        """Whether ``generation`` belongs to an exploration block."""
        if mode != "explore_exploit":
            return jnp.asarray(mode == "explore")
        return (generation // steps) % 2 == 1

    def init(key: jax.Array, x0: PyTree) -> MEESState:
        fields = qd_start(spec, x0)
        fields["metrics"] = dict(
            fields["metrics"], explore=exploring(fields["generation"]).astype(jnp.float32)
        )
        return MEESState(
            es=es.init(key, x0),
            novelty=nov.empty(novelty_capacity, spec.descriptor_dim),
            last_cells=jnp.full((n_last,), -1, jnp.int32),
            mean=fields["best_solution"],
            **fields,
        )

    def ask(key: jax.Array, state: MEESState):
        genotypes, _ = es.ask(key, state.es)
        centre = genotypes.scale.at[0].set(0.0).at[half].set(0.0)  # theta itself, twice
        return genotypes._replace(scale=centre), state

    def decode(state: MEESState, genotype: perturbation.Perturbation) -> PyTree:
        return es.decode(state.es, genotype)

    def top_cells(key: jax.Array, score: jax.Array, n: int) -> jax.Array:
        """A cell drawn uniformly among the ``n`` of highest ``score`` (-inf: not eligible)."""
        n = min(n, score.shape[0])
        values, cells = jax.lax.top_k(score, n)
        ok = values > -jnp.inf
        pick = jax.random.choice(key, n, p=jnp.where(jnp.any(ok), ok / jnp.maximum(jnp.sum(ok), 1), 1.0 / n))
        return cells[pick]

    def new_parent(key: jax.Array, state: MEESState, repertoire: Repertoire, explore: jax.Array) -> jax.Array:
        """The cell of the next parent (its elite becomes theta)."""
        k_coin, k_best, k_last, k_novel = jax.random.split(key, 4)
        best = top_cells(k_best, repertoire.fitness, exploit_cells)
        valid_last = state.last_cells >= 0
        last_fitness = jnp.where(valid_last, repertoire.fitness[jnp.maximum(state.last_cells, 0)], -jnp.inf)
        recent = state.last_cells[top_cells(k_last, last_fitness, exploit_cells)]
        exploit = jnp.where(jax.random.bernoulli(k_coin) & jnp.any(valid_last), recent, best)
        k_sample, k_novel = jax.random.split(k_novel)
        if spec.n_cells <= explore_samples:  # every elite
            cells = jnp.arange(spec.n_cells, dtype=jnp.int32)
        else:  # a uniform sample of them: the k-NN cost stays explore_samples x novelty_capacity
            cells = sample_cells(k_sample, repertoire, explore_samples)
        novelty = nov.novelty(repertoire.descriptors[cells], state.novelty, k=k)
        novel = cells[
            top_cells(k_novel, jnp.where(repertoire.occupied[cells], novelty, -jnp.inf), explore_cells)
        ]
        return jnp.where(explore, novel, exploit)

    def tell(
        key, state: MEESState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> MEESState:
        fields, insertion, fitness, descriptors = qd_step(
            spec, decode, state, genotypes, fitness, descriptors, "ME-ES"
        )
        k_es, k_parent = jax.random.split(key)
        explore = exploring(state.generation)
        weights = jax.lax.cond(
            explore, lambda: shaping(nov.novelty(descriptors, state.novelty, k=k)), lambda: shaping(fitness)
        )
        weights = weights.at[0].set(0.0).at[half].set(0.0)  # the centre pair carries no gradient
        es_state = es.tell(k_es, state.es, genotypes, weights)
        # The centre's behaviour joins N; the cell it improved joins the last-updated ring.
        novelty_archive = nov.add(state.novelty, descriptors[:1])
        improved = insertion.added[0]
        last_cells = jnp.where(
            improved, jnp.roll(state.last_cells, 1).at[0].set(insertion.cell[0]), state.last_cells
        )
        # Every optimization_steps generations: a new parent from the archive, a fresh optimiser.
        generation = state.generation + 1
        repertoire = fields["archive"]
        switch = (generation % steps == 0) & jnp.any(repertoire.occupied)
        ring = state._replace(novelty=novelty_archive, last_cells=last_cells)

        def restart() -> OpenESState:
            cell = new_parent(k_parent, ring, repertoire, exploring(generation))
            return es.init(k_es, unravel_like(state.mean)(flat_solutions(repertoire, cell[None])[0]))

        es_state = jax.lax.cond(switch, restart, lambda: es_state)
        fields["metrics"] = dict(fields["metrics"], explore=explore.astype(jnp.float32))
        return MEESState(
            es=es_state, novelty=novelty_archive, last_cells=last_cells, mean=es_state.mean, **fields
        )

    return Strategy(init, ask, tell, decode)


me_es.needs_descriptors = True  # its strategies need behaviour descriptors in ``tell``

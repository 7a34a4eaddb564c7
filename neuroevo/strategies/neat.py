"""NEAT: NeuroEvolution of Augmenting Topologies (Stanley & Miikkulainen 2002).

Evolves network weights *and* topologies. Each generation (in ``tell``):

1. **Stagnation.** A species' fitness is its best member's; a species that has
   not improved for ``max_stagnation`` generations is removed, except the
   ``species_elitism`` best species.
2. **Explicit fitness sharing.** A species' adjusted fitness is the mean of its
   members' fitness, normalised to [0, 1] over the population; offspring are
   allotted in proportion to it (smoothed toward the species' previous size and
   made to sum exactly to ``popsize``, as in neat-python).
3. **Reproduction within species.** The ``elitism`` best members of each
   species are copied; the other children are crossovers of two parents drawn
   from the top ``survival_threshold`` fraction (genes aligned by innovation
   number, the structure of the fitter parent), then mutated: structural
   mutations (add/delete node, add/delete connection; identical ones in one
   generation share their innovation numbers) and attribute mutations.
4. **Speciation.** Each child joins the closest species whose representative is
   within the compatibility threshold (excess, disjoint and weight-difference
   distance); the others found new species. Each species' new representative is
   its member closest to the old one. The threshold moves by
   ``threshold_step`` toward ``target_species`` species.

Every array has a static shape: genomes have ``max_nodes``/``max_conns`` rows,
species live in ``max_species`` slots, so a population of different topologies is
evaluated by one vmapped kernel and the whole run compiles once.

``x0`` is a :class:`neuroevo.nn.neat.Network` template giving the numbers of
inputs and outputs (``ne.nn.neat.template(num_inputs, num_outputs)``; a task's
``init_solution`` gives it). ``decode`` returns a :class:`Network` for the task's
``apply`` (``ne.nn.neat.forward``). Defaults follow neat-python's XOR example
configuration except five rates, tuned on XOR (population 150, 20 seeds per
seed set, median generations to reach fitness 3.9), one after the other: delete
mutations (``conn_delete_prob`` 0.2 instead of 0.5, ``node_delete_prob`` 0.1
instead of 0.2: 20/20 solved, medians 74 and 65, against 18/20 and 105), then
``survival_threshold`` 0.1 instead of 0.2 (medians 48.5 and 55.5), ``sigma``
(the weight perturbation) 1.0 instead of 0.5 (with both: 20/20, median 43), then
``conn_add_prob`` 0.7 instead of 0.5 (medians 38 and 34.5 against 54.5 and 52.5).
The benchmark (``benchmarks/neat_xor.py``) runs on seeds none of these used.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from neuroevo.nn.neat import ACTIVATION_NAMES, Network, activation_index
from neuroevo.shaping import sanitize
from neuroevo.strategies import neat_genes
from neuroevo.strategies import neat_ops as ops
from neuroevo.strategies.neat_io import draw, export
from neuroevo.strategies.neat_ops import Genome
from neuroevo.strategy import Strategy, check_fitness, check_popsize, static_int, update_best

Array = jax.Array
FEW_UNPLACED = 128  # see speciate.dist_to


class NEATState(NamedTuple):
    population: Genome  # the genomes ask hands out (leading axis popsize)
    species: Array  # i32[popsize]: each member's species slot
    representatives: Genome  # leading axis max_species
    species_active: Array  # bool[S]
    species_best: Array  # f32[S]: best fitness the species ever had
    species_improved: Array  # i32[S]: generation of its last improvement
    threshold: Array  # f32: compatibility threshold
    next_node: Array  # i32: next global node id
    next_innov: Array  # i32: next innovation number
    best_genome: Genome
    best_solution: Network
    best_fitness: Array
    generation: Array
    params: ops.Params


def neat(
    popsize: int = 150,
    *,
    max_nodes: int = 32,
    max_conns: int = 64,
    max_species: int = 32,
    feed_forward: bool = True,
    recurrent_steps: int = 5,
    activation: str = "sigmoid",
    activation_options: tuple[str, ...] | None = None,
    sigma: float = 1.0,
    weight_init_stdev: float = 1.0,
    weight_mutate_rate: float = 0.8,
    weight_replace_rate: float = 0.1,
    weight_max: float = 30.0,
    bias_init_stdev: float = 1.0,
    bias_mutate_rate: float = 0.7,
    bias_mutate_power: float = 0.5,
    bias_replace_rate: float = 0.1,
    response_mutate_rate: float = 0.0,
    response_mutate_power: float = 0.0,
    enabled_mutate_rate: float = 0.01,
    activation_mutate_rate: float = 0.0,
    node_add_prob: float = 0.2,
    node_delete_prob: float = 0.1,
    conn_add_prob: float = 0.7,
    conn_delete_prob: float = 0.2,
    disable_inherited: float = 0.75,
    excess_coefficient: float = 1.0,
    disjoint_coefficient: float = 1.0,
    weight_coefficient: float = 0.5,
    compatibility_threshold: float = 3.0,
    target_species: float = 10.0,
    threshold_step: float = 0.0,
    elitism: int = 2,
    survival_threshold: float = 0.1,
    max_stagnation: int = 20,
    species_elitism: int = 2,
    min_species_size: int = 2,
) -> Strategy:
    """NEAT with static-shape genomes (see the module docstring).

    Args:
      popsize: number of genomes (static).
      max_nodes, max_conns: genome capacities (static); structural mutations
        that would not fit are skipped.
      max_species: species slots (static); when all are taken, genomes that fit
        no species join the closest one.
      feed_forward: forbid cycles (networks run by depth); else recurrent,
        run for ``recurrent_steps`` synchronous updates.
      activation: the activation of new nodes; ``activation_options`` the ones
        activation mutation picks from (default: just ``activation``).
      sigma: weight perturbation standard deviation (neat-python's
        ``weight_mutate_power``).
      compatibility_threshold, target_species, threshold_step: the initial
        threshold, and the dynamic adjustment toward ``target_species`` species
        (``threshold_step = 0`` keeps it fixed, as neat-python does).
    Every numeric argument other than the static shapes may be a traced value.
    """
    check_popsize(popsize)
    for name, value in (("max_nodes", max_nodes), ("max_conns", max_conns), ("max_species", max_species)):
        static_int(name, value, 1)
    default_act = activation_index(activation)
    options = (activation,) if activation_options is None else tuple(activation_options)
    if not options:
        raise ValueError(f"activation_options must name at least one of {list(ACTIVATION_NAMES)}")
    option_idx = jnp.array([activation_index(a) for a in options], jnp.int32)
    option_set = tuple(sorted({default_act, *(activation_index(a) for a in options)}))
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    params = ops.Params(
        weight_init_mean=f32(0.0),
        weight_init_stdev=f32(weight_init_stdev),
        weight_mutate_rate=f32(weight_mutate_rate),
        weight_mutate_power=f32(sigma),
        weight_replace_rate=f32(weight_replace_rate),
        weight_max=f32(weight_max),
        bias_init_mean=f32(0.0),
        bias_init_stdev=f32(bias_init_stdev),
        bias_mutate_rate=f32(bias_mutate_rate),
        bias_mutate_power=f32(bias_mutate_power),
        bias_replace_rate=f32(bias_replace_rate),
        bias_max=f32(30.0),
        response_mutate_rate=f32(response_mutate_rate),
        response_mutate_power=f32(response_mutate_power),
        response_max=f32(30.0),
        enabled_mutate_rate=f32(enabled_mutate_rate),
        activation_mutate_rate=f32(activation_mutate_rate),
        node_add_prob=f32(node_add_prob),
        node_delete_prob=f32(node_delete_prob),
        conn_add_prob=f32(conn_add_prob),
        conn_delete_prob=f32(conn_delete_prob),
        disable_inherited=f32(disable_inherited),
        excess_coefficient=f32(excess_coefficient),
        disjoint_coefficient=f32(disjoint_coefficient),
        weight_coefficient=f32(weight_coefficient),
    )
    S = max_species

    def decode(state: NEATState, genome: Genome) -> Network:
        return ops.to_network(genome, feed_forward, recurrent_steps, option_set)

    # ---------------------------------------------------------------- speciation
    def speciate(pop: Genome, reps: Genome, active: Array, threshold: Array, p: ops.Params):
        """Species of every member, the new representatives and active flags (step 4)."""
        one = lambda g: jax.tree_util.tree_map(lambda x: x[None], g)  # noqa: E731
        n = min(popsize, FEW_UNPLACED)

        def dist_to(rep, unplaced):
            """Distances of the unplaced members to a new representative (inf for the others: only
            unplaced members join it or, at the end, pick their closest species). Usually only a
            few are unplaced, so they are gathered ``FEW_UNPLACED`` at most; all when more are."""
            everyone = lambda: jnp.where(unplaced, neat_genes.distances(pop, one(rep), p)[:, 0], jnp.inf)  # noqa: E731
            if n == popsize:
                return everyone()

            def few():
                idx = jnp.nonzero(unplaced, size=n, fill_value=popsize)[0]
                sub = jax.tree_util.tree_map(lambda x: x[jnp.minimum(idx, popsize - 1)], pop)
                d = neat_genes.distances(sub, one(rep), p)[:, 0]
                return jnp.full((popsize,), jnp.inf).at[idx].set(d, mode="drop")

            return jax.lax.cond(jnp.sum(unplaced) <= n, few, everyone)

        d_old = neat_genes.distances(pop, reps, p)  # [P, S]
        d_old = jnp.where(active[None], d_old, jnp.inf)
        nearest = jnp.argmin(d_old, 1)
        fits = jnp.take_along_axis(d_old, nearest[:, None], 1)[:, 0] < threshold
        species = jnp.where(fits, nearest, -1).astype(jnp.int32)
        # New representatives of continuing species: their member closest to the old one.
        member_d = jnp.where(species[:, None] == jnp.arange(S)[None], d_old, jnp.inf)
        closest = jnp.argmin(member_d, 0)
        continuing = jnp.isfinite(jnp.min(member_d, 0))
        reps = jax.tree_util.tree_map(lambda r, x: jnp.where(_bcast(continuing, r), x[closest], r), reps, pop)
        founded = jnp.zeros((S,), bool)

        def found(carry):  # the first unplaced genome founds a species in a free slot
            species, reps, founded, d = carry
            u = jnp.argmax(species < 0)
            slot = jnp.argmax(~(continuing | founded))
            rep = jax.tree_util.tree_map(lambda x: x[u], pop)
            d_rep = dist_to(rep, species < 0)
            join = ((species < 0) & (d_rep < threshold)).at[u].set(True)
            species = jnp.where(join, slot, species)
            reps = jax.tree_util.tree_map(lambda r, x: r.at[slot].set(x), reps, rep)
            return species, reps, founded.at[slot].set(True), d.at[:, slot].set(d_rep)

        def more(carry):
            species, _, founded, _ = carry
            return jnp.any(species < 0) & ~jnp.all(continuing | founded)

        d = jnp.where(continuing[None], d_old, jnp.inf)
        species, reps, founded, d = jax.lax.while_loop(more, found, (species, reps, founded, d))
        active = continuing | founded
        # No free slot left: the rest join the closest species (distances to the representatives
        # they were compared with).
        nearest_any = jnp.argmin(jnp.where(active[None], d, jnp.inf), 1)
        species = jnp.where(species < 0, nearest_any, species).astype(jnp.int32)
        return species, reps, active, founded

    def adjust_threshold(threshold, active, p_step, p_target):
        n = jnp.sum(active)
        return jnp.maximum(threshold + p_step * jnp.sign(n - p_target), jnp.maximum(p_step, 1e-3))

    # ---------------------------------------------------------------- init
    def init(key: Array, x0: Network) -> NEATState:
        if not isinstance(x0, Network):
            raise ValueError(
                "NEAT's x0 is a neuroevo.nn.neat.Network template giving the numbers of inputs and "
                f"outputs (ne.nn.neat.template(num_inputs, num_outputs)), got {type(x0).__name__}"
            )
        ni, no = x0.num_inputs, x0.num_outputs
        if ni + no > max_nodes:
            raise ValueError(f"max_nodes={max_nodes} cannot hold {ni} inputs and {no} outputs")
        if ni * no > max_conns:
            raise ValueError(
                f"max_conns={max_conns} cannot hold the {ni * no} initial connections "
                f"({ni} inputs x {no} outputs)"
            )
        k_pop, _ = jax.random.split(key)
        pop = jax.vmap(lambda k: ops.initial_genome(k, ni, no, max_nodes, max_conns, params, default_act))(
            jax.random.split(k_pop, popsize)
        )
        reps = jax.tree_util.tree_map(lambda x: jnp.zeros((S,) + x.shape[1:], x.dtype), pop)
        threshold = f32(compatibility_threshold)
        species, reps, active, _ = speciate(pop, reps, jnp.zeros((S,), bool), threshold, params)
        first = jax.tree_util.tree_map(lambda x: x[0], pop)
        return NEATState(
            population=pop,
            species=species,
            representatives=reps,
            species_active=active,
            species_best=jnp.full((S,), -jnp.inf, jnp.float32),
            species_improved=jnp.zeros((S,), jnp.int32),
            threshold=adjust_threshold(threshold, active, f32(threshold_step), f32(target_species)),
            next_node=jnp.asarray(ni + no, jnp.int32),
            next_innov=jnp.asarray(ni * no, jnp.int32),
            best_genome=first,
            best_solution=decode(None, first),
            best_fitness=jnp.asarray(-jnp.inf, jnp.float32),
            generation=jnp.zeros((), jnp.int32),
            params=params,
        )

    def ask(key: Array, state: NEATState) -> tuple[Genome, NEATState]:
        del key
        return state.population, state

    # ---------------------------------------------------------------- tell
    def tell(key: Array, state: NEATState, genotypes: Genome, fitness: Array, descriptors=None) -> NEATState:
        del descriptors
        fitness = sanitize(check_fitness(fitness, popsize).astype(jnp.float32))
        p = state.params
        gen = state.generation
        k_par, k_cross, k_del, k_prop, k_struct, k_attr = jax.random.split(key, 6)

        # Best so far.
        take = lambda i: jax.tree_util.tree_map(lambda x: x[i], genotypes)  # noqa: E731
        i = jnp.argmax(fitness)
        best_genome, best_fitness = update_best(state.best_genome, state.best_fitness, take(i), fitness[i])

        # 1. Stagnation.
        member_of = state.species[:, None] == jnp.arange(S)[None]  # [P, S]
        size = jnp.sum(member_of, 0)
        sp_fit = jnp.max(jnp.where(member_of, fitness[:, None], -jnp.inf), 0)
        alive = state.species_active & (size > 0)
        improved = alive & (sp_fit > state.species_best)
        species_best = jnp.where(improved, sp_fit, state.species_best)
        species_improved = jnp.where(improved, gen, state.species_improved)
        order_key = jnp.where(alive, sp_fit, -jnp.inf)
        sp_rank = jnp.argsort(jnp.argsort(-order_key, stable=True), stable=True)  # 0 = best species
        protected = alive & (sp_rank < jnp.maximum(species_elitism, 1))
        stagnant = gen - species_improved >= max_stagnation
        keep = alive & (~stagnant | protected)

        # 2. Adjusted fitness and offspring counts.
        in_kept = keep[state.species]
        finite = in_kept & jnp.isfinite(fitness)
        f_min = jnp.min(jnp.where(finite, fitness, jnp.inf))
        f_max = jnp.max(jnp.where(finite, fitness, -jnp.inf))
        f_min, f_max = jnp.where(jnp.any(finite), f_min, 0.0), jnp.where(jnp.any(finite), f_max, 0.0)
        norm = (jnp.where(jnp.isfinite(fitness), fitness, f_min) - f_min) / jnp.maximum(f_max - f_min, 1e-12)
        adjusted = jnp.sum(jnp.where(member_of, norm[:, None], 0.0), 0) / jnp.maximum(size, 1)
        spawn = allocate(adjusted, size, keep, p_min=jnp.maximum(min_species_size, elitism))

        # 3. Reproduction: child i belongs to species sp_child[i], rank r within its allotment.
        ends = jnp.cumsum(spawn)
        child = jnp.arange(popsize)
        sp_child = jnp.minimum(jnp.searchsorted(ends, child, side="right"), S - 1)
        r = child - (ends - spawn)[sp_child]
        by_species = jnp.lexsort((-fitness, state.species))  # members sorted by species, best first
        starts = jnp.searchsorted(state.species[by_species], jnp.arange(S))
        n_sp = size[sp_child]
        is_elite = r < jnp.minimum(elitism, n_sp)
        cutoff = jnp.minimum(jnp.maximum(jnp.ceil(survival_threshold * n_sp), 2), n_sp).astype(jnp.int32)
        k1, k2 = jax.random.split(k_par)
        pick = lambda k: jax.random.randint(k, (popsize,), 0, jnp.maximum(cutoff, 1))  # noqa: E731
        base = starts[sp_child]
        pa = by_species[base + jnp.where(is_elite, r, pick(k1))]
        pb = by_species[base + jnp.where(is_elite, r, pick(k2))]
        keys = [jax.random.split(k, popsize) for k in (k_cross, k_del, k_prop, k_struct, k_attr)]

        def breed(kc, kd, kp, a, b, elite):  # one block of children: crossover, deletions, proposals
            child = jax.vmap(neat_genes.crossover, (0, 0, 0, 0, 0, None))(
                kc, take(a), take(b), fitness[a], fitness[b], p
            )
            cut = jax.vmap(ops.mutate_delete, (0, 0, None))(kd, child, p)
            prop = jax.vmap(ops.propose, (0, 0, None, None))(kp, cut, p, feed_forward)
            return child, cut, prop._replace(add_node=prop.add_node & ~elite, add_conn=prop.add_conn & ~elite)

        def finish(ks, ka, child, cut, prop, number, elite):  # numbered structure, attributes, elites
            g = jax.vmap(ops.apply_structure, (0, 0, 0, 0, None, None))(ks, cut, prop, number, p, default_act)
            g = jax.vmap(ops.mutate_attributes, (0, 0, None, None))(ka, g, p, option_idx)
            return jax.tree_util.tree_map(lambda e, m: jnp.where(_bcast(elite, e), e, m), child, g)

        # Both passes go ``ops.BLOCK`` genomes at a time (cache-sized); the numbering between them
        # sees the whole population's proposals.
        children, mutated, props = ops.in_blocks(breed, keys[0], keys[1], keys[2], pa, pb, is_elite)
        numbers, next_node, next_innov = ops.number_proposals(props, state.next_node, state.next_innov)
        pop = ops.in_blocks(finish, keys[3], keys[4], children, mutated, props, numbers, is_elite)

        # 4. Speciation of the new population.
        species, reps, active, founded = speciate(pop, state.representatives, keep, state.threshold, p)
        species_best = jnp.where(founded, -jnp.inf, species_best)
        species_improved = jnp.where(founded, gen + 1, species_improved)
        return NEATState(
            population=pop,
            species=species,
            representatives=reps,
            species_active=active,
            species_best=species_best,
            species_improved=species_improved,
            threshold=adjust_threshold(state.threshold, active, f32(threshold_step), f32(target_species)),
            next_node=next_node,
            next_innov=next_innov,
            best_genome=best_genome,
            best_solution=decode(state, best_genome),
            best_fitness=best_fitness,
            generation=gen + 1,
            params=p,
        )

    def allocate(adjusted: Array, size: Array, keep: Array, p_min: Array) -> Array:
        """neat-python's spawn amounts: proportional to adjusted fitness (at least ``p_min``),
        moved halfway from the previous size, then made to sum exactly to popsize."""
        total = jnp.sum(jnp.where(keep, adjusted, 0.0))
        target = jnp.where(
            total > 0, jnp.maximum(p_min, adjusted / jnp.maximum(total, 1e-30) * popsize), p_min
        )
        d = (target - size) * 0.5
        c = jnp.round(d)
        step = jnp.where(jnp.abs(c) > 0, c, jnp.sign(d))
        spawn = jnp.where(keep, size + step, 0.0)
        spawn = jnp.where(
            keep, jnp.maximum(p_min, jnp.round(spawn * popsize / jnp.maximum(spawn.sum(), 1.0))), 0
        )
        spawn = spawn.astype(jnp.int32)

        def fix(s):  # one member at a time: grow the smallest, or shrink the largest above 1
            diff = popsize - jnp.sum(s)
            grow = jnp.argmin(jnp.where(keep, s, jnp.iinfo(jnp.int32).max))
            shrink = jnp.argmax(jnp.where(keep & (s > 1), s, -1))
            return jnp.where(diff > 0, s.at[grow].add(1), s.at[shrink].add(-1))

        def unfixed(s):
            diff = popsize - jnp.sum(s)
            return (diff > 0) | ((diff < 0) & jnp.any(keep & (s > 1)))

        return jax.lax.while_loop(unfixed, fix, spawn)

    return Strategy(init=init, ask=ask, tell=tell, decode=decode)


def _bcast(mask: Array, like: Array) -> Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


__all__ = ["NEATState", "Genome", "draw", "export", "neat"]

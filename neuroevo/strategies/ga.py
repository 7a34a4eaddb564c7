"""The Deep GA: "Deep Neuroevolution: Genetic Algorithms Are a Competitive
Alternative for Training Deep Neural Networks for Reinforcement Learning",
Such, Madhavan, Conti, Lehman, Stanley & Clune, 2017 (arXiv:1712.06567),
with optional classic GA operators.

Algorithm 1 of the paper (the defaults: truncation selection, no crossover):

    parents P_0 = T copies of x0
    for g = 1, 2, ...
        member 0 = the elite (best of the previous generation), unchanged
        members 1..N-1: pick k ~ U{1..T};  child = P[k] + sigma * eps,  eps ~ N(0, I)
        evaluate; P <- the top T members

Genotypes are :class:`~neuroevo.strategy.Perturbation` s (parent index, step,
noise or seed). With compact genotypes only the T parents are ever stored
densely: memory O(T * dim), not O(N * dim). (The paper's elite is chosen by
re-evaluating the top 10 candidates 30 times; here the elite is the best member
of the generation, which is exact on deterministic tasks.)

Options (operators in :mod:`neuroevo.strategies.ga_ops`):

- ``selection="tournament"``: each parent is the fittest of ``tournament_size``
  pool members drawn with replacement. The pool (the ``truncation`` survivors of
  the last generation) is then by default the whole population, a plain
  generational GA with elitism.
- ``crossover="uniform" | "one_point" | "arithmetic"`` with probability
  ``crossover_rate``: child = cross(P[a], P[b]) + sigma * eps. The genotype stays
  compact: :class:`GAGenotype` adds the second parent's index and a crossover
  seed from which the mask (uniform), the cut (one-point) or the weight
  (arithmetic) is regenerated. A member that did not cross has ``mate == parent``.
- ``self_adaptive=True``: each parent carries its own step size, and a child's is
  its first parent's times ``exp(tau * N(0, 1))`` (log-normal self-adaptation,
  Schwefel 1977; Baeck & Schwefel 1993), ``tau = 1/sqrt(2 sqrt(d))`` unless given,
  floored at ``sigma_limit``. ``sigma`` then sets the initial steps only; the
  parents' steps are ``state.parent_sigma``.
- ``mate_choice=True``: mate choice by evolving ideal-mate preferences (PIMP,
  Simoes, Lourenco & Machado, "All You Need Is Sex for Diversity", EuroGP 2023).
  Our reading of the method for real vectors: every individual carries an ideal
  mate, a vector in genotype space (``state.preferences``), initialised as
  ``x0 + sigma * N(0, I)``. The first parent is selected by fitness (``selection``);
  it then meets ``tournament_size`` pool members drawn uniformly and picks the
  one closest (Euclidean) to its ideal mate as its partner. The child's ideal
  mate is the parents' ideal mates crossed with the same operator and mask, then
  mutated with the child's step and its own noise: preferences are inherited and
  evolve freely, selected only through the children they produce.
- ``rank=r``: low-rank mutations, as EGGROLL's perturbations (Sarkar et al.
  2025, :mod:`neuroevo.lowrank`): every matrix-shaped parameter moves by
  ``sigma * A B^T / sqrt(r)`` (``A``, ``B`` of r columns, standard normal,
  regenerated from the member's seed), vectors by dense Gaussian noise. Each
  entry still has unit variance, so ``sigma`` means the same; a member's noise
  costs ``sum (m + k) r`` random numbers instead of ``sum m k``. Genotypes are
  always compact (seeds). Without crossover and with at most ``shared_parents``
  parents, the population has ``eggroll``'s fast path (``ne.population_apply``):
  the members share their parents' weights in the forward pass.
- ``lineage_capacity=L > 0``: Such et al.'s compact encoding. Each parent carries
  its lineage, the chain of (seed, sigma) mutations from x0 (at most L; see
  :class:`~neuroevo.strategies.ga_ops.Lineage` for overflow), and
  :func:`encode` / :func:`decode_lineage` store and rebuild a member bit for bit.
  Mutation-only: a crossover child has two lineages, so crossover is refused.

- ``space=ne.space.categorical([...])`` (or ``ne.space.integer``): discrete
  genes instead of real vectors, with uniform/one-point crossover and per-gene
  mutation (:mod:`neuroevo.strategies.ga_discrete`).

Every state reports ``diversity``, the mean Euclidean distance of the parents to
their centroid, and exposes it as ``state.metrics``, which ``ne.evolve`` records
per generation (``history["diversity"]``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from neuroevo import lowrank, perturbation, rng
from neuroevo.nn.lowrank_apply import LowRankMembers
from neuroevo.shaping import sanitize
from neuroevo.strategies import ga_discrete
from neuroevo.strategies import ga_ops as ops
from neuroevo.strategies.ga_ops import Lineage
from neuroevo.strategy import (
    Strategy,
    check_fitness,
    check_popsize,
    check_x0,
    population_size,
    static_int,
    unravel_like,
    update_best,
)

PyTree = Any


class GAState(NamedTuple):
    parents: jax.Array  # f[T, dim], best first
    parent_fitness: jax.Array  # f32[T]
    sigma: jax.Array
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array
    diversity: jax.Array = None  # f32[]: mean distance of the parents to their centroid
    parent_sigma: jax.Array | None = None  # f32[T] (self_adaptive)
    preferences: jax.Array | None = None  # f[T, dim]: ideal mates (mate_choice)
    lineage: Lineage | None = None  # per parent (lineage_capacity > 0)
    best_lineage: Lineage | None = None  # of best_solution

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """Per-generation metrics ``ne.evolve`` records in its history."""
        return {"diversity": self.diversity}


class GAGenotype(NamedTuple):
    """A compact GA member: ``cross(P[parent], P[mate]) + scale * eps(seed)``."""

    parent: jax.Array  # int32[]
    scale: jax.Array  # f32[]: the mutation step (0 for the elite)
    noise: jax.Array | None = None  # f[d] when dense
    seed: jax.Array | None = None  # uint32[2]
    mate: jax.Array | None = None  # int32[]: second parent (== parent: no crossover)
    cross_seed: jax.Array | None = None  # uint32[2]: regenerates the crossover mask/cut/weight
    sigma: jax.Array | None = None  # f32[]: the member's own step size (self_adaptive)
    pref_seed: jax.Array | None = None  # uint32[2]: noise of its ideal mate's mutation (mate_choice)


def ga(
    popsize: int = 256,
    sigma: float | Callable = 0.02,
    truncation: int | None = None,
    elitism: bool = True,
    sigma_decay: float = 1.0,
    sigma_limit: float = 0.0,
    dense: bool | None = None,
    selection: str = "truncation",
    tournament_size: int = 3,
    crossover: str | None = None,
    crossover_rate: float = 0.5,
    self_adaptive: bool = False,
    tau: float | None = None,
    mate_choice: bool = False,
    lineage_capacity: int = 0,
    rank: int | None = None,
    shared_parents: int = 8,
    space=None,
    mutation_rate: float | None = None,
) -> Strategy:
    """Build the Deep GA.

    Args:
      popsize: population size N (static).
      sigma: mutation power, or a schedule ``generation -> sigma``.
      truncation: size T of the parent pool, the top T members of a generation
        (static; default ``max(2, popsize // 10)``, or ``popsize`` with tournament selection).
      elitism: carry the best member unchanged as member 0.
      sigma_decay, sigma_limit: ``sigma_t = max(sigma * sigma_decay**t, sigma_limit)``.
      dense: store each member's noise (True), a seed (False), or decide from size (None).
      selection: ``"truncation"`` (parents uniform from the pool) or ``"tournament"``.
      tournament_size: entrants per tournament, and candidates per mate choice (static).
      crossover: ``None``, ``"uniform"``, ``"one_point"`` or ``"arithmetic"``.
      crossover_rate: probability that a child is a crossover (traceable, in [0, 1]).
      self_adaptive: each individual evolves its own step size.
      tau: learning rate of the self-adaptive step (traceable; default ``1/sqrt(2 sqrt(d))``).
      mate_choice: partners chosen by evolving ideal-mate preferences (needs ``crossover``).
      lineage_capacity: mutations kept per lineage for :func:`encode` (static; 0 = off).
      rank: low-rank mutations of every matrix (static; None: dense Gaussian mutations).
      shared_parents: with ``rank`` and no crossover, populations of at most this
        many parents (``truncation``) take ``ne.population_apply``'s fast path:
        each intercepted layer runs once per parent on the whole population, plus
        each member's low-rank term (static).
      space: evolve discrete genes (:mod:`neuroevo.space`) instead of real vectors:
        the first parents are drawn from the space, crossover is ``"uniform"`` or
        ``"one_point"``, and mutation sets each gene with probability ``mutation_rate``
        (default ``1 / n_genes``) to another value (:mod:`~neuroevo.strategies.ga_discrete`;
        ``sigma`` is unused).
      mutation_rate: per-gene mutation probability with ``space`` (traceable).
    """
    check_popsize(popsize)
    if selection not in ops.SELECTIONS:
        raise ValueError(f"unknown selection {selection!r}; valid: {list(ops.SELECTIONS)}")
    if crossover not in ops.CROSSOVERS:
        raise ValueError(f"unknown crossover {crossover!r}; valid: {list(ops.CROSSOVERS)}")
    tournament = selection == "tournament"
    default_pool = popsize if tournament else max(2, popsize // 10)
    n_parents = truncation if truncation is not None else default_pool
    if not isinstance(n_parents, int) or not 1 <= n_parents <= popsize:
        raise ValueError(f"truncation must be an int in [1, popsize={popsize}], got {n_parents!r}")
    if mate_choice and crossover is None:
        raise ValueError("mate_choice chooses a crossover partner: give crossover= as well")
    if tournament or mate_choice:
        static_int(
            "tournament_size", tournament_size, 1, n_parents, f"pool size {n_parents} (popsize {popsize})"
        )
    if not isinstance(crossover_rate, jax.core.Tracer) and not 0.0 <= float(crossover_rate) <= 1.0:
        raise ValueError(f"crossover_rate must be in [0, 1], got {crossover_rate}")
    capacity = static_int("lineage_capacity", lineage_capacity, 0)
    if capacity and crossover is not None:
        raise ValueError(
            f"lineage_capacity={capacity} needs a mutation-only GA (crossover=None, got {crossover!r}): "
            "a crossover child has two lineages, not one seed chain"
        )
    if space is not None:
        if rank is not None:
            raise ValueError(
                f"rank={rank} perturbs real weight matrices: a discrete space (space=...) has none"
            )
        ga_discrete.check(crossover, self_adaptive, mate_choice, capacity)
        size = tournament_size if tournament else None
        return ga_discrete.discrete_ga(
            GAState, popsize, space, n_parents, elitism, size, crossover, crossover_rate, mutation_rate
        )
    static_int("shared_parents", shared_parents, 0)
    if rank is not None:
        static_int("rank", rank, 1)
        if capacity:
            raise ValueError(
                f"lineage_capacity={capacity} replays dense Gaussian mutations: use rank=None with it"
            )
        dense = False  # low-rank noise is cheap to regenerate from the seed
    plain = not tournament and crossover is None and not self_adaptive and not capacity  # Algorithm 1
    cross_fn = ops.CROSSOVER_FNS.get(crossover)

    def select(key: jax.Array, fitness: jax.Array) -> jax.Array:
        if tournament:
            return ops.tournament(key, fitness, popsize, tournament_size)
        return ops.uniform_parents(key, popsize, n_parents)

    def init(key: jax.Array, x0: PyTree) -> GAState:
        flat, _ = check_x0(x0)
        if rank is not None:
            lowrank.layout(x0, rank)  # checks the rank against every matrix
        generation = jnp.zeros((), jnp.int32)
        sigma0 = perturbation.sigma_at(sigma, generation, sigma_decay, sigma_limit)
        parents = jnp.broadcast_to(flat, (n_parents, flat.shape[0]))
        preferences = None
        if mate_choice:
            noise = rng.normal(key, parents.shape, parents.dtype)
            preferences = parents + sigma0.astype(parents.dtype) * noise
        return GAState(
            parents=parents,
            parent_fitness=jnp.full((n_parents,), -jnp.inf, jnp.float32),
            sigma=sigma0,
            best_solution=jax.tree_util.tree_map(jnp.asarray, x0),
            best_fitness=jnp.array(-jnp.inf, jnp.float32),
            generation=generation,
            diversity=jnp.zeros((), jnp.float32),
            parent_sigma=jnp.full((n_parents,), sigma0) if self_adaptive else None,
            preferences=preferences,
            lineage=ops.empty_lineage(capacity, (n_parents,)) if capacity else None,
            best_lineage=ops.empty_lineage(capacity) if capacity else None,
        )

    def ask(key: jax.Array, state: GAState) -> tuple[perturbation.Perturbation | GAGenotype, GAState]:
        k_parent, k_noise = jax.random.split(key)
        dim = state.parents.shape[1]
        dtype = state.parents.dtype
        parent = select(k_parent, state.parent_fitness)
        scale = jnp.full((popsize,), state.sigma)
        if plain:
            if elitism:
                parent, scale = parent.at[0].set(0), scale.at[0].set(0.0)
            if perturbation.use_dense(popsize, dim, dense):
                noise = rng.normal(k_noise, (popsize, dim), dtype)
                return perturbation.Perturbation(parent, scale, noise=noise), state
            seeds = jax.random.key_data(jax.random.split(k_noise, popsize))
            return perturbation.Perturbation(parent, scale, seed=seeds), state

        k_mate, k_rate, k_cross, k_sigma, k_pref = jax.random.split(jax.random.fold_in(key, 1), 5)
        g = {"seed": jax.random.key_data(jax.random.split(k_noise, popsize))}
        if self_adaptive:
            t = ops.default_tau(dim) if tau is None else tau
            g["sigma"] = ops.self_adapt(k_sigma, state.parent_sigma[parent], t, sigma_limit)
            scale = g["sigma"]
        if crossover is not None:
            if mate_choice:
                distances = ops.squared_distances(state.preferences, state.parents)
                mate = ops.choose_mates(k_mate, parent, distances, tournament_size)
            else:
                mate = select(k_mate, state.parent_fitness)
            crossed = jax.random.uniform(k_rate, (popsize,)) < crossover_rate
            g["mate"] = jnp.where(crossed, mate, parent)
            g["cross_seed"] = jax.random.key_data(jax.random.split(k_cross, popsize))
        if mate_choice:
            g["pref_seed"] = jax.random.key_data(jax.random.split(k_pref, popsize))
        if elitism:
            parent, scale = parent.at[0].set(0), scale.at[0].set(0.0)
            if "mate" in g:
                g["mate"] = g["mate"].at[0].set(0)
            if "sigma" in g:
                g["sigma"] = g["sigma"].at[0].set(state.parent_sigma[0])
        if perturbation.use_dense(popsize, dim, dense):  # per-member noise: the same bits as the seeds
            g["noise"] = jax.vmap(lambda s: rng.seed_normal(s, (dim,), dtype))(g["seed"])
        return GAGenotype(parent, scale, **g), state

    def crossed(table: jax.Array, genotype: GAGenotype) -> jax.Array:
        """The member's base before mutation: its parent's row, or the crossover of two rows."""
        a = table[genotype.parent]
        if getattr(genotype, "mate", None) is None:
            return a
        child = cross_fn(jax.random.wrap_key_data(genotype.cross_seed), a, table[genotype.mate])
        return jnp.where(genotype.mate == genotype.parent, a, child)

    def decode_flat(state: GAState, genotype) -> jax.Array:
        base = crossed(state.parents, genotype)
        if rank is None:
            noise = perturbation.eps(genotype, base.shape[0], base.dtype)
        else:
            noise = lowrank.noise_vector(genotype.seed, lowrank.layout(state.best_solution, rank), base.dtype)
        return ops.mutate(base, genotype.scale, noise, exact=bool(capacity))

    def decode(state: GAState, genotype) -> PyTree:
        return unravel_like(state.best_solution)(decode_flat(state, genotype))

    def decode_preference(state: GAState, genotype: GAGenotype) -> jax.Array:
        base = crossed(state.preferences, genotype)
        noise = rng.seed_normal(genotype.pref_seed, base.shape, base.dtype)
        return ops.mutate(base, genotype.scale, noise)

    def tell(key, state: GAState, genotypes, fitness, descriptors=None):
        del key, descriptors
        fitness = sanitize(check_fitness(fitness, population_size(genotypes)))
        top_fitness, top = jax.lax.top_k(fitness, n_parents)
        selected = jax.tree_util.tree_map(lambda x: x[top], genotypes)
        parents = jax.vmap(decode_flat, in_axes=(None, 0))(state, selected)
        extra = {}
        if self_adaptive:
            extra["parent_sigma"] = selected.sigma
        if mate_choice:
            extra["preferences"] = jax.vmap(decode_preference, in_axes=(None, 0))(state, selected)
        if capacity:
            inherited = jax.tree_util.tree_map(lambda x: x[selected.parent], state.lineage)
            extra["lineage"] = jax.vmap(ops.extend_lineage)(inherited, selected.seed, selected.scale)
        (best_solution, best_lineage), best_fitness = update_best(
            (state.best_solution, state.best_lineage),
            state.best_fitness,
            (
                unravel_like(state.best_solution)(parents[0]),
                jax.tree_util.tree_map(lambda x: x[0], extra.get("lineage")),
            ),
            top_fitness[0],
        )
        generation = state.generation + 1
        return state._replace(
            parents=parents,
            parent_fitness=top_fitness.astype(jnp.float32),
            sigma=perturbation.sigma_at(sigma, generation, sigma_decay, sigma_limit),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=generation,
            diversity=ops.diversity(parents),
            best_lineage=best_lineage,
            **extra,
        )

    def members(state: GAState, genotypes) -> LowRankMembers:
        """The fast path of low-rank mutations from a few parents (see ``shared_parents``)."""
        table = jax.vmap(unravel_like(state.best_solution))(state.parents)
        lay = lowrank.layout(state.best_solution, rank)
        return LowRankMembers.from_seeds(table, genotypes.seed, genotypes.scale, lay, parent=genotypes.parent)

    fast = rank is not None and crossover is None and n_parents <= shared_parents
    return Strategy(init, ask, tell, decode, members=members if fast else None)


# --------------------------------------------------------------------------- #
# The compact encoding (Such et al. 2017, section 3): a member as its seed chain.
# --------------------------------------------------------------------------- #

_MAGIC = b"NEGA"
_HEADER = struct.Struct("<4sBBHII")  # magic, version, flags, reserved, mutations, dim
_HAS_X0_SEED = 1


def encode(state: GAState, index: int | None = None, x0_seed: jax.Array | None = None) -> bytes:
    """A member as bytes: its chain of (seed, sigma) mutations from x0.

    Args:
      state: a ``ga`` state built with ``lineage_capacity > 0``.
      index: the parent (row of ``state.parents``) to encode; default ``best_solution``.
      x0_seed: the key x0 was drawn from (e.g. the flax ``init`` key). It is stored
        in the chain (8 bytes) and :func:`decode_lineage` redraws x0 with it;
        without it the chain does not hold x0, which must be given to the decoder.

    Layout: a 16-byte header, the x0 key (optional, 8 bytes), 8 bytes of threefry
    key data per mutation, then a float32 step per mutation: 12 bytes a mutation.
    Raises ``ValueError`` if lineage tracking is off or the lineage overflowed.
    """
    lineage = (
        state.best_lineage if index is None else jax.tree_util.tree_map(lambda x: x[index], state.lineage)
    )
    if lineage is None:
        raise ValueError("this GA state tracks no lineage: build the strategy with lineage_capacity > 0")
    seeds, sigmas, n = np.asarray(lineage.seeds), np.asarray(lineage.sigmas), int(lineage.length)
    if seeds.ndim != 2:
        raise ValueError(
            f"encode takes one member; the lineage has shape {seeds.shape} (index a batched state)"
        )
    if n > sigmas.shape[0]:
        raise ValueError(
            f"the lineage overflowed: {n} mutations but lineage_capacity={sigmas.shape[0]}; "
            "raise lineage_capacity to at least the number of generations"
        )
    flags = 0
    body = b""
    if x0_seed is not None:
        if jax.dtypes.issubdtype(getattr(x0_seed, "dtype", None), jax.dtypes.prng_key):
            x0_seed = jax.random.key_data(x0_seed)
        body = np.asarray(x0_seed, np.uint32).reshape(2).tobytes()
        flags |= _HAS_X0_SEED
    header = _HEADER.pack(_MAGIC, 1, flags, 0, n, state.parents.shape[1])
    return header + body + seeds[:n].astype("<u4").tobytes() + sigmas[:n].astype("<f4").tobytes()


def decode_lineage(
    chain: bytes, x0: PyTree | None = None, init: Callable[[jax.Array], PyTree] | None = None
) -> PyTree:
    """Rebuild a member from :func:`encode`'s bytes, bit for bit.

    ``x0`` is the initial solution the run started from, or, if the chain holds
    its key, ``init(key) -> x0`` redraws it (e.g. ``lambda k: model.init(k, obs)``).
    The mutations are replayed in order, ``x <- x + sigma * eps(seed)``, with the
    expression and noise generator the GA used.
    """
    if len(chain) < _HEADER.size:
        raise ValueError(f"not a GA chain: {len(chain)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, flags, _, n, dim = _HEADER.unpack_from(chain)
    if magic != _MAGIC or version != 1:
        raise ValueError(f"not a GA chain (magic {magic!r}, version {version})")
    offset = _HEADER.size
    if flags & _HAS_X0_SEED:
        key = jax.random.wrap_key_data(jnp.asarray(np.frombuffer(chain, "<u4", 2, offset)))
        offset += 8
        if init is None:
            raise ValueError("this chain stores x0 as a key: pass init=, a function key -> x0")
        x0 = init(key)
    elif x0 is None:
        raise ValueError("this chain does not store x0: pass the run's x0")
    expected = offset + 12 * n
    if len(chain) != expected:
        raise ValueError(f"GA chain of {n} mutations should be {expected} bytes, got {len(chain)}")
    seeds = np.frombuffer(chain, "<u4", 2 * n, offset).reshape(n, 2)
    sigmas = np.frombuffer(chain, "<f4", n, offset + 8 * n)
    flat, unravel = check_x0(x0)
    if flat.shape[0] != dim:
        raise ValueError(f"x0 has {flat.shape[0]} parameters, but the chain was encoded for {dim}")
    return unravel(_replay(flat, jnp.asarray(seeds, jnp.uint32), jnp.asarray(sigmas, jnp.float32)))


@jax.jit
def _replay(x: jax.Array, seeds: jax.Array, sigmas: jax.Array) -> jax.Array:
    def step(x, mutation):
        seed, scale = mutation
        noise = rng.seed_normal(seed, x.shape, x.dtype)
        return ops.mutate(x, scale, noise, exact=True), None

    return jax.lax.scan(step, x, (seeds, sigmas))[0]


# ``ne.strategies.ga`` is this factory; the encoding travels with it.
ga.encode = encode
ga.decode_lineage = decode_lineage
ga.GAState = GAState
ga.GAGenotype = GAGenotype
ga.ops = ops

"""Novelty search: NS-GA, NS-ES, NSR-ES and NSRA-ES under the ``Strategy`` contract.

Behaviour descriptors arrive through ``tell(key, state, genotypes, fitness,
descriptors)``; novelty is the mean distance to the k nearest neighbours in an
on-device archive (:mod:`neuroevo.novelty`). Each strategy needs descriptors of
shape ``(popsize, descriptor_dim)`` and raises ``ValueError`` naming that shape
if they are missing or shaped otherwise.

**NS-ES, NSR-ES, NSRA-ES** (Conti, Madhavan, Such, Lehman, Stanley & Clune,
"Improving Exploration in Evolution Strategies for Deep Reinforcement Learning
via a Population of Novelty-Seeking Agents", NeurIPS 2018, Algorithms 1-3)::

    M agents theta_1..theta_M, each with its own optimiser state; archive A
    for t = 0, 1, 2, ...
        pick agent m with probability  N(b(theta_m), A) / sum_j N(b(theta_j), A)
        members theta_m + sigma*eps_i (mirrored), and theta_m itself (member 0 and its pair)
        f_i = reward, N_i = novelty of b_i w.r.t. A      (both shaped: centred ranks by default)
        NS-ES:   w_i = N_i
        NSR-ES:  w_i = (f_i + N_i) / 2
        NSRA-ES: w_i = w f_i + (1 - w) N_i;  w += delta if theta_m's reward is a new best,
                 w -= delta after `stagnation` generations without one   (w in [0, 1])
        theta_m <- optimiser step on  1/(n sigma) sum_i w_i eps_i       (OpenAI-ES's update)
        add b(theta_m) to A

The update is ``openai_es``'s ``tell`` (each agent's state is an ``OpenESState``),
given the weights above through its ``fitness_shaping`` hook. The agent's own
behaviour is measured inside the population: member 0 and its mirror are
``theta_m`` unperturbed (weight 0 in the update), so ``b(theta_m)`` enters the
archive one generation late compared with the paper, without an extra
evaluation. Agents that have not been evaluated yet are picked first. Novelty is
measured against the archive only (as in the paper; ``include_population=True``
adds the current population). ``state.mean`` is the mean of the agent updated
last (``state.agents.mean`` holds all M); ``best_solution``/``best_fitness``
are by reward over every member evaluated.

``shaping`` turns rewards and novelties into weights: centred ranks, as in the
paper, or e.g. ``nes_utilities`` (Wierstra et al. 2014), which puts the weight
on the best-ranked members. Novelty is heavy-tailed where most members land in
explored ground (near-equal, low novelty) and a few reach new ground: centred
ranks spread the many over weights in ``[-0.5, 0.5]`` by their arbitrary order,
which drowns the few; the NES utilities give the worse half ``-1/n`` each. On
the hard maze this is what lifts ``ns_es`` from 5/10 seeds
(``benchmarks/RESULTS.md``, issue 6).

**NS-GA** (Lehman & Stanley 2011; the Deep GA with novelty of Such et al.,
"Deep Neuroevolution", 2017, section 4.3): the Deep GA (``ga``) selecting its
truncation pool on novelty instead of reward, novelty against the archive and
the current population. The pool of T parents, the most novel members, plays
the meta-population's part (parents are drawn uniformly from it); each
generation ``archive_add`` members enter the archive (a random sample, as in
Such et al., or the most novel: ``archive_policy``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from neuroevo import novelty as nov
from neuroevo import perturbation, rng
from neuroevo.shaping import centered_ranks, sanitize
from neuroevo.strategies.ga import GAState, ga
from neuroevo.strategies.openai_es import OpenESState, openai_es
from neuroevo.strategy import (
    Strategy,
    check_descriptors,
    check_fitness,
    check_popsize,
    population_size,
    search_start,
    static_int,
    unravel_like,
    update_best_member,
)

PyTree = Any


def _metrics(archive: nov.Archive, **extra: jax.Array) -> dict[str, jax.Array]:
    return {"archive_size": archive.size, **extra}


# --------------------------------------------------------------------------- #
# NS-ES family (Conti et al. 2018).
# --------------------------------------------------------------------------- #


class NSESState(NamedTuple):
    agents: OpenESState  # the M agents, stacked on a leading axis (means, optimiser states)
    current: jax.Array  # int32[]: the agent ``ask`` picked
    behaviour: jax.Array  # f32[M, dim]: each agent's last measured descriptor
    evaluated: jax.Array  # bool[M]: whether it has been measured
    archive: nov.Archive
    reward_weight: jax.Array  # f32[]: w (1 = reward only, 0 = novelty only)
    agent_best: jax.Array  # f32[]: best reward of an agent's centre so far (NSRA-ES)
    stagnation: jax.Array  # int32[]: generations since agent_best improved (NSRA-ES)
    mean: PyTree  # the mean of the agent updated last (picked last, after ``ask``)
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """Per-generation metrics ``ne.evolve`` records: archive fill and the reward weight."""
        return _metrics(self.archive, reward_weight=self.reward_weight)


def nsra_es(
    popsize: int = 256,
    sigma: float | Callable = 0.1,
    learning_rate: float = 0.03,
    optimizer: optax.GradientTransformation | None = None,
    weight_decay: float = 0.0,
    meta_population: int = 5,
    k: int = 10,
    descriptor_dim: int = 2,
    archive_capacity: int = 10_000,
    include_population: bool = False,
    init_spread: float | None = None,
    weight: float = 1.0,
    weight_delta: float = 0.05,
    stagnation: int = 10,
    shaping: Callable[[jax.Array], jax.Array] = centered_ranks,
    dense: bool | None = None,
    chunk_size: int | None = None,
) -> Strategy:
    """NSRA-ES: novelty and reward, with an adaptive weight (Conti et al. 2018, Algorithm 3).

    Args:
      popsize: members per generation, mirrored (static, even, at least 4).
      sigma, learning_rate, optimizer, weight_decay, dense, chunk_size: as ``openai_es``.
      meta_population: M, the number of agents (static).
      k: neighbours in the novelty estimate (static).
      descriptor_dim: length of a behaviour descriptor (static).
      archive_capacity: archive entries kept (static); beyond it the oldest are overwritten.
      include_population: measure novelty against the current population too.
      init_spread: agents 1..M-1 start at ``x0 + init_spread * N(0, I)`` (default ``sigma``;
        agent 0 at ``x0``).
      weight: initial reward weight w (traceable; Conti et al. start at 1).
      weight_delta: step of w (traceable; 0 keeps w fixed).
      stagnation: generations without a new best agent reward before w moves toward novelty.
      shaping: values -> per-member weights, applied to rewards and novelties alike (default
        ``centered_ranks``, as in the paper; ``nes_utilities`` favours the most novel).
    """
    check_popsize(popsize, even=True, minimum=4)
    m_agents = static_int("meta_population", meta_population, 1)
    k = static_int("k", k, 1)
    dim = static_int("descriptor_dim", descriptor_dim, 1)
    static_int("archive_capacity", archive_capacity, 1)
    half = popsize // 2
    es = openai_es(
        popsize,
        sigma,
        learning_rate,
        optimizer,
        weight_decay,
        dense=dense,
        chunk_size=chunk_size,
        fitness_shaping=lambda w: w,  # the weights below are already shaped
    )

    def init(key: jax.Array, x0: PyTree) -> NSESState:
        flat, fields = search_start(x0)
        unravel = unravel_like(x0)
        spread = perturbation.sigma_at(sigma, fields["generation"]) if init_spread is None else init_spread
        noise = rng.normal(key, (m_agents, flat.shape[0]), flat.dtype).at[0].set(0.0)
        starts = jax.vmap(unravel)(flat + jnp.asarray(spread, flat.dtype) * noise)
        agents = jax.vmap(es.init, in_axes=(None, 0))(key, starts)
        return NSESState(
            agents=agents,
            current=jnp.zeros((), jnp.int32),
            behaviour=jnp.zeros((m_agents, dim), jnp.float32),
            evaluated=jnp.zeros((m_agents,), bool),
            archive=nov.empty(archive_capacity, dim),
            reward_weight=jnp.asarray(weight, jnp.float32),
            agent_best=jnp.array(-jnp.inf, jnp.float32),
            stagnation=jnp.zeros((), jnp.int32),
            **fields,
        )

    def pick_agent(key: jax.Array, state: NSESState) -> jax.Array:
        """An unmeasured agent if any, else agent m with probability proportional to its novelty."""
        novelty = nov.novelty(state.behaviour, state.archive, k=k)
        score = jnp.where(jnp.any(~state.evaluated), (~state.evaluated).astype(jnp.float32), novelty)
        score = jnp.where(jnp.sum(score) > 0, score, 1.0)
        return jax.random.choice(key, m_agents, p=score / jnp.sum(score)).astype(jnp.int32)

    def ask(key: jax.Array, state: NSESState) -> tuple[perturbation.Perturbation, NSESState]:
        k_pick, k_ask = jax.random.split(key)
        m = pick_agent(k_pick, state)
        agent = jax.tree_util.tree_map(lambda x: x[m], state.agents)
        genotypes, _ = es.ask(k_ask, agent)
        centre = genotypes.scale.at[0].set(0.0).at[half].set(0.0)  # theta_m itself, twice
        return genotypes._replace(scale=centre), state._replace(current=m, mean=agent.mean)

    def decode(state: NSESState, genotype: perturbation.Perturbation) -> PyTree:
        return es.decode(state, genotype)  # the picked agent's mean + its perturbation

    def tell(
        key, state: NSESState, genotypes: perturbation.Perturbation, fitness, descriptors=None
    ) -> NSESState:
        fitness = check_fitness(fitness, population_size(genotypes))
        descriptors = check_descriptors(descriptors, popsize, dim)
        population = descriptors if include_population else None
        novelty = nov.novelty(descriptors, state.archive, population, k=k)
        w = state.reward_weight
        weights = w * shaping(fitness) + (1.0 - w) * shaping(novelty)
        weights = weights.at[0].set(0.0).at[half].set(0.0)  # the centre pair carries no gradient
        m = state.current
        agent = es.tell(key, jax.tree_util.tree_map(lambda x: x[m], state.agents), genotypes, weights)
        agents = jax.tree_util.tree_map(lambda a, x: a.at[m].set(x), state.agents, agent)
        # The centre's measurement: the agent's behaviour (into the archive) and reward.
        centre_reward = sanitize(fitness[0])
        improved = centre_reward > state.agent_best
        stalled = ~improved & (state.stagnation + 1 >= stagnation)
        delta = jnp.asarray(weight_delta, jnp.float32)
        w = jnp.clip(jnp.where(improved, w + delta, jnp.where(stalled, w - delta, w)), 0.0, 1.0)
        best_solution, best_fitness = update_best_member(decode, state, genotypes, fitness)
        return state._replace(
            agents=agents,
            behaviour=state.behaviour.at[m].set(descriptors[0]),
            evaluated=state.evaluated.at[m].set(True),
            archive=nov.add(state.archive, descriptors[:1]),
            reward_weight=w,
            agent_best=jnp.maximum(state.agent_best, centre_reward),
            stagnation=jnp.where(improved | stalled, 0, state.stagnation + 1).astype(jnp.int32),
            mean=agent.mean,
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
        )

    return Strategy(init, ask, tell, decode)


_ADAPTIVE = ("weight", "weight_delta", "stagnation")


def _fixed_weight(name: str, weight: float, doc: str) -> Callable[..., Strategy]:
    """``nsra_es`` with its reward weight fixed at ``weight`` (no adaptation parameters)."""
    signature = inspect.signature(nsra_es)
    signature = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name not in _ADAPTIVE]
    )

    def factory(*args, **kwargs) -> Strategy:
        bound = signature.bind(*args, **kwargs)
        return nsra_es(**bound.arguments, weight=weight, weight_delta=0.0)

    factory.__signature__ = signature
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = doc
    return factory


ns_es = _fixed_weight(
    "ns_es",
    0.0,
    """NS-ES: each agent climbs the novelty gradient only (Conti et al. 2018, Algorithm 1).

    The arguments are those of :func:`nsra_es` without the adaptive weight (w = 0).""",
)
nsr_es = _fixed_weight(
    "nsr_es",
    0.5,
    """NSR-ES: the mean of the reward and novelty ranks (Conti et al. 2018, Algorithm 2).

    The arguments are those of :func:`nsra_es` without the adaptive weight (w = 1/2).""",
)


# --------------------------------------------------------------------------- #
# NS-GA (Lehman & Stanley 2011; Such et al. 2017).
# --------------------------------------------------------------------------- #


class NSGAState(NamedTuple):
    ga: GAState  # the Deep GA, its pool selected on novelty
    archive: nov.Archive
    best_solution: PyTree
    best_fitness: jax.Array
    generation: jax.Array

    @property
    def metrics(self) -> dict[str, jax.Array]:
        """Per-generation metrics ``ne.evolve`` records: archive fill and the pool's diversity."""
        return _metrics(self.archive, diversity=self.ga.diversity)


def ns_ga(
    popsize: int = 256,
    sigma: float | Callable = 0.02,
    truncation: int | None = None,
    elitism: bool = True,
    sigma_decay: float = 1.0,
    sigma_limit: float = 0.0,
    k: int = 10,
    descriptor_dim: int = 2,
    archive_capacity: int = 10_000,
    archive_add: int | None = None,
    archive_policy: str = "random",
    include_population: bool = True,
    dense: bool | None = None,
) -> Strategy:
    """NS-GA: the Deep GA selecting on novelty (Lehman & Stanley 2011; Such et al. 2017).

    Each generation (Deep GA, Algorithm 1 of Such et al., on novelty)::

        members: the elite and P[k] + sigma * eps, k ~ U{1..T}
        N_i = mean distance of b_i to its k nearest neighbours in A and the population
        P <- the T most novel members;  A <- A + archive_add members (random or most novel)

    Args:
      popsize, sigma, truncation, elitism, sigma_decay, sigma_limit, dense: as ``ga``.
      k, descriptor_dim, archive_capacity: as :func:`nsra_es`.
      archive_add: members added to the archive per generation (static; default
        ``max(1, popsize // 50)``).
      archive_policy: ``"random"`` (a uniform sample) or ``"novelty"`` (the most novel).
      include_population: measure novelty against the current population too.
    """
    check_popsize(popsize)
    k = static_int("k", k, 1)
    dim = static_int("descriptor_dim", descriptor_dim, 1)
    static_int("archive_capacity", archive_capacity, 1)
    n_add = max(1, popsize // 50) if archive_add is None else static_int("archive_add", archive_add, 0)
    if archive_policy not in nov.POLICIES:
        raise ValueError(f"unknown archive_policy {archive_policy!r}; valid: {list(nov.POLICIES)}")
    inner = ga(popsize, sigma, truncation, elitism, sigma_decay, sigma_limit, dense)

    def init(key: jax.Array, x0: PyTree) -> NSGAState:
        state = inner.init(key, x0)
        archive = nov.empty(archive_capacity, dim)
        return NSGAState(state, archive, state.best_solution, state.best_fitness, state.generation)

    def ask(key: jax.Array, state: NSGAState):
        genotypes, ga_state = inner.ask(key, state.ga)
        return genotypes, state._replace(ga=ga_state)

    def decode(state: NSGAState, genotype) -> PyTree:
        return inner.decode(state.ga, genotype)

    def tell(key, state: NSGAState, genotypes, fitness, descriptors=None) -> NSGAState:
        fitness = check_fitness(fitness, population_size(genotypes))
        descriptors = check_descriptors(descriptors, popsize, dim)
        k_ga, k_archive = jax.random.split(key)
        population = descriptors if include_population else None
        novelty = nov.novelty(descriptors, state.archive, population, k=k)
        best_solution, best_fitness = update_best_member(decode, state, genotypes, fitness)
        return NSGAState(
            ga=inner.tell(k_ga, state.ga, genotypes, novelty),
            archive=nov.insert(k_archive, state.archive, descriptors, novelty, n_add, archive_policy),
            best_solution=best_solution,
            best_fitness=best_fitness,
            generation=state.generation + 1,
        )

    return Strategy(init, ask, tell, decode)


def needs_descriptors(factory: Callable) -> Callable:
    """Mark a factory whose strategies need ``descriptors`` in ``tell``."""
    factory.needs_descriptors = True
    return factory


for _factory in (ns_ga, ns_es, nsr_es, nsra_es):
    needs_descriptors(_factory)
